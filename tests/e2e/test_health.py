"""Server states and active health checks with real processes: a server killed, answering 500
or hanging goes down within fall x interval (+1 s) and comes back after rise; clients running
the whole time see no error; drain and maint as an operator sets them; the same through
`tcpvsd --workers 2`; the check line round-trips through -L; the state changes are logged."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import get
from tests.support.procs import free_port, start_backend, stop
from tests.support.services import servers, service, wait_checked, wait_state

FAST = "interval 0.5 timeout 0.3 rise 2 fall 2"
LIMIT = 2 * 0.5 * 1.1 + 1.0  # fall x interval (+10 % jitter) + 1 s


def assert_metrics_down(admin: int, address: str) -> None:
    """/metrics on the admin address says the server is down and has failed checks."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples = {
        (sample.name, sample.labels.get("state") or sample.labels.get("result")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("server") == address
    }
    states = {state: samples[("tcpvs_server_state", state)] for state in ("up", "down")}
    assert states == {"up": 0, "down": 1}
    assert samples[("tcpvs_server_checks_total", "failed")] >= 1


def backend_of(port: int, path: str = "/") -> str:
    status, headers, _ = get(port, path, headers={"Connection": "close"})
    assert status == 200
    return headers["X-Backend"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_server_goes_down_in_time_clients_see_no_error_and_it_comes_back(
    daemon, backends, tmp_path, workers
):
    r1, r2 = backends("r1", "r2")
    d = daemon("--workers", str(workers))
    port = service(d, tmp_path, [r1.address, r2.address], f"http GET / {FAST}", "http")
    wait_checked(d, r1.address)
    statuses: list[int] = []
    done = threading.Event()

    def client() -> None:  # keep-alive GETs the whole time (bounded: 600 requests, 15 s)
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        end = time.monotonic() + 15
        for _ in range(600):
            if done.is_set() or time.monotonic() > end:
                break
            try:
                conn.request("GET", "/keepalive")
                statuses.append(conn.getresponse().read() and 200)
            except (OSError, http.client.HTTPException):
                statuses.append(0)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            time.sleep(0.01)
        conn.close()

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(0.3)
        stop(r1.proc)
        assert wait_state(d, r1.address, "down", LIMIT + 0.5) <= LIMIT
        # every new connection now goes to r2, in every worker
        assert {backend_of(port) for _ in range(10)} == {"r2"}
    finally:
        done.set()
        thread.join(20)
    assert statuses and statuses.count(0) == 0, statuses  # GETs: retried on r2, none lost
    info = servers(d)[r1.address]
    assert info["check"]["error"] == "connection refused" and info["checks"]["failed"] >= 2
    revived = start_backend(tmp_path, "r1-again", port=r1.port)
    try:
        assert wait_state(d, r1.address, "up", LIMIT + 0.5) <= LIMIT  # rise x interval (+1 s)
        assert "r1-again" in {backend_of(port) for _ in range(10)}
    finally:
        stop(revived.proc)
    log = _stderr_after_stop(d)
    assert f"service web: server {r1.address} is down: 2 failed checks: connection refused" in log
    assert f"service web: server {r1.address} is up: 2 passed checks" in log


def _stderr_after_stop(d) -> str:
    assert stop(d.proc) == 0
    return d.proc.stderr.read()


def test_a_server_answering_500_goes_down_then_up_when_the_check_changes(
    daemon, backends, tmp_path
):
    r1, r2 = backends("r1", "r2")
    admin = free_port()
    d = daemon("--admin", str(admin))
    port = service(d, tmp_path, [r1.address, r2.address], f"http GET /status/500 {FAST}", "http")
    wait_state(d, r1.address, "down", LIMIT + 0.5)
    wait_state(d, r2.address, "down", LIMIT + 0.5)
    assert get(port, "/")[0] == 503  # no server may take it
    assert servers(d)[r1.address]["check"]["status"] == 500
    assert_metrics_down(admin, r1.address)
    d.ok("-E", "-i", "web", "--check", f"http GET /status/204 expect 204 {FAST}")
    assert wait_state(d, r1.address, "up", 0.5 * 2 * 1.1 + 1.5) > 0
    assert get(port, "/")[0] == 200
    listing = d.ok("-L", "-n")
    assert f"    check = http GET /status/204 expect 204 {FAST}\n" in listing


def test_a_server_that_accepts_and_never_answers_goes_down_by_timeout(daemon, backends, tmp_path):
    (r2,) = backends("r2")
    mute = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    try:
        address = f"127.0.0.1:{mute.getsockname()[1]}"
        d = daemon()
        service(d, tmp_path, [address, r2.address], f"http GET / {FAST}")
        wait_state(d, address, "down", LIMIT + 0.5)
        check = servers(d)[address]["check"]
        assert check["error"] == "timeout" and 250 <= check["duration_ms"] <= 1000
        assert servers(d)[r2.address]["state"] == "up"
    finally:
        mute.close()


def test_drain_sends_no_new_request_and_maint_stops_the_checks(daemon, backends, tmp_path):
    r1, r2 = backends("r1", "r2")
    d = daemon()
    port = service(d, tmp_path, [r1.address, r2.address], f"tcp {FAST}")
    wait_checked(d, r1.address)
    assert {backend_of(port) for _ in range(6)} == {"r1", "r2"}
    d.ok("-e", "-i", "web", "-r", r1.address, "--state", "drain")
    info = servers(d)[r1.address]
    assert (info["state"], info["admin"], info["weight"]) == ("drain", "drain", 1)
    assert {backend_of(port) for _ in range(6)} == {"r2"}
    d.ok("-e", "-i", "web", "-r", r1.address, "--state", "maint")
    before = servers(d)[r1.address]["checks"]["passed"]
    time.sleep(1.5)  # three intervals
    assert servers(d)[r1.address]["checks"]["passed"] == before
    d.ok("-e", "-i", "web", "-r", r1.address, "--state", "ready")
    assert servers(d)[r1.address]["state"] == "up"
    assert {backend_of(port) for _ in range(6)} == {"r1", "r2"}
    refused = d.adm("-e", "-i", "web", "-r", r1.address, "--state", "off")
    assert (refused.returncode, refused.stderr) == (
        1,
        "illegal state 'off' (ready, drain or maint)\n",
    )


def test_a_server_answering_5xx_in_a_row_is_ejected_then_checked_and_taken_back(
    daemon, backends, tmp_path
):
    r1, r2 = backends("r1", "r2")
    d = daemon()
    port = service(
        d,
        tmp_path,
        [r1.address, r2.address],
        "none",
        "http",
        extra=("eject_5xx = 3", "eject_time = 1"),
        rules=(("^/status/", r1.address), (".*", r2.address)),
    )
    assert [get(port, "/status/500")[0] for _ in range(3)] == [500, 500, 500]
    assert servers(d)[r1.address]["state"] == "down"
    assert get(port, "/status/500")[0] == 503  # its rule has no server left: r1 is out
    assert get(port, "/elsewhere")[0] == 200  # r2, the last server up, is never ejected
    assert wait_state(d, r1.address, "up", 3) >= 0.5  # after eject_time and a passing check
    assert get(port, "/status/200")[0] == 200
    log = _stderr_after_stop(d)
    assert f"server {r1.address} is down: ejected for 1s: 3 answers 5xx in a row" in log
    assert f"server {r1.address} is up: ejection over, check passed: connected" in log


@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_back_up_ramps_up_over_slowstart(daemon, backends, tmp_path, workers):
    r1, r2 = backends("r1", "r2")
    d = daemon("--workers", str(workers))
    extra = ("slowstart = 5",)
    port = service(d, tmp_path, [r1.address, r2.address], f"tcp {FAST}", "wrr", extra)
    wait_checked(d, r1.address)
    stop(r1.proc)
    wait_state(d, r1.address, "down", LIMIT + 0.5)
    revived = start_backend(tmp_path, "r1-again", port=r1.port)
    try:
        wait_state(d, r1.address, "up", LIMIT + 0.5)
        early = Counter(backend_of(port) for _ in range(40))  # in its first second or so
        assert "slow start" in d.ok("-L", "--stats")
        end = time.monotonic() + 5 + 1
        while servers(d)[r1.address]["effective_weight"] < 1 and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(0.6)  # the worker not asked may be one ramp step (0.5 s) behind
        late = Counter(backend_of(port) for _ in range(40))
    finally:
        stop(revived.proc)
    # wrr at a fifth of its weight or less: at most a sixth of the connections, then half.
    # Each worker alternates on its own: one with an odd share of the 40 is off by a half.
    assert early["r1-again"] <= 40 // 6, early
    assert abs(late["r1-again"] - 20) <= workers - 1, late


@pytest.mark.parametrize("workers", [1, 2])
def test_a_servers_own_check_overrides_its_services(daemon, backends, tmp_path, workers):
    r1, r2 = backends("r1", "r2")
    d = daemon("--workers", str(workers))
    service(d, tmp_path, [r1.address, r2.address], f"tcp {FAST}")
    d.ok("-e", "-i", "web", "-r", r1.address, "--check", f"http GET /status/503 {FAST}")
    wait_state(d, r1.address, "down", LIMIT + 0.5)
    info = servers(d)
    assert info[r1.address]["check"]["status"] == 503 and info[r2.address]["state"] == "up"
    assert info[r1.address]["weight"] == 1  # --check alone keeps the weight
    listing = d.ok("-L", "-n")
    assert f"    server = {r1.address} 1 check http GET /status/503 expect 200-399 " in listing
    d.ok("-e", "-i", "web", "-r", r1.address, "--check", "default")  # the service's tcp again
    wait_state(d, r1.address, "up", LIMIT + 0.5)
    assert f"server = {r1.address} 1\n" in d.ok("-L", "-n")
