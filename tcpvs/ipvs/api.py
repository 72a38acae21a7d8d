"""IPVS: the synchronous Python API over the kernel's IPVS generic netlink family.

Every method is one kernel operation (or one dump); failures raise IPVSError with errno and
ipvsadm's message. Use as a context manager or call close().
"""

from __future__ import annotations

from types import TracebackType

from tcpvs.ipvs import codec, conntab, uapi
from tcpvs.ipvs.model import (
    Connection,
    Daemon,
    Dest,
    Info,
    Service,
    ServiceState,
    Timeouts,
)
from tcpvs.ipvs.socket import GenlSocket


class IPVS:
    """A handle on the kernel's IPVS tables (raises IPVSUnavailable when there is no IPVS)."""

    def __init__(self) -> None:
        self._sock = GenlSocket()

    def __enter__(self) -> IPVS:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    # ---- information ----------------------------------------------------------------------
    def info(self) -> Info:
        (msg,) = self._sock.request("info", uapi.IPVS_CMD_GET_INFO)
        return codec.decode_info(msg.attrs)

    def services(self) -> list[Service]:
        """All services in kernel order (address table first, then fwmarks)."""
        msgs = self._sock.request("services", uapi.IPVS_CMD_GET_SERVICE, dump=True)
        return [codec.decode_service(m.attrs) for m in msgs]

    def service(self, svc: Service) -> Service:
        """The kernel's copy of one service (IPVSError ESRCH when it does not exist)."""
        msgs = self._sock.request("service", uapi.IPVS_CMD_GET_SERVICE, codec.service_attr(svc))
        return codec.decode_service(msgs[0].attrs)

    def dests(self, svc: Service) -> list[Dest]:
        msgs = self._sock.request(
            "dests", uapi.IPVS_CMD_GET_DEST, codec.service_attr(svc, key_only=True), dump=True
        )
        return [codec.decode_dest(m.attrs, svc.af) for m in msgs]

    def state(self) -> list[ServiceState]:
        """Every service with its real servers, in kernel order."""
        return [ServiceState(s, tuple(self.dests(s))) for s in self.services()]

    def timeouts(self) -> Timeouts:
        (msg,) = self._sock.request("timeouts", uapi.IPVS_CMD_GET_CONFIG)
        return codec.decode_timeouts(msg.attrs)

    def daemons(self) -> list[Daemon]:
        msgs = self._sock.request("daemons", uapi.IPVS_CMD_GET_DAEMON, dump=True)
        return [codec.decode_daemon(m.attrs) for m in msgs]

    @staticmethod
    def connections() -> list[Connection]:
        """The connection table, from /proc/net/ip_vs_conn (as `ipvsadm -c` reads it)."""
        return conntab.read()

    # ---- services -------------------------------------------------------------------------
    def add_service(self, svc: Service) -> None:
        self._sock.request("add_service", uapi.IPVS_CMD_NEW_SERVICE, codec.service_attr(svc))

    def edit_service(self, svc: Service) -> None:
        """Replace all settings of an existing service (like `ipvsadm -E`)."""
        self._sock.request("edit_service", uapi.IPVS_CMD_SET_SERVICE, codec.service_attr(svc))

    def delete_service(self, svc: Service) -> None:
        self._sock.request("delete_service", uapi.IPVS_CMD_DEL_SERVICE, codec.service_attr(svc))

    def flush(self) -> None:
        self._sock.request("flush", uapi.IPVS_CMD_FLUSH)

    def zero(self, svc: Service | None = None) -> None:
        """Zero the counters of one service, or of all when svc is None."""
        attrs = codec.service_attr(svc) if svc is not None else b""
        self._sock.request("zero", uapi.IPVS_CMD_ZERO, attrs)

    # ---- real servers ---------------------------------------------------------------------
    def add_dest(self, svc: Service, dest: Dest) -> None:
        self._dest_op("add_dest", uapi.IPVS_CMD_NEW_DEST, svc, dest)

    def edit_dest(self, svc: Service, dest: Dest) -> None:
        self._dest_op("edit_dest", uapi.IPVS_CMD_SET_DEST, svc, dest)

    def delete_dest(self, svc: Service, dest: Dest) -> None:
        self._dest_op("delete_dest", uapi.IPVS_CMD_DEL_DEST, svc, dest)

    def _dest_op(self, op: str, cmd: int, svc: Service, dest: Dest) -> None:
        self._sock.request(op, cmd, codec.service_attr(svc) + codec.dest_attr(dest))

    # ---- settings and sync daemons --------------------------------------------------------
    def set_timeouts(self, timeouts: Timeouts) -> None:
        """0 keeps a timeout's current value."""
        self._sock.request("set_timeouts", uapi.IPVS_CMD_SET_CONFIG, codec.timeout_attrs(timeouts))

    def start_daemon(self, daemon: Daemon) -> None:
        self._sock.request("start_daemon", uapi.IPVS_CMD_NEW_DAEMON, codec.daemon_attr(daemon))

    def stop_daemon(self, daemon: Daemon) -> None:
        self._sock.request(
            "stop_daemon", uapi.IPVS_CMD_DEL_DAEMON, codec.daemon_attr(daemon, stop=True)
        )
