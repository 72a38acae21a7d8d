"""Processes the bench starts: spawn pinned to a CPU, wait until ready, read CPU time from /proc,
and stop each one by PID (its descendants too), whatever happens."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.procs import process_tree, stat_fields  # shared with the tests

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of pid and its descendants, all threads included (clock-tick resolution)."""
    user = kernel = 0
    for p in process_tree(pid):
        if fields := stat_fields(p):
            user += int(fields[11])
            kernel += int(fields[12])
    return user / CLK_TCK, kernel / CLK_TCK


def cpu_busy() -> list[tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat, to show which CPU was saturated."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            nums = [int(v) for v in vals[:8]]
            idle = nums[3] + nums[4]  # idle + iowait
            out.append((sum(nums) - idle, sum(nums)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Every process the bench started; stop_all() ends them by PID, newest first."""

    def __init__(self, nice: int = 0) -> None:
        self._started: list[subprocess.Popen[bytes]] = []
        self.nice = nice

    def spawn(
        self, argv: list[str], *, cpu: int | None, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        pinned = argv if cpu is None else ["taskset", "-c", str(cpu), *argv]  # taskset execs
        with log.open("ab") as out:
            # Own session: a Ctrl-C in the terminal reaches only the bench, which stops these.
            proc = subprocess.Popen(
                pinned,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._started.append(proc)
        if self.nice:
            set_group_nice(proc.pid, self.nice)
        return proc

    def stop_all(self) -> None:
        while self._started:
            stop(self._started.pop())


def set_group_nice(pid: int, nice: int) -> None:
    """Niceness of pid's scheduler autogroup (its session): with sched_autogroup on, a process's
    own nice value only counts inside its session, not against other sessions' work."""
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():
        autogroup.write_text(str(nice))


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after grace; descendants left behind are killed by PID."""
    if proc.poll() is not None:
        return
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
    for pid in tree[1:]:
        fields = stat_fields(pid)
        if fields and fields[0] != "Z":
            os.kill(pid, signal.SIGKILL)


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> None:
    """Poll ready() until true; fail early with the log's tail if proc exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            why = (
                f"exited {proc.returncode}"
                if proc.returncode is not None
                else f"not ready in {timeout}s"
            )
            raise RuntimeError(f"{' '.join(map(str, proc.args))}: {why}\n{tail}")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@contextmanager
def bench_run(procs: Procs, prefix: str, keep: bool, what: str) -> Iterator[Path]:
    """A work directory for one bench run; on leaving, every process of `procs` is stopped
    and the directory removed, unless `keep` or the run failed (then `what` in it is kept)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)  # nginx workers may run as another user and read www/ below
    try:
        yield work
    except BaseException:
        keep = True
        raise
    finally:
        procs.stop_all()
        if keep:
            print(f"bench: {what} kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
