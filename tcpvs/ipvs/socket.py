"""The only netlink I/O: an AF_NETLINK/NETLINK_GENERIC socket bound to the "IPVS" family.

Blocking, one request at a time; the bytes come from tcpvs/ipvs/netlink.py.
"""

from __future__ import annotations

import errno
import itertools
import socket

from tcpvs.ipvs import netlink, uapi
from tcpvs.ipvs.errors import IPVSError, IPVSUnavailable

_RCVBUF = 1 << 17


class GenlSocket:
    """A generic netlink socket talking to the IPVS family (resolved on open)."""

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, uapi.NETLINK_GENERIC)
        except OSError as exc:
            raise IPVSUnavailable(exc.errno or errno.ENOPROTOOPT) from exc
        self._seq = itertools.count(1)
        try:
            self._sock.bind((0, 0))
            tx = self._exchange(netlink.getfamily_request(self._next_seq()))
        except OSError as exc:
            self.close()
            raise IPVSUnavailable(exc.errno or errno.ENOPROTOOPT) from exc
        family = netlink.family_id(tx.messages) if not tx.errno else None
        if family is None:
            # No "IPVS" genl family: the kernel has no ip_vs (ipvsadm then fails the same way
            # on its setsockopt fallback, with ENOPROTOOPT).
            self.close()
            raise IPVSUnavailable(errno.ENOPROTOOPT)
        self.family = family

    def _next_seq(self) -> int:
        return next(self._seq)

    def _exchange(self, request: bytes) -> netlink.Transaction:
        seq = netlink.NLMSGHDR.unpack_from(request)[3]
        tx = netlink.Transaction(seq)
        self._sock.send(request)
        while not tx.feed(self._sock.recv(_RCVBUF)):
            pass
        return tx

    def request(
        self,
        op: str,
        cmd: int,
        attrs: bytes = b"",
        *,
        dump: bool = False,
    ) -> list[netlink.Message]:
        """Send one IPVS command; return its reply messages or raise IPVSError(op, errno)."""
        flags = uapi.NLM_F_REQUEST | uapi.NLM_F_ACK | (uapi.NLM_F_DUMP if dump else 0)
        msg = netlink.genl_message(self.family, cmd, flags, self._next_seq(), attrs)
        try:
            tx = self._exchange(msg)
        except OSError as exc:
            raise IPVSError(op, exc.errno or errno.EINVAL) from exc
        if tx.errno:
            raise IPVSError(op, tx.errno)
        return tx.messages

    def close(self) -> None:
        self._sock.close()
