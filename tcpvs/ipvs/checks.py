"""`--watch`'s active health checks on the event loop: one task per checked real server, each
check run by tcpvs.health.probe and counted by tcpvs.health.state.Health (tcpvsd's checks,
rise and fall). Which servers are checked, and how, is the owner's say (`update`); every
change of a server's health goes to `changed(key, health)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping

from tcpvs.health.probe import probe
from tcpvs.health.state import Health
from tcpvs.ipvs.converge import Probe, ServerKey

JITTER = 0.1  # each wait is the interval ±10 %: servers added together drift apart


class Checks:
    def __init__(self, changed: Callable[[ServerKey, Health], None]) -> None:
        self.changed = changed
        self.health: dict[ServerKey, Health] = {}
        self._tasks: dict[ServerKey, tuple[Probe, asyncio.Task[None]]] = {}

    def down(self) -> set[ServerKey]:
        return {key for key, health in self.health.items() if not health.up}

    def update(self, wanted: Mapping[ServerKey, Probe]) -> None:
        """Check exactly `wanted`. A server still checked keeps its health, under its new
        rise and fall: a reload does not bring a down server back."""
        for key, (was, task) in list(self._tasks.items()):
            if wanted.get(key) != was:
                task.cancel()
                del self._tasks[key]
        self.health = {key: h for key, h in self.health.items() if key in wanted}
        loop = asyncio.get_running_loop()
        for key, check in wanted.items():
            health = self.health.setdefault(
                key, Health(check.spec.rise, check.spec.fall, since=time.time())
            )
            health.rise, health.fall = check.spec.rise, check.spec.fall
            if key not in self._tasks:
                self._tasks[key] = (check, loop.create_task(self._check_forever(key, check)))

    async def _check_forever(self, key: ServerKey, check: Probe) -> None:
        spec = check.spec
        # The first check at a random point of the interval: a file's servers spread out.
        await asyncio.sleep(random.uniform(0, spec.interval))
        while True:
            result = await probe(spec, check.host, check.port)
            health = self.health[key]
            if health.observe(result, time.time()):
                self.changed(key, health)
            await asyncio.sleep(spec.interval * random.uniform(1 - JITTER, 1 + JITTER))

    async def close(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
