"""Fixtures that start real processes (backends, tcpvsd) and end them by PID."""

from __future__ import annotations

import pytest

from tests.support.lab import Lab
from tests.support.procs import ENGINE_BUILDS, Backend, Daemon, start_backend, start_daemon, stop


@pytest.fixture
def backends(tmp_path):
    """`backends("r1", "r2", raw=False, options=())` starts real servers (`options`: of
    tests.support.backend); all are stopped after the test."""
    started: list[Backend] = []

    def start(*names: str, raw: bool = False, options: tuple[str, ...] = ()) -> list[Backend]:
        new = [start_backend(tmp_path, name, raw=raw, options=options) for name in names]
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


@pytest.fixture(scope="module", params=list(ENGINE_BUILDS))
def lab(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    servers = [start_backend(tmp, name) for name in ("r1", "r2", "r3")]
    try:
        d = start_daemon(tmp, env=ENGINE_BUILDS[request.param])
    except BaseException:  # a daemon that cannot start must not leave its servers running
        for backend in servers:
            stop(backend.proc)
        raise
    lab = Lab(d, servers, tmp)
    yield lab
    lab.close()
