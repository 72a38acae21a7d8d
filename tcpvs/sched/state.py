"""Per-server scheduler state kept by server identity, forgetting servers no longer offered.

Schedulers see candidate lists, never the deletion of a server, so state lives in two
generations: once the current one holds `limit` servers it becomes the old one, servers
still offered move back on their next use, and the rest are dropped at the next turn.
Memory stays under 2 * `limit` entries whatever the churn, and no state is lost while a
service has fewer servers than that, however rarely a rule is used.
"""

from __future__ import annotations

from tcpvs.model import RealServer


class ServerState:
    """An int per server, `default` until set."""

    __slots__ = ("default", "limit", "_new", "_old")

    def __init__(self, default: int = 0, limit: int = 1024) -> None:
        self.default = default
        self.limit = limit
        self._new: dict[RealServer, int] = {}
        self._old: dict[RealServer, int] = {}

    def get(self, server: RealServer) -> int:
        value = self._new.get(server)
        if value is None:
            value = self._old.pop(server, self.default)
            if len(self._new) >= self.limit:
                self._old, self._new = self._new, {}
            self._new[server] = value
        return value

    def set(self, server: RealServer, value: int) -> None:
        self._new[server] = value

    def __len__(self) -> int:
        return len(self._new) + len(self._old)
