"""CLI of the emulated cluster (bench/cluster/__init__.py). From the repository root, as
root:

    python -m bench.cluster up --hosts=2 --link=1gbit   # make it; it stays up
    python -m bench.cluster run -- hostname             # a command on host 1
    python -m bench.cluster shape --link=250mbit        # reshape every link
    python -m bench.cluster status
    python -m bench.cluster down                        # remove it (and any leftover)

    # a cluster for one command only, removed however the command ends:
    python -m bench.cluster run --hosts=2 --link=1gbit -- \\
        sh -c '.venv/bin/horovodrun -np 2 -H $DES_CLUSTER_SLOTS \\
               --network-interface $DES_CLUSTER_INTERFACE .venv/bin/python -m des_tf.train'

`run` gives the command DES_CLUSTER_SLOTS (horovodrun's -H value, one slot per host)
and DES_CLUSTER_INTERFACE (the hosts' interface) in its environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import bench.cluster as cluster


def _link(text: str) -> str | None:
    """--link: a tc rate, or `unlimited` for an unshaped link."""
    if text == "unlimited":
        return None
    cluster.network.rate_bits(text)
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="action", required=True)
    up = commands.add_parser("up", help="make the cluster (replacing any)")
    up.add_argument("--hosts", type=int, required=True)
    up.add_argument("--link", type=_link, default=None, help="e.g. 1gbit, 250mbit, unlimited")
    commands.add_parser("down", help="remove the cluster and anything left of one")
    shape = commands.add_parser("shape", help="reshape every link of the cluster that is up")
    shape.add_argument("--link", type=_link, required=True)
    commands.add_parser("status", help="hosts, link rate and eth0 bytes of the cluster")
    run = commands.add_parser("run", help="run a command on a host")
    run.add_argument("--hosts", type=int, default=0,
                     help="make a cluster of this many hosts for the command, removed after "
                          "it; 0: use the one that is up")
    run.add_argument("--link", type=_link, default=None)
    run.add_argument("--host", type=int, default=1, help="the host the command runs on")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    if args.action == "run":
        args.argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not args.argv:
            parser.error("run: give the command after --")
    return args


def _require_existing() -> cluster.Cluster:
    found = cluster.existing()
    if found is None:
        raise SystemExit("no emulated cluster is up: `python -m bench.cluster up --hosts=K` "
                         "or `run --hosts=K`")
    return found


def _run(made: cluster.Cluster, host: int, argv: list[str]) -> int:
    if not 1 <= host <= made.hosts:
        raise SystemExit(f"--host={host}: the cluster has hosts 1..{made.hosts}")
    env = {**os.environ, "DES_CLUSTER_SLOTS": made.slots(),
           "DES_CLUSTER_INTERFACE": cluster.INTERFACE}
    return subprocess.run(made.command(host, argv), env=env).returncode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = cluster.unavailable_reason()
    if reason:
        raise SystemExit(reason)
    if args.action == "up":
        made = cluster.up(args.hosts, args.link)
        print(f"cluster up: {made.slots()} at {made.address(1)}..{made.address(made.hosts)}, "
              f"links {made.link or 'unlimited'}")
    elif args.action == "down":
        cluster.down()
        print("cluster down")
    elif args.action == "shape":
        made = _require_existing().shape(args.link)
        print(f"links {made.link or 'unlimited'}")
    elif args.action == "status":
        made = cluster.existing()
        if made is None:
            print("no cluster")
        else:
            print(f"{made.hosts} hosts ({made.slots()}), links {made.link or 'unlimited'}, "
                  f"eth0 (rx, tx) bytes {made.interface_bytes()}")
    elif args.hosts:
        with cluster.running(args.hosts, args.link) as made:
            return _run(made, args.host, args.argv)
    else:
        return _run(_require_existing(), args.host, args.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
