"""What an operator watches, with real processes: Prometheus metrics on the admin address
(scraped and parsed with prometheus_client's own parser) agreeing with `tcpvsadm -L --json`,
the access log in both formats with plausible timers, SIGUSR1 reopening it after a rotation,
and tcpvsd's log lines under systemd carrying syslog priorities."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import RawClient, get
from tests.support.procs import ENGINE_BUILDS, ROOT, free_port, stop

BAD_HEAD = b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n"  # obs-fold: 400, never sent on


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def service_labels(ident: str, **more: str) -> tuple:
    return tuple(sorted({"service": ident, **more}.items()))


def traffic(port: int) -> None:
    """Known requests, each on its own connection (so that workers share them): 12 answered
    200, 3 answered 404 by the server, 2 refused 400 by the switch."""
    for n in range(12):
        assert get(port, f"/hello/{n}", headers={"Connection": "close"})[0] == 200
    for _ in range(3):
        assert get(port, "/status/404", headers={"Connection": "close"})[0] == 404
    for _ in range(2):
        with RawClient(port) as client:
            client.send(BAD_HEAD)
            assert client.response()[0] == 400


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("build", list(ENGINE_BUILDS))
def test_metrics_agree_with_the_json_listing_after_known_traffic(daemon, backends, build, workers):
    r1, r2 = backends("r1", "r2")
    admin = free_port()
    d = daemon("--admin", str(admin), "--workers", str(workers), env=ENGINE_BUILDS[build])
    port = free_port()
    d.ok("-A", "-i", "web", "-s", "http", "-l", f"127.0.0.1:{port}")
    d.ok("-a", "-i", "web", "-r", r1.address)
    d.ok("-a", "-i", "web", "-r", r2.address)
    d.ok("--start", "-i", "web")
    traffic(port)
    metrics = scrape(admin)
    listing = json.loads(d.ok("-L", "--json"))
    svc = listing["services"][0]
    stats = svc["stats"]
    web = service_labels("web")

    assert metrics[("tcpvs_service_requests_total", web)] == stats["requests"] == 15
    assert metrics[("tcpvs_service_connections_total", web)] == stats["total_conns"] == 17
    assert metrics[("tcpvs_service_received_bytes_total", web)] == stats["bytes_in"] > 0
    assert metrics[("tcpvs_service_sent_bytes_total", web)] == stats["bytes_out"] > 0
    for code, expected in {"2xx": 12, "4xx": 5, "5xx": 0}.items():
        labels = service_labels("web", code=code)
        assert metrics[("tcpvs_service_responses_total", labels)] == expected
        assert stats["responses"][code] == expected
    bad = service_labels("web", cause="bad_request")
    assert metrics[("tcpvs_service_errors_total", bad)] == stats["causes"]["bad_request"] == 2
    assert metrics[("tcpvs_workers", ())] == workers
    answered = 0
    for server in svc["servers"]:
        labels = service_labels("web", server=f"{server['host']}:{server['port']}")
        s = server["stats"]
        assert metrics[("tcpvs_server_requests_total", labels)] == s["requests"]
        assert metrics[("tcpvs_server_sent_bytes_total", labels)] == s["bytes_in"]
        assert metrics[("tcpvs_server_received_bytes_total", labels)] == s["bytes_out"]
        count = metrics[("tcpvs_server_request_duration_seconds_count", labels)]
        assert count == sum(s["duration"]["buckets"]) == s["requests"]
        assert metrics[("tcpvs_server_first_byte_seconds_count", labels)] == s["requests"]
        inf = tuple(sorted({**dict(labels), "le": "+Inf"}.items()))
        assert metrics[("tcpvs_server_first_byte_seconds_bucket", inf)] == s["requests"]
        seconds = metrics[("tcpvs_server_first_byte_seconds_sum", labels)]
        assert seconds == pytest.approx(s["first_byte"]["sum"])
        assert (seconds > 0) == (s["requests"] > 0)
        answered += s["requests"]
    assert answered == 15
    assert metrics[("process_cpu_seconds_total", ())] > 0  # the client library's defaults
    assert metrics[("tcpvs_config_loads_total", (("result", "ok"),))] == 0


def test_admin_address_serves_only_what_it_has_and_refuses_bad_values(daemon):
    admin = free_port()
    daemon("--admin", f"127.0.0.1:{admin}")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{admin}/nope", timeout=10)
    assert missing.value.code == 404
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats.json", timeout=10) as resp:
        assert json.loads(resp.read())["services"] == []
    bad = subprocess.run(
        [sys.executable, "-m", "tcpvs.daemon", "--admin", "127.0.0.1:99999"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "--admin" in bad.stderr and "65535" in bad.stderr


def _requests(port: int, raw_port: int) -> None:
    assert get(port, "/hello")[0] == 200
    assert get(port, "/echo", method="POST", body=b"x" * 1000)[0] == 200
    assert get(port, "/slow/150")[0] == 200
    with RawClient(port) as client:
        client.send(BAD_HEAD)
        assert client.response()[0] == 400
    with RawClient(raw_port) as client:
        client.sock.recv(100)  # the raw backend's banner


def _service(d, backend, ident: str, scheduler: str = "http") -> int:
    port = free_port()
    d.ok("-A", "-i", ident, "-s", scheduler, "-l", f"127.0.0.1:{port}")
    d.ok("-a", "-i", ident, "-r", backend.address)
    d.ok("--start", "-i", ident)
    return port


def _lines(path: Path, count: int) -> list[str]:
    """The log's lines once there are `count` (lines are written within a fraction of a
    second, by a thread)."""
    deadline = time.monotonic() + 10
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("build", list(ENGINE_BUILDS))
def test_the_json_access_log_has_every_request_with_its_timers(daemon, backends, tmp_path, build):
    (r1,) = backends("r1")
    (raw,) = backends("raw", raw=True)
    log = tmp_path / "access.json"
    d = daemon("--access-log", str(log), "--access-log-format", "json", env=ENGINE_BUILDS[build])
    port, raw_port = _service(d, r1, "web"), _service(d, raw, "tcp", "wlc")
    _requests(port, raw_port)
    entries = [json.loads(line) for line in _lines(log, 5)]
    by_uri = {e["uri"]: e for e in entries if e["protocol"] == "http"}
    hello, echo, slow = by_uri["/hello"], by_uri["/echo"], by_uri["/slow/150"]
    for e in (hello, echo, slow):
        assert e["service"] == "web" and e["server"] == r1.address and e["status"] == 200
        assert e["client"] == "127.0.0.1" and e["cause"] is None and e["retries"] == 0
        assert 0 <= e["tq_ms"] <= e["tt_ms"] and e["tc_ms"] >= 0 and e["tr_ms"] >= 0
        assert e["bytes_out"] > 0
    assert echo["method"] == "POST" and echo["bytes_in"] > 1000 and echo["bytes_out"] > 1000
    assert slow["tr_ms"] >= 150 and slow["tt_ms"] >= slow["tr_ms"]
    bad = by_uri[None]
    assert (bad["status"], bad["cause"], bad["server"]) == (400, "bad_request", None)
    tcp = [e for e in entries if e["protocol"] == "tcp"]
    assert [(e["service"], e["server"], e["method"]) for e in tcp] == [("tcp", raw.address, None)]
    assert tcp[0]["bytes_out"] > 0 and tcp[0]["tt_ms"] >= 0


TEXT_LINE = re.compile(
    r"^127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] (?P<service>\S+) "
    r'(?P<server>\S+) (?P<request>"[^"]*"|-) (?P<status>\d{3}|-) (?P<bytes_in>\d+) '
    r"(?P<bytes_out>\d+) (?P<tq>-?\d+)/(?P<tc>-?\d+)/(?P<tr>-?\d+)/(?P<tt>\d+) "
    r"(?P<retries>\d+) (?P<cause>\S+)$"
)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_text_access_log_and_sigusr1_after_a_rotation(daemon, backends, tmp_path, workers):
    (r1,) = backends("r1")
    (raw,) = backends("raw", raw=True)
    log = tmp_path / "access.log"
    d = daemon("--access-log", str(log), "--workers", str(workers))
    port, raw_port = _service(d, r1, "web"), _service(d, raw, "tcp", "wlc")
    _requests(port, raw_port)
    fields = [TEXT_LINE.match(line) for line in _lines(log, 5)]
    assert all(fields), _lines(log, 5)
    requests = {m["request"]: m for m in fields if m}
    assert requests['"GET /hello HTTP/1.1"']["status"] == "200"
    assert int(requests['"GET /slow/150 HTTP/1.1"']["tr"]) >= 150
    assert requests['"<BADREQ>"']["cause"] == "bad_request"
    assert requests["-"]["service"] == "tcp" and requests["-"]["status"] == "-"
    # logrotate without copytruncate: the file is moved, then SIGUSR1 reopens the path.
    rotated = log.rename(tmp_path / "access.log.1")
    os.kill(d.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # every worker reopens (the file appears at the first one)
    time.sleep(0.3)
    for n in range(4):  # new connections: with 2 workers, both serve some
        assert get(port, f"/after/{n}", headers={"Connection": "close"})[0] == 200
    after = _lines(log, 4)
    assert len(after) == 4 and all("/after/" in line for line in after)
    assert len(rotated.read_text().splitlines()) == 5


def test_a_service_with_access_log_on_logs_to_stderr_without_the_option(daemon, backends, tmp_path):
    (r1,) = backends("r1")
    d = daemon()
    port = free_port()
    config = tmp_path / "on.conf"
    config.write_text(
        f"Virtual web {{\n    listen = 127.0.0.1:{port}\n    scheduler = http\n"
        f"    server = {r1.address} 1\n    access_log = on\n}}\n"
    )
    d.ok("-f", str(config))
    d.ok("--start")
    assert "access_log = on" in d.ok("-L", "-n")  # the listing keeps it (it round-trips)
    assert get(port, "/logged-here")[0] == 200
    time.sleep(0.5)
    assert stop(d.proc) == 0
    stderr = d.proc.stderr.read()
    assert re.search(r'web \S+ "GET /logged-here HTTP/1.1" 200 ', stderr), stderr


def test_log_lines_carry_syslog_priorities_when_stderr_is_the_journal(tmp_path):
    """systemd gives a service JOURNAL_STREAM=dev:inode of its stderr; tcpvsd then prefixes
    each line with its priority (<4> a warning) and adds no timestamp."""
    err = tmp_path / "stderr"
    with err.open("w") as handle:
        st = os.fstat(handle.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        sock = tmp_path / "s.sock"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tcpvs.daemon", "--socket", str(sock)],
            cwd=ROOT,
            env=env,
            stderr=handle,
        )
        try:
            deadline = time.monotonic() + 15
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGHUP)  # without -f: a warning, and it goes on
            time.sleep(0.5)
        finally:
            assert stop(proc) == 0
    assert "<4>tcpvsd: SIGHUP: no config file to reload" in err.read_text()
