"""Fixtures of the unit tests (no sockets, no processes)."""

from __future__ import annotations

import pytest

from tcpvs.http import load


@pytest.fixture(scope="module", params=["python", "cython"])
def http(request):
    """Both builds of the head and chunked scanners, side by side: the sources, and what
    Cython compiled from them (when this process runs the compiled build)."""
    try:
        return load(request.param)
    except ImportError as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def no_sockets_or_processes(monkeypatch):
    """The unit tests stay fast and self-contained: a socket or a process here is a mistake
    (those tests belong in tests/e2e)."""
    import socket
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError("tests/unit may not open sockets or start processes")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
