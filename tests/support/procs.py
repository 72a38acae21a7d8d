"""Start and stop the real processes of the end-to-end tests: backends and tcpvsd."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The end-to-end tests run against both builds of the engine and parser: the compiled one
# (what pip installs) and the pure-Python sources it is compiled from.
ENGINE_BUILDS = {"compiled": {}, "pure": {"TCPVS_PURE_PYTHON": "1"}}


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses


def process_tree(pid: int) -> list[int]:
    """pid and all its live descendants (nginx's workers, forked tcpvsd workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
    """End a process this test started, by its PID; returns its exit status."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


@dataclass
class Backend:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests(self) -> list[dict]:
        """Every request (or raw connection) this server received, oldest first."""
        text = self.log.read_text() if self.log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]


def start_backend(
    tmp: Path, name: str, raw: bool = False, port: int = 0, options: tuple[str, ...] = ()
) -> Backend:
    log = tmp / f"{name}.log"
    args = [
        sys.executable,
        "-m",
        "tests.support.backend",
        name,
        "--log",
        str(log),
        "--port",
        str(port),
        *options,
    ]
    proc = subprocess.Popen(
        args + (["--raw"] if raw else []), cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        stop(proc)
        raise RuntimeError(f"backend {name} did not start")
    return Backend(name, int(line[1]), log, proc)


@dataclass
class Daemon:
    socket: Path
    proc: subprocess.Popen
    env: dict = field(default_factory=dict)

    def adm(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run the real tcpvsadm against this daemon."""
        return subprocess.run(
            [sys.executable, "-m", "tcpvsadm", "--socket", str(self.socket), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            input=stdin,
            env=self.env,
        )

    def ok(self, *args: str) -> str:
        done = self.adm(*args)
        assert done.returncode == 0, f"tcpvsadm {' '.join(args)}: {done.stderr}"
        return done.stdout


def start_daemon(tmp: Path, *args: str, env: dict | None = None) -> Daemon:
    sock = tmp / "tcpvsd.sock"
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tcpvs.daemon", "--socket", str(sock), *args],
        cwd=ROOT,
        env=full_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"tcpvsd did not start: {proc.stderr.read()}")
        time.sleep(0.02)
    return Daemon(sock, proc, full_env)
