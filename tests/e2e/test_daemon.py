"""tcpvsd as a process: config at start, SIGHUP reload, graceful SIGTERM, socket permissions."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests.support.client import RawClient, get
from tests.support.procs import ROOT, free_port, stop


def config_text(port: int, rules: list[tuple[str, object]], servers) -> str:
    lines = ["# written by the test", f"Virtual web {{\n    listen = 127.0.0.1:{port}"]
    lines += [f"    server = {s.address} 1" for s in servers]
    lines += [f'    rule = pattern "{p}" use server {s.address}' for p, s in rules]
    return "\n".join(lines) + "\n}\n"


def test_config_at_start_then_reload_on_sighup_keeps_connections(daemon, backends, tmp_path):
    r1, r2 = backends("r1", "r2")
    port = free_port()
    conf = tmp_path / "tcpvs.conf"
    conf.write_text(config_text(port, [(".*", r1)], [r1, r2]))
    d = daemon("-f", str(conf))
    assert get(port, "/x")[1]["X-Backend"] == "r1"
    with RawClient(port) as held:
        held.send(b"GET /before HTTP/1.1\r\nHost: t\r\n\r\n")
        assert held.response()[1]["X-Backend"] == "r1"
        conf.write_text(config_text(port, [(".*", r2)], [r1, r2]))
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while get(port, "/y")[1]["X-Backend"] != "r2":
            assert time.monotonic() < deadline, "the reload did not take effect"
            time.sleep(0.05)
        held.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")  # same connection, new table
        assert held.response()[1]["X-Backend"] == "r2"


def tcpvsd_until_exit(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Run a tcpvsd that is expected to stop by itself (a refused start)."""
    return subprocess.run(
        [sys.executable, "-m", "tcpvs.daemon", "--socket", str(tmp_path / "s"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_bad_config_at_start_names_the_line_and_exits_nonzero(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("Virtual web {\n    listen = 127.0.0.1:1\n    nonsense = 3\n}\n")
    done = tcpvsd_until_exit(tmp_path, "-f", str(conf))
    assert done.returncode == 1
    assert f"{conf}:3:" in done.stderr


def test_two_services_on_one_address_are_refused_before_anything_starts(tmp_path):
    port = free_port()
    conf = tmp_path / "two.conf"
    conf.write_text(
        f"Virtual a {{\n    listen = 127.0.0.1:{port}\n}}\n"
        f"Virtual b {{\n    scheduler = rr\n    listen = 127.0.0.1:{port}\n}}\n"
    )
    done = tcpvsd_until_exit(tmp_path, "-f", str(conf))
    assert done.returncode == 1
    message = f"{conf}:6: service b listens on 127.0.0.1:{port} like service a (line 2)"
    assert f"tcpvsd: {message}\n" in done.stderr
    assert "in use" not in done.stderr  # found in the file, not by a failed bind


def test_an_unreadable_config_is_said_as_tcpvsadm_says_it(tmp_path):
    missing = tmp_path / "missing.conf"
    done = tcpvsd_until_exit(tmp_path, "-f", str(missing))
    assert done.returncode == 1
    said = f"cannot read config file {missing}: No such file or directory"
    assert f"tcpvsd: {said}\n" in done.stderr and "Errno" not in done.stderr
    adm = subprocess.run(
        [sys.executable, "-m", "tcpvsadm", "--socket", str(tmp_path / "s"), "-f", str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert adm.stderr == f"{said}\n"
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"Virtual a {\n    \xff\n}\n")
    done = tcpvsd_until_exit(tmp_path, "-f", str(binary))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"tcpvsd: {binary}:2: not UTF-8 text\n" in done.stderr


def test_sigterm_finishes_in_flight_requests_then_exits_0(daemon, backends, tmp_path):
    (r1,) = backends("r1")
    port = free_port()
    conf = tmp_path / "tcpvs.conf"
    conf.write_text(config_text(port, [], [r1]))
    d = daemon("-f", str(conf))
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=get(port, "/slow/1500")))
    worker.start()
    time.sleep(0.5)  # the request is at the server now
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(ConnectionRefusedError):
        get(port, "/new")  # no longer accepting
    worker.join(10)
    assert result["r"][0] == 200 and result["r"][2].startswith(b"r1 GET /slow/1500")
    assert stop(d.proc) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_removes_the_control_socket(daemon, workers):
    d = daemon("--workers", workers)
    assert d.socket.exists()
    assert stop(d.proc) == 0
    assert not d.socket.exists()


def test_sigterm_leaves_a_control_socket_that_is_not_its_own(daemon):
    # Someone removed tcpvsd's socket file and another program made one at that path.
    d = daemon()
    d.socket.unlink()
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(d.socket))
        assert stop(d.proc) == 0
        assert stat.S_ISSOCK(d.socket.stat().st_mode)


def test_control_socket_is_owner_only(daemon):
    # Refusing another user's credentials is proven in test_control_server.py.
    d = daemon()
    assert stat.S_IMODE(d.socket.stat().st_mode) == 0o600


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_repeated_sigterm_still_exits_0(daemon, workers):
    # A service manager (or the test fixture) may signal again while tcpvsd is stopping.
    d = daemon("--workers", workers)
    deadline = time.monotonic() + 15
    while d.proc.poll() is None:
        assert time.monotonic() < deadline, "tcpvsd did not stop"
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    assert d.proc.returncode == 0
