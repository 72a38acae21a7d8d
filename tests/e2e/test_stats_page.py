"""The stats page (`tcpvsd --admin`, GET /) in a real headless Chromium: it shows the services
of a real tcpvsd, its rates follow real traffic, and it says so when tcpvsd is gone."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, Browser
from tests.support.procs import Backend, free_port, stop

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (Debian package chromium; scripts/setup installs it)"
)

LOAD = 200  # requests sent while the page watches
# What the page shows of service `web`, read as the operator reads it: the displayed text.
VIEW = """(() => {
  const s = document.querySelector('[data-service="web"]');
  if (!s) return null;
  const text = (root, field) => root.querySelector(`[data-field="${field}"]`).textContent;
  const rows = [...s.querySelectorAll("tr[data-server]")];
  return {
    state: document.body.dataset.state,
    ident: text(s, "ident"), servers: text(s, "servers"), running: text(s, "state"),
    rate: text(s.querySelector("dl"), "rate"), requests: text(s.querySelector("dl"), "requests"),
    rows: rows.map(r => [r.dataset.server, text(r, "requests"), text(r, "rate")]),
  };
})()"""


def number(text: str) -> float:
    """A displayed figure ("1,234", "0.0"); the page shows "–" while there is none yet."""
    return float(text.replace(",", "")) if text != "–" else -1.0


def config(port: int, servers: list[Backend]) -> str:
    lines = [f"Virtual web {{\n    listen = 127.0.0.1:{port}\n    scheduler = http"]
    lines += [f"    server = {b.address} 1" for b in servers]
    return "\n".join(lines) + "\n}\n"


def send_load(port: int, count: int, done: list[int | Exception]) -> None:
    """`count` GETs on one keep-alive connection, paced to span a few of the page's polls;
    each status (or the error that ended the load) goes to `done`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for i in range(count):
            conn.request("GET", f"/load/{i}")
            resp = conn.getresponse()
            resp.read()
            done.append(resp.status)
            time.sleep(0.01)
    except (OSError, http.client.HTTPException) as exc:
        done.append(exc)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    with Browser(tmp_path_factory.mktemp("chromium")) as b:
        yield b


def test_the_page_shows_the_service_and_rates_that_follow_traffic(
    browser, daemon, backends, tmp_path: Path
):
    r1, r2 = backends("r1", "r2")
    port, admin = free_port(), free_port()
    conf = tmp_path / "tcpvs.conf"
    conf.write_text(config(port, [r1, r2]))
    daemon("-f", str(conf), "--admin", f"127.0.0.1:{admin}")
    page = browser.open(f"http://127.0.0.1:{admin}/")

    # Idle: two polls are needed before there is a rate at all.
    idle = page.wait_for(f"(v => v && v.rate !== '–' && v)({VIEW})")
    assert (idle["state"], idle["ident"], idle["running"]) == ("ok", "web", "running")
    assert idle["servers"] == "2"
    assert [row[0] for row in idle["rows"]] == [r1.address, r2.address]
    assert (idle["rate"], idle["requests"]) == ("0.0", "0")

    statuses: list[int | Exception] = []
    load = threading.Thread(target=send_load, args=(port, LOAD, statuses), daemon=True)
    load.start()
    peak, deadline = 0.0, time.monotonic() + 30
    while True:  # until the page has counted every request sent
        view = page.evaluate(VIEW)
        peak = max(peak, number(view["rate"]))
        if not load.is_alive() and number(view["requests"]) >= LOAD:
            break
        failed = [s for s in statuses if isinstance(s, Exception)]
        assert not failed, f"the load failed after {len(statuses) - 1} requests: {failed[0]!r}"
        assert time.monotonic() < deadline, f"the page still shows {view} ({len(statuses)} sent)"
        time.sleep(0.1)
    load.join(5)
    assert statuses == [200] * LOAD
    assert peak > 0, "the request rate never rose under load"
    assert sum(number(requests) for _, requests, _ in view["rows"]) >= LOAD

    # A rate, not a count: back to zero once the traffic stops.
    page.wait_for(f"({VIEW}).rate === '0.0'", timeout=10)


def test_the_page_says_when_tcpvsd_is_gone_and_recovers(browser, daemon, backends, tmp_path: Path):
    (r1,) = backends("r1")
    port, admin = free_port(), free_port()
    conf = tmp_path / "tcpvs.conf"
    conf.write_text(config(port, [r1]))
    first = daemon("-f", str(conf), "--admin", f"127.0.0.1:{admin}")
    page = browser.open(f"http://127.0.0.1:{admin}/")
    page.wait_for("document.body.dataset.state === 'ok'")

    stop(first.proc)
    message = page.wait_for(
        "document.body.dataset.state === 'error' && document.getElementById('status').textContent"
    )
    assert "Cannot get stats.json from tcpvsd" in message
    assert page.evaluate(f"({VIEW}).ident") == "web"  # the last figures stay, marked stale

    # It kept polling: a new tcpvsd on the same admin address is picked up by itself.
    daemon("-f", str(conf), "--admin", f"127.0.0.1:{admin}")
    page.wait_for("document.body.dataset.state === 'ok'")
    assert page.evaluate("document.getElementById('status').hidden") is True
