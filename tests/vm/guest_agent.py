"""Guest side of the test VM: runs the commands the host sends over a virtio-serial port and
answers each with its exit status and output, one JSON object per line each way.

Started by guest_init.sh inside the guest (it imports nothing from the project)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PORT_NAME = "tcpvs.agent"
KILL_GRACE = 5.0  # seconds a killed process group gets to release its pipes


def find_port() -> str:
    for entry in Path("/sys/class/virtio-ports").iterdir():
        if (entry / "name").read_text().strip() == PORT_NAME:
            return f"/dev/{entry.name}"
    raise SystemExit(f"tcpvs-vm: no virtio port named {PORT_NAME}")


def text(data: bytes | None) -> str:
    # surrogateescape keeps non-UTF-8 bytes: the host gets them back with .encode(..., same)
    return (data or b"").decode("utf-8", "surrogateescape")


class Agent:
    def __init__(self, config: dict[str, Any]) -> None:
        self.env: dict[str, str] = config["env"]
        self.cwd: str = config["cwd"]
        self.children: dict[int, subprocess.Popen[bytes]] = {}

    def popen(self, req: dict[str, Any], **kwargs: Any) -> subprocess.Popen[bytes]:
        # own session: a timeout or kill reaches the whole process group (sh -c, ip netns exec)
        return subprocess.Popen(
            req["argv"],
            cwd=req.get("cwd") or self.cwd,
            env={**self.env, **(req.get("env") or {})},
            start_new_session=True,
            **kwargs,
        )

    def op_run(self, req: dict[str, Any]) -> dict[str, Any]:
        start = time.monotonic()
        data = req.get("input")
        try:
            proc = self.popen(
                req,
                stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:  # like a shell: 127 and the reason on stderr
            return {
                "rc": 127,
                "stdout": "",
                "stderr": f"{req['argv'][0]}: {exc.strerror}\n",
                "timed_out": False,
                "elapsed": 0.0,
            }
        timed_out = False
        try:
            out, err = proc.communicate(
                None if data is None else data.encode("utf-8", "surrogateescape"),
                timeout=req["timeout"],
            )
        except subprocess.TimeoutExpired:
            timed_out = True
            self.killpg(proc.pid, signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:  # a daemonised grandchild still holds the pipes
                out, err = b"", b""
        return {
            "rc": proc.returncode,
            "stdout": text(out),
            "stderr": text(err),
            "timed_out": timed_out,
            "elapsed": time.monotonic() - start,
        }

    def op_spawn(self, req: dict[str, Any]) -> dict[str, Any]:
        with open(req["stdout"], "wb") as out, open(req["stderr"], "wb") as err:
            proc = self.popen(req, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.children[proc.pid] = proc
        return {"pid": proc.pid}

    def op_poll(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"rc": self.children[req["pid"]].poll()}

    def op_wait(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"rc": self.children[req["pid"]].wait(req["timeout"]), "timed_out": False}
        except subprocess.TimeoutExpired:
            return {"rc": None, "timed_out": True}

    def op_kill(self, req: dict[str, Any]) -> dict[str, Any]:
        proc = self.children[req["pid"]]
        if proc.poll() is None:
            self.killpg(proc.pid, req["signal"])
            try:
                proc.wait(req["timeout"])
            except subprocess.TimeoutExpired:
                self.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return {"rc": proc.returncode}

    @staticmethod
    def killpg(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass

    def handle(self, line: bytes) -> dict[str, Any]:
        req = json.loads(line)
        try:
            reply = getattr(self, f"op_{req['op']}")(req)
        except Exception:
            reply = {"error": traceback.format_exc()}
        return {"id": req["id"], **reply}


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    agent = Agent(config)
    fd = os.open(find_port(), os.O_RDWR)
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    write_all(
        fd,
        json.dumps({"ready": True, "release": os.uname().release, "uptime": uptime}).encode()
        + b"\n",
    )
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:  # host side not connected (yet, or any more)
            time.sleep(0.05)
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            write_all(fd, json.dumps(agent.handle(line)).encode() + b"\n")


if __name__ == "__main__":
    main()
