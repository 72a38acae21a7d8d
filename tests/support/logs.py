"""A process's stderr read as it is written, so that a chatty process (a traceback per
request) never blocks on a full pipe, and a test can check its whole log afterwards."""

from __future__ import annotations

import subprocess
import threading


class StderrLog:
    """Collects everything `proc` (started with stderr=PIPE, text=True) writes to stderr."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._lines.extend, args=(proc.stderr,))
        self._thread.daemon = True
        self._thread.start()

    def text(self, timeout: float = 10) -> str:
        """All of it: call once the process has exited (the pipe then ends)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the process's stderr did not end"
        return "".join(self._lines)
