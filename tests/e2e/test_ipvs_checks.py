"""--watch's health checks on a real event loop against a server of the test's own on loopback:
down after `fall` failures once it stops, up after `rise` passes once it is back, a reload
that keeps a down server down."""

from __future__ import annotations

import asyncio
import time

from tcpvs.health.spec import parse_check
from tcpvs.health.state import Health
from tcpvs.ipvs.checks import Checks
from tcpvs.ipvs.converge import Probe, ServerKey

WAIT = 5.0  # seconds: the bound of every wait here
CHECK = "http GET /ok expect 200 interval 0.1 timeout 0.05 rise 2 fall 3"
KEY: ServerKey = ((2, 6, "10.0.0.1", 80, 0), (2, "127.0.0.1", 0))


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


async def test_down_after_fall_failures_and_up_after_rise_passes() -> None:
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    changes: asyncio.Queue[tuple[bool, int, str]] = asyncio.Queue()

    def changed(key: ServerKey, health: Health) -> None:
        assert key == KEY
        changes.put_nowait((health.up, health.fails, health.reason()))

    checks = Checks(changed)
    spec = parse_check(CHECK)
    assert spec is not None
    checks.update({KEY: Probe(spec, "127.0.0.1", port)})
    try:
        await asyncio.sleep(0.5)  # passing: no change
        assert changes.empty() and checks.health[KEY].passed >= 3
        server.close()
        await server.wait_closed()
        stopped = time.monotonic()
        up, fails, reason = await asyncio.wait_for(changes.get(), WAIT)
        # three checks in a row (each interval +-10 %), the first within one interval
        assert time.monotonic() - stopped < 3 * 0.11 + 0.5
        assert (up, fails, reason) == (False, 3, "3 failed checks: connection refused")
        assert checks.down() == {KEY}

        # a reload with another rise: the server stays down, under the new rule
        stricter = parse_check(CHECK.replace("rise 2", "rise 3"))
        assert stricter is not None
        checks.update({KEY: Probe(stricter, "127.0.0.1", port)})
        assert checks.down() == {KEY} and checks.health[KEY].rise == 3

        server = await asyncio.start_server(answer, "127.0.0.1", port)
        up, _, reason = await asyncio.wait_for(changes.get(), WAIT)
        assert (up, reason) == (True, "3 passed checks: HTTP 200")
        assert checks.down() == set()
    finally:
        await checks.close()
        server.close()


async def test_a_server_no_longer_checked_is_forgotten() -> None:
    spec = parse_check("tcp interval 0.1 timeout 0.05")
    assert spec is not None
    closed = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    checks = Checks(lambda key, health: None)
    checks.update({KEY: Probe(spec, "127.0.0.1", port)})
    try:
        # a server never seen passing is down after its first failure
        deadline = time.monotonic() + WAIT
        while not checks.down():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        checks.update({})
        assert checks.down() == set() and checks.health == {}
    finally:
        await checks.close()
