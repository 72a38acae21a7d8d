"""AsyncIPVS: the IPVS API as coroutines, each call run in a worker thread.

Netlink requests take microseconds; a thread keeps the event loop free without a second
codec. One lock serialises calls on the single socket.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tcpvs.ipvs.api import IPVS


class AsyncIPVS:
    """`await AsyncIPVS.open()`, then the methods of IPVS, awaited."""

    def __init__(self, ipvs: IPVS) -> None:
        self._ipvs = ipvs
        self._lock = threading.Lock()

    @classmethod
    async def open(cls) -> AsyncIPVS:
        return cls(await asyncio.to_thread(IPVS))

    async def __aenter__(self) -> AsyncIPVS:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._call(self._ipvs.close)

    async def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return func(*args)

        return await asyncio.to_thread(locked)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._ipvs, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        @functools.wraps(method)
        async def call(*args: Any) -> Any:
            return await self._call(method, *args)

        return call
