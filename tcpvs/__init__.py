"""tcpvs: KTCPVS (the kernel TCP Virtual Server, a layer-7 switch) reborn in user space.

The library API: `Switch` runs virtual services inside an asyncio program; `Table` is the
service table on its own; `tcpvs.ipvs` programs the kernel's IPVS (layer 4).
"""

from tcpvs._version import __version__
from tcpvs.addr import Address
from tcpvs.errors import ConfigError, ControlError, DaemonNotRunning, TableError, TcpvsError
from tcpvs.model import RealServer, Rule, Service
from tcpvs.sched import ScheduleContext, Scheduler
from tcpvs.switch import Switch
from tcpvs.table import Table

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
