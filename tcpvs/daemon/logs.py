"""tcpvsd's own log lines on stderr: `tcpvsd: message`, no timestamps (the journal or the
terminal adds its own), and under systemd each line prefixed with its syslog priority
(`<3>`, sd-daemon(3)) so that `journalctl -p err` filters them."""

from __future__ import annotations

import logging
import os
import sys

# logging levels -> syslog priorities (err, warning, info, debug)
_PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def _priority(levelno: int) -> int:
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return 7


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"<{_priority(record.levelno)}>{super().format(record)}"


def stderr_is_journal() -> bool:
    """True when stderr is the journal's stream (systemd sets JOURNAL_STREAM=dev:inode to it;
    a child whose stderr was redirected elsewhere inherits the variable, hence the check)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def setup_logging(level: int, prefix: str) -> None:
    """Log at `level` and above to stderr, each line starting with `prefix: `."""
    handler = logging.StreamHandler(sys.stderr)
    fmt = f"{prefix}: %(message)s"
    handler.setFormatter(JournalFormatter(fmt) if stderr_is_journal() else logging.Formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)
