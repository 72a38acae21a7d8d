"""A scheduler from another package, found by name through its entry point by a real tcpvsd."""

from __future__ import annotations

from tests.support.client import get
from tests.support.extsched import PLUGIN_HEADER, PLUGIN_NAME, build_extsched, plugin_env
from tests.support.procs import free_port


def test_tcpvsd_loads_a_third_party_scheduler_by_name(daemon, backends, tmp_path):
    r1, r2 = backends("r1", "r2")
    plain = daemon()
    refused = plain.adm("-A", "-i", "web", "-s", PLUGIN_NAME)
    assert (refused.returncode, refused.stderr.strip()) == (1, "Scheduler not found")
    plain.ok("-F")

    d = daemon(env=plugin_env(build_extsched(tmp_path)))
    port = free_port()
    d.ok("-A", "-i", "web", "-s", PLUGIN_NAME, "-l", f"127.0.0.1:{port}")
    d.ok("-a", "-i", "web", "-r", r1.address)
    d.ok("-a", "-i", "web", "-r", r2.address)
    d.ok("--add-rule", "-i", "web", "-p", "^/", "-r", r1.address)
    d.ok("--add-rule", "-i", "web", "-p", "^/", "-r", r2.address)
    d.ok("--start", "-i", "web")
    for i in range(4):
        _, headers, _ = get(port, f"/{i}")
        assert headers["X-Backend"] == "r1"  # `first` always takes the first candidate
        assert headers["X-Scheduler"] == PLUGIN_HEADER.split(b": ")[1].decode()
        # told of both servers, and of this request (taken) but not of the ones before
        # (each released): its own state agrees with the engine's
        assert headers["X-Scheduler-State"] == "2 1"
    d.ok("--del-rule", "-i", "web", "-p", "^/", "-r", r2.address)
    d.ok("-d", "-i", "web", "-r", r2.address)
    assert get(port, "/after")[1]["X-Scheduler-State"] == "1 1"  # told of the removal
    assert f"scheduler = {PLUGIN_NAME}" in d.ok("-L", "-n")
