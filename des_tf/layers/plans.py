"""The registry of execution plans: name -> Plan (des_tf.layers.plan), one module each."""

from __future__ import annotations

from des_tf.comm.cost import ExecutionPlan
from des_tf.layers.alltoall_plan import AlltoallPlan
from des_tf.layers.des_plan import DESPlan
from des_tf.layers.plan import Plan
from des_tf.layers.replicated_plan import ReplicatedPlan
from des_tf.layers.rows_plan import RowsPlan

PLANS: dict[ExecutionPlan, Plan] = {plan.name: plan for plan in (
    DESPlan(), AlltoallPlan(), ReplicatedPlan(), RowsPlan())}


def get(name: str) -> Plan:
    """The plan called `name` (an ExecutionPlan value)."""
    if name not in PLANS:
        raise ValueError(f"unknown execution plan {name!r}; expected one of {list(PLANS)}")
    return PLANS[ExecutionPlan(name)]
