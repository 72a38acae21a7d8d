"""The shared end-to-end rig: one real tcpvsd and real backends, services added per test."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import Backend, Daemon, free_port, stop


class Lab:
    """One tcpvsd and its backends, shared by a test module; each test adds its own service
    on a free port through the real tcpvsadm. `r1`, `r2`, `r3`: the first backends."""

    def __init__(self, daemon: Daemon, servers: list[Backend], tmp: Path) -> None:
        self.daemon = daemon
        self.servers = servers
        self.tmp = tmp
        self.port = 0  # the port of the service a fixture made for the whole module, if any
        self._count = 0

    @property
    def r1(self) -> Backend:
        return self.servers[0]

    @property
    def r2(self) -> Backend:
        return self.servers[1]

    @property
    def r3(self) -> Backend:
        return self.servers[2]

    def received(self) -> list[dict]:
        """Every request any of the backends logged."""
        return [r for b in self.servers for r in b.requests()]

    def close(self) -> None:
        stop(self.daemon.proc)
        for b in self.servers:
            stop(b.proc)

    def service(
        self,
        rules: dict[str, Backend] | None = None,
        scheduler: str = "http",
        servers: list[Backend] | None = None,
        weights: dict | None = None,
        config: str = "",
        ident: str = "",
    ) -> int:
        """A started service routing `rules` (pattern -> backend); returns its port.

        With `config` (extra setting lines), the service is added by reloading the current
        `-L -n` listing plus the new block with `-f` (running services keep running)."""
        self._count += 1
        ident, port = ident or f"s{self._count}", free_port()
        servers = servers if servers is not None else self.servers[:3]
        weights = weights or {}
        d = self.daemon
        if config:
            lines = [
                f"Virtual {ident} {{",
                f"    listen = 127.0.0.1:{port}",
                f"    scheduler = {scheduler}",
                config,
            ]
            lines += [f"    server = {b.address} {weights.get(b.name, 1)}" for b in servers]
            lines += [
                f'    rule = pattern "{p}" use server {b.address}' for p, b in (rules or {}).items()
            ]
            current = d.ok("-L", "-n").split("\n", 1)[1]  # without the version header
            path = self.tmp / f"{ident}.conf"
            path.write_text(current + "\n".join(lines) + "\n}\n")
            d.ok("-f", str(path))
        else:
            d.ok("-A", "-i", ident, "-s", scheduler, "-l", f"127.0.0.1:{port}")
            for b in servers:
                d.ok("-a", "-i", ident, "-r", b.address, "-w", str(weights.get(b.name, 1)))
            for pattern, b in (rules or {}).items():
                d.ok("--add-rule", "-i", ident, "-p", pattern, "-r", b.address)
        d.ok("--start", "-i", ident)
        return port
