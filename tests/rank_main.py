"""What every rank runs under the harness: `python -m tests.rank_main module:function [args]`.

Calls the body, then prints a completion marker naming the rank; an exception
propagates (traceback, exit 1), which makes horovodrun stop the other ranks.
"""

import importlib
import sys

from des_tf import comm
from tests.horovod_harness import DONE_MARKER


def main() -> None:
    module_name, function_name = sys.argv[1].split(":")
    body = getattr(importlib.import_module(module_name), function_name)
    body(*sys.argv[2:])
    print(f"{DONE_MARKER} rank={comm.rank()}", flush=True)


if __name__ == "__main__":
    main()
