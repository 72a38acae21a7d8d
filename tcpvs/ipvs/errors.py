"""IPVSError: a failed kernel operation, carrying errno and ipvsadm's message for it.

The messages are libipvs's `ipvs_strerror` table: keyed by the operation that failed, then
generic ones, then strerror().
"""

from __future__ import annotations

import errno as E
import os

from tcpvs.errors import TcpvsError

# (operation, errno) -> message; operation None matches any (libipvs.c: ipvs_strerror).
_TABLE: list[tuple[str | None, int, str]] = [
    ("add_service", E.EEXIST, "Service already exists"),
    ("add_service", E.ENOENT, "Scheduler or persistence engine not found"),
    ("edit_service", E.ESRCH, "No such service"),
    ("edit_service", E.ENOENT, "Scheduler or persistence engine not found"),
    ("delete_service", E.ESRCH, "No such service"),
    ("zero", E.ESRCH, "No such service"),
    ("add_dest", E.ESRCH, "Service not defined"),
    ("add_dest", E.EEXIST, "Destination already exists"),
    ("edit_dest", E.ESRCH, "Service not defined"),
    ("edit_dest", E.ENOENT, "No such destination"),
    ("delete_dest", E.ESRCH, "Service not defined"),
    ("delete_dest", E.ENOENT, "No such destination"),
    ("start_daemon", E.EEXIST, "Daemon has already run"),
    ("stop_daemon", E.ESRCH, "No daemon is running"),
    ("services", E.ESRCH, "No such service"),
    ("dests", E.ESRCH, "No such service"),
    ("service", E.ESRCH, "No such service"),
    (None, E.EPERM, "Permission denied (you must be root)"),
    (None, E.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."),
    (None, E.ENOPROTOOPT, "Protocol not available"),
    (None, E.ENOMEM, "Memory allocation problem"),
    (None, E.EOPNOTSUPP, "Operation not supported with IPv6"),
    (None, E.EAFNOSUPPORT, "Operation not supported with specified address family"),
    (None, E.EMSGSIZE, "Module is wrong version"),
]


def ipvs_strerror(op: str | None, err: int) -> str:
    for func, code, message in _TABLE:
        if (func is None or func == op) and code == err:
            return message
    return os.strerror(err)


class IPVSError(TcpvsError):
    """A kernel IPVS operation failed; str() is what ipvsadm prints for it."""

    def __init__(self, op: str, errno: int) -> None:
        self.op = op
        self.errno = errno
        self.message = ipvs_strerror(op, errno)
        super().__init__(self.message)


class IPVSUnavailable(IPVSError):
    """The kernel has no IPVS (or it cannot be reached): ipvsadm's `Can't initialize ipvs`."""

    def __init__(self, errno: int) -> None:
        super().__init__("init", errno)
        self.message = (
            f"Can't initialize ipvs: {ipvs_strerror('init', errno)}\n"
            "Are you sure that IP Virtual Server is built in the kernel or as module?"
        )
        self.args = (self.message,)
