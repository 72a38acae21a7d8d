"""The access log's writer thread: batches of lines to a file opened O_APPEND (or stderr), so
that a slow disk delays the log and never the event loop."""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

log = logging.getLogger("tcpvsd")

_REOPEN = object()  # the signal to open the file anew


class Writer(threading.Thread):
    """Writes what `write()` is given, in order; `path` "-" is stderr. The file is opened
    at once, so that a bad path fails when tcpvsd starts, not later."""

    def __init__(self, path: str) -> None:
        super().__init__(name="tcpvs-access-log", daemon=True)
        self.path = path
        self.batches: queue.SimpleQueue[Any] = queue.SimpleQueue()  # bytes, _REOPEN, None
        self.fd = 2 if path == "-" else self._open()
        self.start()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, batch: bytes) -> None:
        self.batches.put(batch)

    def reopen(self) -> None:
        """Open the path anew once what was given before is written (after a rotation)."""
        self.batches.put(_REOPEN)

    def stop(self) -> None:
        """End the thread once what was given before is written."""
        self.batches.put(None)

    def run(self) -> None:
        while (batch := self.batches.get()) is not None:
            try:
                if batch is _REOPEN:
                    if self.path != "-":
                        fd, self.fd = self.fd, self._open()
                        os.close(fd)
                    continue
                view = memoryview(batch)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as exc:
                log.error("access log %s: %s", self.path, exc)
        if self.fd != 2:
            os.close(self.fd)
