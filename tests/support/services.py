"""Services of the end-to-end tests made as operators make them (a config file loaded with
tcpvsadm -f, then --start), and what `-L --json` says of their servers."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.procs import free_port


def servers(d, ident: str = "web") -> dict[str, dict]:
    """Each server of a service in `-L --json`, by address."""
    snap = json.loads(d.ok("-L", "--json"))
    svc = next(s for s in snap["services"] if s["ident"] == ident)
    return {f"{s['host']}:{s['port']}": s for s in svc["servers"]}


def wait_state(d, address: str, state: str, seconds: float) -> float:
    """Seconds until `address` is in `state` (fails the test after `seconds`)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if servers(d)[address]["state"] == state:
            return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"{address} not {state} after {seconds}s: {servers(d)[address]}")


def wait_checked(d, address: str, seconds: float = 5) -> None:
    """Until `address` has passed a check (before that, one failure takes it down)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if (servers(d)[address]["checks"] or {}).get("passed"):
            return
        time.sleep(0.05)
    pytest.fail(f"{address} passed no check in {seconds}s")


def service(
    d,
    tmp_path,
    addresses: list[str],
    check: str,
    scheduler: str = "rr",
    extra: tuple[str, ...] = (),
    rules: tuple[tuple[str, str], ...] = (),
) -> int:
    """A started service `web` (by a config file, as operators do); returns its port."""
    port = free_port()
    lines = [
        "Virtual web {",
        f"    listen = 127.0.0.1:{port}",
        f"    scheduler = {scheduler}",
        *[f"    {line}" for line in extra],
        *[f"    server = {a} 1" for a in addresses],
        *[f'    rule = pattern "{pattern}" use server {a}' for pattern, a in rules],
        f"    check = {check}",
        "}",
    ]
    conf = tmp_path / "health.conf"
    conf.write_text("\n".join(lines) + "\n")
    d.ok("-f", str(conf))
    d.ok("--start")
    return port
