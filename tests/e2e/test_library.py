"""The library API: run virtual services inside an existing asyncio program, no daemon."""

from __future__ import annotations

import asyncio
import socket

import pytest

import tcpvs
from tests.support.procs import free_port


async def fetch(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    reply = await reader.read()
    writer.close()
    return reply


async def test_switch_runs_services_inside_an_asyncio_program(backends):
    r1, r2 = backends("r1", "r2")
    port = free_port()
    switch = tcpvs.Switch()
    await switch.add_service("web", listen=f"127.0.0.1:{port}", scheduler="http")
    await switch.add_server("web", r1.address)
    await switch.add_server("web", r2.address, weight=2)
    await switch.add_rule("web", "^/images/", r1.address)
    await switch.add_rule("web", ".*", r2.address)
    await switch.start("web")
    try:
        assert b"X-Backend: r1" in await fetch(port, "/images/a.png")
        assert b"X-Backend: r2" in await fetch(port, "/index.html")
        snap = switch.snapshot("web")["services"][0]
        assert snap["running"] and snap["stats"]["requests"] == 2
        with pytest.raises(tcpvs.TableError, match="Destination is busy"):
            await switch.delete_server("web", r1.address)
        await switch.edit_server("web", r2.address, weight=0)  # quiesced: no new requests
        assert b" 503 " in (await fetch(port, "/index.html")).split(b"\r\n")[0]
    finally:
        await switch.close()
    with pytest.raises(OSError):
        await fetch(port, "/")


async def test_editing_a_running_service_rebinds_or_changes_nothing(backends):
    (r1,) = backends("r1")
    port, new_port = free_port(), free_port()
    switch = tcpvs.Switch()
    await switch.add_service("web", listen=f"127.0.0.1:{port}")
    await switch.add_server("web", r1.address)
    await switch.start("web")
    try:
        await switch.edit_service("web", listen=f"127.0.0.1:{new_port}")
        assert b"X-Backend: r1" in await fetch(new_port, "/moved")
        # A port someone else holds: the edit is refused and nothing of it applies.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            with pytest.raises(tcpvs.TableError, match="cannot listen"):
                await switch.edit_service(
                    "web", listen=f"127.0.0.1:{busy}", scheduler="rr", server_timeout=3
                )
        service = switch.snapshot("web")["services"][0]
        assert service["listen"]["port"] == new_port and service["scheduler"] == "http"
        assert service["settings"]["server_timeout"] == 60.0
        assert service["running"]  # moved, not stopped (a restarted worker replays this)
        assert b"X-Backend: r1" in await fetch(new_port, "/still")
    finally:
        await switch.close()
