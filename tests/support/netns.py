"""Run a command in a network namespace of its own: nothing but a loopback, so a fixed port is
free and even a wildcard address (0.0.0.0, [::]) is reachable from nowhere else."""

from __future__ import annotations

import shutil
import subprocess

# A user namespace too: unprivileged users may make one where that is enabled, root always can.
UNSHARE = ["unshare", "--map-root-user", "--net"]


def own_netns(argv: list[str]) -> list[str] | None:
    """`argv` run in a new network namespace with its loopback up, or None where this system
    does not allow one."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30)
    if probe.returncode:
        return None
    return [*UNSHARE, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
