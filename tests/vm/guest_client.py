"""HTTP client run inside the test VM (one Python start for a whole batch of requests).

  guest_client.py get URL...                      each URL on a new connection
  guest_client.py hold URL N READY RELEASE        N keep-alive connections: one request each,
      write READY (JSON), wait for the file RELEASE to exist, one more request on each
  guest_client.py loop URL READY STOP             URL on a new connection every PACE s (READY
      written after the first answer) until the file STOP exists; each request also has
      "time" (when it started, time.time()) and, when it failed, "error" (status None)
Prints a JSON list on stdout; per request {"status", "backend" (X-Backend), "body"}."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from urllib.parse import urlsplit

TIMEOUT = 20.0  # seconds per request: bounded, as every load loop in the suite
HOLD_LIMIT = 120.0  # seconds a hold (or a loop) waits for RELEASE (STOP) at most
PACE = 0.05  # seconds between a loop's requests: the guest's one CPU also runs the servers


def connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=TIMEOUT)
    return conn, parts.path or "/"


def request(conn: http.client.HTTPConnection, path: str) -> dict[str, object]:
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    return {"status": resp.status, "backend": resp.getheader("X-Backend"), "body": body}


def get(urls: list[str]) -> list[dict[str, object]]:
    answers = []
    for url in urls:
        conn, path = connect(url)
        try:
            answers.append(request(conn, path))
        finally:
            conn.close()
    return answers


def hold(url: str, count: int, ready: str, release: str) -> list[dict[str, object]]:
    conns = [connect(url) for _ in range(count)]
    first = [request(conn, path) for conn, path in conns]
    with open(ready + ".tmp", "w") as f:
        json.dump(first, f)
    os.rename(ready + ".tmp", ready)  # the host never reads half a file
    deadline = time.monotonic() + HOLD_LIMIT
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise SystemExit(f"{release} did not appear within {HOLD_LIMIT} s")
        time.sleep(0.1)
    second = [request(conn, path) for conn, path in conns]
    for conn, _path in conns:
        conn.close()
    return [{"first": a, "second": b} for a, b in zip(first, second, strict=True)]


def loop(url: str, ready: str, stop: str) -> list[dict[str, object]]:
    answers: list[dict[str, object]] = []
    deadline = time.monotonic() + HOLD_LIMIT
    while not os.path.exists(stop):
        if time.monotonic() > deadline:
            raise SystemExit(f"{stop} did not appear within {HOLD_LIMIT} s")
        started = time.time()
        conn, path = connect(url)
        try:
            answers.append({"time": started, **request(conn, path)})
        except OSError as exc:
            answers.append({"time": started, "status": None, "backend": None, "error": str(exc)})
        finally:
            conn.close()
        if len(answers) == 1:
            with open(ready, "w"):
                pass
        time.sleep(PACE)
    return answers


def main(argv: list[str]) -> None:
    if argv[:1] == ["get"]:
        result = get(argv[1:])
    elif argv[:1] == ["hold"] and len(argv) == 5:
        result = hold(argv[1], int(argv[2]), argv[3], argv[4])
    elif argv[:1] == ["loop"] and len(argv) == 4:
        result = loop(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(__doc__)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
