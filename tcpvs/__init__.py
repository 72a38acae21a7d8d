"""tcpvs: KTCPVS (the kernel TCP Virtual Server, a layer-7 switch) reborn in user space.

The library API: `Switch` runs virtual services inside an asyncio program; `Table` is the
service table on its own; `tcpvs.ipvs` programs the kernel's IPVS (layer 4).

Names are imported on first use, so `tcpvs.ipvs` (pyipvsadm) does not load the layer-7
engine, uvloop and the regex module: under emulation that costs seconds per start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tcpvs._version import __version__

_WHERE = {
    "Address": "tcpvs.table.addr",
    "ConfigError": "tcpvs.errors",
    "ControlError": "tcpvs.errors",
    "DaemonNotRunning": "tcpvs.errors",
    "TableError": "tcpvs.errors",
    "TcpvsError": "tcpvs.errors",
    "RealServer": "tcpvs.table.model",
    "Rule": "tcpvs.table.model",
    "Service": "tcpvs.table.model",
    "ScheduleContext": "tcpvs.sched.base",
    "Scheduler": "tcpvs.sched.base",
    "Switch": "tcpvs.switch",
    "Table": "tcpvs.table.operations",
}

__all__ = [
    "Address",
    "ConfigError",
    "ControlError",
    "DaemonNotRunning",
    "RealServer",
    "Rule",
    "ScheduleContext",
    "Scheduler",
    "Service",
    "Switch",
    "Table",
    "TableError",
    "TcpvsError",
    "__version__",
]

if TYPE_CHECKING:
    from tcpvs.errors import ConfigError, ControlError, DaemonNotRunning, TableError, TcpvsError
    from tcpvs.sched.base import ScheduleContext, Scheduler
    from tcpvs.switch import Switch
    from tcpvs.table.addr import Address
    from tcpvs.table.model import RealServer, Rule, Service
    from tcpvs.table.operations import Table


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tcpvs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
