"""Every public exception of tcpvs, under one root (TcpvsError)."""

from __future__ import annotations


class TcpvsError(Exception):
    """Root of all tcpvs errors."""


class TableError(TcpvsError):
    """An operation on the service table was refused; str() is the user-facing message.

    The messages are KTCPVS's own ("Service already exists", "No such service", ...), so that
    tcpvsadm prints what its users know.
    """


class ListenConflict(TableError):
    """A service would listen where another one does; `other` is that one's ident."""

    def __init__(self, message: str, other: str) -> None:
        super().__init__(message)
        self.other = other


class UnreadableConfig(TcpvsError):
    """A config file named on a command line cannot be read; str() says which and why."""


class ConfigError(TcpvsError):
    """A configuration file is wrong; carries the file name and the 1-based line number."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class ControlError(TcpvsError):
    """The control socket could not be used or the daemon refused the request."""


class DaemonNotRunning(ControlError):
    """No tcpvsd answers on the control socket."""
