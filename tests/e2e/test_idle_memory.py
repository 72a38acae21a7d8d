"""Regression guard for idle connections that does not depend on timing: tcpvsd's resident memory
growth for 10,000 keep-alive client connections that each made one request and stay open must
stay within the issue's target (40 MiB), and every connection must still be open and usable.

Measured 2026-11-23 on the 2-core dev machine (uvloop 0.23, Python 3.11), every run: +23.5 MiB
(2.40 KiB per connection) with the pure-Python engine, +22.4 MiB with the compiled one. The
bench and the breakdown: `python -m bench.idle [--trace]` (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import resource

import pytest

from tests.support.idle import (
    COUNT,
    TARGET_MIB,
    IdleClients,
    measure_idle,
    nofile_needed,
    raise_nofile,
    warm_up,
)
from tests.support.procs import free_port

# The production setup (scheduler http, two rules, X-Forwarded-For on); maxclients admits
# every connection, and keep-alive must outlast opening and measuring all of them.
CONFIG = """Virtual idle {{
    listen = 127.0.0.1:{port}
    scheduler = http
    maxclients = 65535
    keepalive_timeout = 600
    server = 127.0.0.1:{b1} 1
    server = 127.0.0.1:{b2} 1
    rule = pattern "^/a/" use server 127.0.0.1:{b1}
    rule = pattern ".*" use server 127.0.0.1:{b2}
}}
"""

SAMPLE = 500  # connections that make a second request


@pytest.fixture
def nofile():
    """This process's file limit, restored after the test (the clients raise it)."""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = nofile_needed(COUNT)
    if limits[1] < need:
        pytest.skip(
            f"hard RLIMIT_NOFILE {limits[1]} < {need}: {COUNT} client connections need "
            "`ulimit -Hn` raised"
        )
    yield need
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


@pytest.mark.timeout(120)
def test_idle_keepalive_connections_memory(nofile, daemon, backends, tmp_path):
    r1, r2 = backends("r1", "r2")
    d = daemon()
    raise_nofile(nofile, d.proc.pid)  # whatever soft limit tcpvsd keeps for itself
    port = free_port()
    conf = tmp_path / "idle.conf"
    conf.write_text(CONFIG.format(port=port, b1=r1.port, b2=r2.port))
    d.ok("-f", str(conf))
    d.ok("--start")
    warm_up(port)
    with IdleClients(port) as clients:
        result = measure_idle(d.proc.pid, clients, COUNT)
        assert result.rss_growth_mib <= TARGET_MIB, result.summary()
        assert clients.still_open() == COUNT, "tcpvsd closed idle connections"
        (service,) = json.loads(d.ok("-L", "--json"))["services"]
        assert service["stats"]["conns"] == COUNT, service["stats"]
        # Usable, not just open: a second request on a sample spread over all of them.
        clients.request(range(0, COUNT, COUNT // SAMPLE))
        assert clients.still_open() == COUNT
