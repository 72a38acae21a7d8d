"""A real headless Chromium for the end-to-end tests, driven over the DevTools protocol.

The protocol runs on a pipe (`--remote-debugging-pipe`): JSON messages ended by a NUL byte,
read by the browser from its fd 3 and written to its fd 4. So no websocket client and no
debugging port are needed, and nothing but the pages we open is reachable.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.procs import process_tree, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Quiet and local: no first-run pages, no background calls to Google, and timers of a page
# nobody looks at run at full speed (the stats page polls every second).
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root, where the sandbox refuses to start
    "--remote-debugging-pipe",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-default-apps",
    "--no-pings",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


class BrowserError(RuntimeError):
    pass


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


class Browser:
    """One headless Chromium with a temporary profile in `home`; use as a context manager."""

    def __init__(self, home: Path, timeout: float = 15) -> None:
        if CHROMIUM is None:
            raise BrowserError("chromium is not installed")
        self.timeout = timeout
        home.mkdir(parents=True, exist_ok=True)
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # The browser's ends go to its fds 3 and 4; first lift them out of the way (>= 5) so
        # neither dup2 below can overwrite the other before it is copied.
        child_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD_CLOEXEC, 5)
        child_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD_CLOEXEC, 5)
        for fd in (to_browser, from_browser):
            os.close(fd)

        def browser_fds() -> None:  # in the child, before exec; dup2 makes them inheritable
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log = home / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={home / 'profile'}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=browser_fds,
                close_fds=False,  # would close 3 and 4; our other fds are close-on-exec anyway
            )
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> Any:
        """One command; its result, skipping the events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply["result"]

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise BrowserError(f"no answer from chromium in {self.timeout}s")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium exited; its log: {self.log}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int = 1000, height: int = 800, mobile: bool = False) -> Page:
        """A new tab showing `url`, `width` x `height` CSS pixels."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        page.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while True:  # until the new document is there (meanwhile: about:blank, or no context)
            with contextlib.suppress(BrowserError):
                if page.evaluate(f"location.href === {json.dumps(url)} && !!document.body"):
                    return page
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load in {self.timeout}s")
            time.sleep(0.05)

    def close(self) -> None:
        """Ask the browser to quit, then end whatever is left of its processes by PID."""
        exe, helpers = _exe(self.proc.pid), process_tree(self.proc.pid)[1:]
        try:
            if self.proc.poll() is None:
                self.send("Browser.close")
            self.proc.wait(5)
        except (BrowserError, OSError, subprocess.TimeoutExpired):
            stop(self.proc)
        for pid in helpers:  # zygotes, renderers: should any outlive it (same binary only)
            if exe is not None and _exe(pid) == exe:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        os.close(self._in)
        os.close(self._out)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab, attached in flat mode: its commands go through the browser's pipe."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        done = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in done:
            raise BrowserError(f"{expression}: {done['exceptionDetails']}")
        return done["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10, every: float = 0.1) -> Any:
        """Evaluate until the value is truthy; that value. AssertionError (with the last
        value) when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"still {value!r} after {timeout}s: {expression}"
            time.sleep(every)
        return value

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
