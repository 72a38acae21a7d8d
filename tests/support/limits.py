"""Open-files limits of processes, and the `maxclients` default docs/config.md derives from
them, computed here independently of tcpvs.table.model so that tests check the documented rule."""

from __future__ import annotations

import re
import resource
from pathlib import Path


def soft_nofile(pid: int | None = None) -> int:
    """The soft RLIMIT_NOFILE of process `pid` (read from /proc), or of this process."""
    if pid is None:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    text = Path(f"/proc/{pid}/limits").read_text()
    return int(re.search(r"^Max open files\s+(\d+)", text, re.M).group(1))


def documented_maxclients(nofile: int) -> int:
    """docs/config.md: (soft open-files limit - 64) // 2, at least 256, at most 1048576."""
    return min(max((nofile - 64) // 2, 256), 1048576)


def default_maxclients(pid: int | None = None) -> int:
    """The maxclients a new service of process `pid` (default: this one) gets."""
    return documented_maxclients(soft_nofile(pid))
