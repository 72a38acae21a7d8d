"""Fixtures that start real processes (backends, tcpvsd) and end them by PID."""

from __future__ import annotations

import pytest

from tcpvs.http import load
from tests.support.procs import Backend, Daemon, start_backend, start_daemon, stop


@pytest.fixture(scope="module", params=["python", "cython"])
def http(request):
    """Both HTTP implementations, side by side; the Cython one must be built (pip builds it)."""
    return load(request.param)


@pytest.fixture
def backends(tmp_path):
    """`backends("r1", "r2", raw=False)` starts real servers; all are stopped after the test."""
    started: list[Backend] = []

    def start(*names: str, raw: bool = False) -> list[Backend]:
        new = [start_backend(tmp_path, name, raw=raw) for name in names]
        started.extend(new)
        return new

    yield start
    for backend in started:
        stop(backend.proc)


@pytest.fixture
def daemon(tmp_path):
    """A running tcpvsd with its own control socket; stopped (SIGTERM) after the test."""
    started: list[Daemon] = []

    def start(*args: str, env: dict | None = None) -> Daemon:
        home = tmp_path / f"tcpvsd{len(started)}"  # each daemon its own control socket
        home.mkdir()
        started.append(start_daemon(home, *args, env=env))
        return started[-1]

    yield start
    for d in started:
        stop(d.proc)


class Lab:
    """One tcpvsd and three HTTP backends shared by a test module; each test adds its own
    service on a free port through the real tcpvsadm."""

    def __init__(self, daemon: Daemon, servers: list[Backend], tmp) -> None:
        self.daemon = daemon
        self.r1, self.r2, self.r3 = servers
        self.tmp = tmp
        self._count = 0

    def service(
        self,
        rules: dict[str, Backend] | None = None,
        scheduler: str = "http",
        servers: list[Backend] | None = None,
        weights: dict | None = None,
        config: str = "",
    ) -> int:
        """A started service routing `rules` (pattern -> backend); returns its port.

        With `config` (extra setting lines), the service is added by reloading the current
        `-L -n` listing plus the new block with `-f` (running services keep running)."""
        from tests.support.procs import free_port

        self._count += 1
        ident, port = f"s{self._count}", free_port()
        servers = servers if servers is not None else [self.r1, self.r2, self.r3]
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


# Every test on the lab runs against both builds of the engine and parser: the compiled one
# (what pip installs) and the pure-Python sources it is compiled from.
ENGINE_BUILDS = {"compiled": {}, "pure": {"TCPVS_PURE_PYTHON": "1"}}


@pytest.fixture(scope="module", params=list(ENGINE_BUILDS))
def lab(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    servers = [start_backend(tmp, name) for name in ("r1", "r2", "r3")]
    d = start_daemon(tmp, env=ENGINE_BUILDS[request.param])
    yield Lab(d, servers, tmp)
    stop(d.proc)
    for b in servers:
        stop(b.proc)
