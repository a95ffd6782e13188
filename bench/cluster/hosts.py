"""What makes a network namespace a host: its own host name, name resolution of every
host, and an sshd, so that Horovod's own ssh launcher starts ranks on it.

`ip netns exec <ns>` bind-mounts each file of /etc/netns/<ns>/ over the one of the same
name in /etc for the command it runs. Each host gets its own `hosts` file and `ssh`
folder that way (server and client configuration, the cluster's keys), and the machine's
/etc is never written. Every command on a host also runs in its own UTS namespace with
the host's name, so `hostname`, Horovod's host list and des-tf's diagnostics see `h<i>`.
The file system is shared, as NFS would be on a real cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence

from bench.cluster import network

ETC = "/etc/netns"
SSHD = "/usr/sbin/sshd"
_SSHD_CONFIG = """\
ListenAddress {address}
HostKey /etc/ssh/host_key
AuthorizedKeysFile /etc/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PidFile none
"""
# No ServerAlive: like a stock client, a session whose peer vanished is ended by the job
# (Horovod's terminate-all), not by ssh, so a lost host shows as the ranks see it.
_SSH_CONFIG = """\
Host *
  IdentityFile /etc/ssh/id_ed25519
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR
"""


def etc_dir(index: int) -> str:
    return os.path.join(ETC, network.namespace(index))


def command(index: int, argv: Sequence[str]) -> list[str]:
    """`argv` run on host `index`: in its network namespace, with its /etc files and its
    host name."""
    return ["ip", "netns", "exec", network.namespace(index), "unshare", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', network.host_name(index), *argv]


def configure(hosts: int) -> None:
    """Writes every host's /etc files: the hosts table, sshd and ssh configuration, and
    one host key and one client key shared by the whole cluster."""
    table = "127.0.0.1 localhost\n" + "".join(
        f"{network.address(i)} {network.host_name(i)}\n" for i in range(1, hosts + 1))
    with tempfile.TemporaryDirectory(prefix="des-cluster-keys-") as keys:
        for name in ("host_key", "id_ed25519"):
            network.sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "des-cluster",
                        "-f", os.path.join(keys, name)], "making the cluster's ssh keys")
        for index in range(1, hosts + 1):
            ssh = os.path.join(etc_dir(index), "ssh")
            os.makedirs(ssh)
            with open(os.path.join(etc_dir(index), "hosts"), "w") as f:
                f.write(table)
            for name in ("host_key", "id_ed25519"):
                shutil.copy(os.path.join(keys, name), ssh)
            shutil.copy(os.path.join(keys, "id_ed25519.pub"),
                        os.path.join(ssh, "authorized_keys"))
            with open(os.path.join(ssh, "sshd_config"), "w") as f:
                f.write(_SSHD_CONFIG.format(address=network.address(index)))
            with open(os.path.join(ssh, "ssh_config"), "w") as f:
                f.write(_SSH_CONFIG)


def start_sshd(index: int) -> int:
    """Starts host `index`'s sshd in the background (its own session, surviving this
    process, as a host's daemon would); returns its process id."""
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    daemon = subprocess.Popen(command(index, [SSHD, "-D"]), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    return daemon.pid  # `ip netns exec`, unshare and sh each exec the next: sshd's pid


def sshd_pid(index: int) -> int:
    """The process id of host `index`'s sshd daemon: the `sshd` in its namespace whose
    parent is outside it (a session's sshd is the daemon's child)."""
    pids = network.processes_in(network.namespace(index))
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        name, parent = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")")[1].split()[1]
        if name == "sshd" and int(parent) not in pids:
            return pid
    raise network.ClusterError(f"host {network.host_name(index)} runs no sshd: run `down`")


def wait_reachable(hosts: int, timeout_s: float = 30.0) -> None:
    """Returns once host 1 can ssh into every host (itself included); ClusterError with
    ssh's message if one still refuses after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    for index in range(1, hosts + 1):
        while True:
            done = subprocess.run(command(1, ["ssh", network.host_name(index), "true"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise network.ClusterError(
                    f"ssh from {network.host_name(1)} to {network.host_name(index)} still "
                    f"fails after {timeout_s:.0f} s: {done.stdout.strip()}")
            time.sleep(0.2)


def configuration_folders() -> list[str]:
    """The /etc/netns folders made here that exist now."""
    if not os.path.isdir(ETC):
        return []
    return [os.path.join(ETC, name) for name in sorted(os.listdir(ETC))
            if name.startswith(network.PREFIX)]


def remove_configuration() -> None:
    """Removes every /etc/netns folder made here."""
    for folder in configuration_folders():
        shutil.rmtree(folder, ignore_errors=True)
