"""A slow-header flood against a service with default settings: 500 clients each sending one
byte of a request head per half second hold their connections, and ordinary users must still
be served (the default maxclients comes from the open-files limit, not KTCPVS's 256)."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time

import pytest

from tests.support.client import get
from tests.support.limits import default_maxclients, documented_maxclients
from tests.support.procs import ENGINE_BUILDS, free_port

FLOOD = 500  # slow connections
NORMAL = 40  # ordinary requests made during the flood
TICK = 0.5  # seconds between two bytes of each slow client
ROUNDS = 7  # bytes each slow client sends: the flood lasts ROUNDS * TICK = 3.5 s
SLOW_HEAD = b"GET /slowly HTTP/1.1\r\nHost: t\r\n\r\n"  # never finished: ROUNDS bytes of it
FDS_NEEDED = FLOOD + NORMAL + 256  # this process: the flood, the requests, pytest itself


@pytest.fixture
def enough_fds():
    """Raise this process's soft open-files limit for the flood; restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FDS_NEEDED:
        pytest.skip(f"the hard open-files limit ({hard}) is below {FDS_NEEDED}")
    if documented_maxclients(hard) <= FLOOD:
        pytest.skip(f"with the hard limit {hard}, tcpvsd's default admits no more than {FLOOD}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FDS_NEEDED), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def service_state(d) -> dict:
    (svc,) = json.loads(d.ok("-L", "--json"))["services"]
    return svc


def trickle(socks: list[socket.socket], cut: list[int], done: threading.Event) -> None:
    """Send every slow client one more byte of its head each TICK; note the ones cut off."""
    for at in range(ROUNDS):
        for i, sock in enumerate(socks):
            if i not in cut:
                try:
                    sock.send(SLOW_HEAD[at : at + 1])
                except OSError:
                    cut.append(i)
        if done.wait(TICK):
            return


@pytest.mark.parametrize("build", list(ENGINE_BUILDS))
def test_slow_header_flood_does_not_lock_out_normal_requests(
    enough_fds, daemon, backends, tmp_path, build
):
    (r1,) = backends("r1")
    port = free_port()
    conf = tmp_path / "tcpvs.conf"  # default settings: no maxclients
    conf.write_text(
        f"Virtual web {{\n    listen = 127.0.0.1:{port}\n    server = {r1.address}\n}}\n"
    )
    d = daemon("-f", str(conf), env=ENGINE_BUILDS[build])
    assert get(port, "/before")[0] == 200

    socks: list[socket.socket] = []
    cut: list[int] = []
    done = threading.Event()
    statuses: list[int | str] = []
    try:
        for _ in range(FLOOD):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        flood = threading.Thread(target=trickle, args=(socks, cut, done))
        flood.start()
        started = time.monotonic()
        for i in range(NORMAL):
            try:
                statuses.append(get(port, f"/normal/{i}")[0])
            except OSError as exc:  # closed without an answer
                statuses.append(type(exc).__name__)
            # spread over the first ~3 s of the flood (a request itself takes a few ms)
            time.sleep(max(0.0, started + (i + 1) * 3.0 / NORMAL - time.monotonic()))
        during = service_state(d)["stats"]
        flood.join(ROUNDS * TICK + 10)
        assert not flood.is_alive()
    finally:
        done.set()
        for sock in socks:
            sock.close()
    assert statuses == [200] * NORMAL
    assert cut == []  # no slow client was refused or cut off (client_timeout is 10 s)
    assert during["conns"] >= FLOOD  # the flood really held its connections meanwhile
    deadline = time.monotonic() + 10
    while (stats := service_state(d)["stats"])["conns"] != 0:
        assert time.monotonic() < deadline, f"connections not released: {stats}"
        time.sleep(0.1)
    assert stats["total_conns"] == 1 + FLOOD + NORMAL
    assert stats["errors"] == 0
    # what let them in: the default derived from tcpvsd's own (raised) open-files limit
    assert service_state(d)["settings"]["maxclients"] == default_maxclients(d.proc.pid)
