"""A server that never answers, for checks that must wait, time out or be cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def mute_server() -> AsyncIterator[tuple[int, asyncio.Queue[bytes]]]:
    """(its port on 127.0.0.1, what each connection sent until the other end closed it), one
    queue item per connection, put when that connection ends."""
    ends: asyncio.Queue[bytes] = asyncio.Queue()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ends.put(await reader.read())
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], ends
