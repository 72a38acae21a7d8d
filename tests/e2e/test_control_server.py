"""The control socket on real Unix sockets: creation, stale files, peer credentials, requests.

`ControlDaemon` (a real Switch and control server on uvloop in a background thread) is also
what the tcpvsadm end-to-end tests talk to.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tcpvs.control.client import ControlClient
from tcpvs.control.protocol import MAX_LINE, PERMISSION_DENIED
from tcpvs.control.server import close_control_server, start_control_server
from tcpvs.errors import ControlError, DaemonNotRunning
from tcpvs.switch import Switch


class ControlDaemon:
    """What tcpvsd is to tcpvsadm: a Switch served on a control socket, on its own loop."""

    def __init__(self, path: str | Path, switch: Switch | None = None) -> None:
        self.path = str(path)
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.switch = switch or Switch(drain_seconds=1.0)
        try:
            self.server = self.run(start_control_server(self.switch, self.path))
        except BaseException:
            self._stop_loop()
            raise

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def snapshot(self, ident: str | None = None) -> dict:
        async def take() -> dict:
            return self.switch.snapshot(ident)

        return self.run(take())

    def close(self) -> None:
        try:
            self.run(close_control_server(self.server))
            self.run(self.switch.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def control(tmp_path):
    daemon = ControlDaemon(tmp_path / "run" / "tcpvsd.sock")
    yield daemon
    daemon.close()


def exchange(path: str, *lines: bytes) -> list[Any]:
    """Send raw request lines on one connection; every reply line, until the daemon closes."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"".join(lines))
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_socket_is_owner_only_in_a_created_0755_directory(control, tmp_path):
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o755
    mode = os.stat(control.path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_operations_and_errors_through_the_client(control):
    client = ControlClient(control.path)
    assert client.call("version") == __import__("tcpvs").__version__
    service = client.call("add_service", ident="web", listen="127.0.0.1:8081", scheduler="wlc")
    assert service["ident"] == "web" and service["listen"]["port"] == 8081
    assert client.call("add_server", ident="web", server="127.0.0.1:9001", weight=3)["weight"] == 3
    client.call("add_rule", ident="web", pattern="^/a/", server="127.0.0.1:9001")
    assert client.call("snapshot", ident="web")["services"][0]["rules"][0]["pattern"] == "^/a/"
    for op, args, message in [
        ("add_service", {"ident": "web"}, "Service already exists"),
        ("add_service", {"ident": "x", "scheduler": "nosuch"}, "Scheduler not found"),
        ("delete_service", {"ident": "nope"}, "No such service"),
        ("add_server", {"ident": "nope", "server": "127.0.0.1:1"}, "Service not defined"),
        ("delete_server", {"ident": "web", "server": "127.0.0.1:9001"},
         "Destination is busy: used by rule '^/a/' of service web"),
        ("load_config", {"text": "Virtual a {\n  bogus = 1\n}\n", "filename": "f.conf"},
         "f.conf:2: unknown key 'bogus'"),
        ("snapshot", {"ident": "nope"}, "No such service"),
    ]:  # fmt: skip
        with pytest.raises(ControlError) as info:
            client.call(op, **args)
        assert str(info.value) == message
    assert [s["ident"] for s in control.snapshot()["services"]] == ["web"]


def test_several_requests_on_one_connection_answered_in_order(control):
    replies = exchange(
        control.path,
        b'{"op": "add_service", "args": {"ident": "a"}}\n',
        b"this is not json\n",
        b'{"op": "reboot", "args": {}}\n',
        b'{"op": "delete_service", "args": {}}\n',
        b'{"op": "snapshot"}\n',
    )
    assert [r["ok"] for r in replies] == [True, False, False, False, True]
    assert replies[1]["error"] == "request is not a JSON object"
    assert replies[2]["error"] == "unknown operation 'reboot'"
    assert replies[3]["error"] == "missing argument 'ident' for delete_service"
    assert [s["ident"] for s in replies[4]["result"]["services"]] == ["a"]


def test_an_overlong_request_is_refused_and_the_connection_closed(control):
    (reply,) = exchange(control.path, b"x" * (MAX_LINE + 10), b'\n{"op": "flush"}\n')
    assert reply == {"ok": False, "error": f"request longer than {MAX_LINE} bytes"}
    assert ControlClient(control.path).call("version")  # the daemon goes on serving


def test_unexpected_failures_become_an_error_reply_not_a_traceback(tmp_path, caplog):
    class FailingSwitch(Switch):
        async def flush(self) -> None:
            raise RuntimeError("disk on fire")

    daemon = ControlDaemon(tmp_path / "s.sock", FailingSwitch())
    try:
        with pytest.raises(ControlError) as info:
            ControlClient(daemon.path).call("flush")
        assert str(info.value) == "internal error in tcpvsd (see its log)"
        assert "disk on fire" in caplog.text
        assert ControlClient(daemon.path).call("snapshot")["services"] == []
    finally:
        daemon.close()


def test_a_stale_socket_file_is_replaced(tmp_path):
    path = str(tmp_path / "tcpvsd.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays; nothing answers on it
    with pytest.raises(DaemonNotRunning) as info:
        ControlClient(path).call("version")
    assert str(info.value) == f"tcpvsd is not running (nothing answers on {path})"
    daemon = ControlDaemon(path)
    try:
        assert ControlClient(path).call("version")
    finally:
        daemon.close()
    assert not os.path.exists(path)  # removed on close


def test_a_second_daemon_on_the_same_socket_is_refused(control):
    with pytest.raises(ControlError) as info:
        ControlDaemon(control.path)
    assert str(info.value) == f"another tcpvsd is already running (it answers on {control.path})"
    assert ControlClient(control.path).call("version")  # the first one still serves


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path):
    path = tmp_path / "tcpvsd.sock"
    path.write_text("precious")
    with pytest.raises(ControlError) as info:
        ControlDaemon(path)
    assert str(info.value) == f"{path} exists and is not a socket"
    assert path.read_text() == "precious"


def test_client_without_daemon_and_without_answer(tmp_path):
    missing = str(tmp_path / "none.sock")
    with pytest.raises(DaemonNotRunning) as info:
        ControlClient(missing).call("version")
    assert str(info.value) == f"tcpvsd is not running (no control socket at {missing})"
    silent_path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as silent:  # listens but never answers
        silent.bind(silent_path)
        silent.listen()
        with pytest.raises(ControlError) as info:
            ControlClient(silent_path, timeout=0.3).call("version")
        assert str(info.value) == "tcpvsd did not answer within 0.3 s"


# A client as another user: plain Python (the system interpreter; stdlib only), real socket.
FOREIGN_CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
try:
    sock.sendall(b'{"op": "add_service", "args": {"ident": "intruder"}}\\n')
except BrokenPipeError:  # refused before the request was sent: the reply is still there
    pass
data = b""
try:
    while chunk := sock.recv(65536):
        data += chunk
except ConnectionResetError:  # hung up on with our request unread: the end of the replies
    pass
print(data.decode(), end="")
"""


def test_peers_that_are_not_root_or_the_daemon_user_are_refused():
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user (nobody)")
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 that user nobody can run")
    # tmp_path is private to root: use a directory nobody can reach.
    directory = tempfile.mkdtemp(prefix="tcpvs-peer-")
    os.chmod(directory, 0o755)
    daemon = ControlDaemon(os.path.join(directory, "tcpvsd.sock"))
    try:
        os.chmod(daemon.path, 0o666)  # let the kernel pass nobody through to SO_PEERCRED
        done = subprocess.run(
            [python, "-c", FOREIGN_CLIENT, daemon.path],
            user="nobody",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        # One refusal, then the daemon hangs up (the reply stream ends).
        assert [json.loads(line) for line in done.stdout.splitlines()] == [
            {"ok": False, "error": PERMISSION_DENIED}
        ]
        assert daemon.snapshot()["services"] == []
    finally:
        daemon.close()
        shutil.rmtree(directory)
