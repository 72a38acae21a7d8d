"""Find scheduler classes by name through the `tcpvs.schedulers` entry points.

Like `request_module("ktcpvs_%s")` in the kernel, a scheduler is looked up by name when a
service asks for it, so any installed package can provide one.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from tcpvs.errors import TableError
from tcpvs.sched.base import Scheduler

GROUP = "tcpvs.schedulers"
_registered: dict[str, type[Scheduler]] = {}


def register(name: str, cls: type[Scheduler]) -> None:
    """Register a scheduler class at run time (for programs that embed tcpvs)."""
    _registered[name] = cls


@cache
def _entry_point(name: str):  # cached: scanning installed distributions is slow
    matches = entry_points(group=GROUP, name=name)
    return next(iter(matches), None)


def available() -> list[str]:
    """Names of every scheduler that can be loaded, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)} | set(_registered))


def load_scheduler(name: str) -> Scheduler:
    """A new instance of the scheduler called `name`; TableError("Scheduler not found")."""
    cls = _registered.get(name)
    if cls is None:
        ep = _entry_point(name)
        if ep is None:
            _entry_point.cache_clear()  # a package may be installed while the daemon runs
            raise TableError("Scheduler not found")
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the daemon down
            raise TableError(f"Scheduler not found ({name}: {exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        raise TableError(f"Scheduler not found ({name} is not a tcpvs scheduler)")
    return cls()
