"""Sans-IO generic netlink codec: message headers, NLA TLVs, family lookup and reply collection.

Bytes in, bytes out: the socket lives in tcpvs/ipvs/socket.py. Layout per linux/netlink.h:
nlmsghdr (16 bytes, host order) + genlmsghdr (4 bytes) + attributes aligned to 4 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from tcpvs.ipvs import uapi

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
GENLMSGHDR = struct.Struct("=BBH")  # cmd, version, reserved
NLAHDR = struct.Struct("=HH")  # len, type


def _align(n: int) -> int:
    return (n + 3) & ~3


def nla(kind: int, payload: bytes) -> bytes:
    """One attribute: header, payload, zero padding to 4 bytes."""
    size = NLAHDR.size + len(payload)
    return NLAHDR.pack(size, kind) + payload + b"\0" * (_align(size) - size)


def nla_u8(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=B", value))


def nla_u16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=H", value))


def nla_be16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("!H", value))


def nla_u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def nla_string(kind: int, value: str) -> bytes:
    """NUL-terminated, as libnl's nla_put_string sends it."""
    return nla(kind, value.encode() + b"\0")


def nla_nested(kind: int, *attrs: bytes) -> bytes:
    # No NLA_F_NESTED bit: libnl 3 (and so ipvsadm) does not set it and the kernel accepts both.
    return nla(kind, b"".join(attrs))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """TLVs to {type: payload}; flag bits are masked off, a truncated tail is ignored."""
    attrs: dict[int, bytes] = {}
    pos = 0
    while pos + NLAHDR.size <= len(data):
        size, kind = NLAHDR.unpack_from(data, pos)
        if size < NLAHDR.size or pos + size > len(data):
            break
        attrs[kind & uapi.NLA_TYPE_MASK] = data[pos + NLAHDR.size : pos + size]
        pos += _align(size)
    return attrs


def get_u8(b: bytes) -> int:
    return b[0]


def get_u16(b: bytes) -> int:
    return struct.unpack_from("=H", b)[0]


def get_be16(b: bytes) -> int:
    return struct.unpack_from("!H", b)[0]


def get_u32(b: bytes) -> int:
    return struct.unpack_from("=I", b)[0]


def get_u64(b: bytes) -> int:
    return struct.unpack_from("=Q", b)[0]


def get_uint(b: bytes) -> int:
    """A counter of either width (STATS sends u32 and u64 members, STATS64 only u64)."""
    return get_u64(b) if len(b) >= 8 else get_u32(b)


def get_string(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace")


def genl_message(
    family: int,
    cmd: int,
    flags: int,
    seq: int,
    attrs: bytes = b"",
    version: int = uapi.IPVS_GENL_VERSION,
) -> bytes:
    """A complete request: nlmsghdr + genlmsghdr + attributes (pid 0: the kernel fills it)."""
    payload = GENLMSGHDR.pack(cmd, version, 0) + attrs
    return NLMSGHDR.pack(NLMSGHDR.size + len(payload), family, flags, seq, 0) + payload


@dataclass(frozen=True)
class Message:
    """One netlink message as received."""

    type: int
    flags: int
    seq: int
    payload: bytes

    @property
    def cmd(self) -> int:
        return self.payload[0]

    @property
    def attrs(self) -> dict[int, bytes]:
        return parse_attrs(self.payload[GENLMSGHDR.size :])


def split_messages(data: bytes) -> Iterator[Message]:
    pos = 0
    while pos + NLMSGHDR.size <= len(data):
        size, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, pos)
        if size < NLMSGHDR.size or pos + size > len(data):
            break
        yield Message(kind, flags, seq, data[pos + NLMSGHDR.size : pos + size])
        pos += _align(size)


def getfamily_request(seq: int, name: str = uapi.IPVS_GENL_NAME) -> bytes:
    return genl_message(
        uapi.GENL_ID_CTRL,
        uapi.CTRL_CMD_GETFAMILY,
        uapi.NLM_F_REQUEST | uapi.NLM_F_ACK,
        seq,
        nla_string(uapi.CTRL_ATTR_FAMILY_NAME, name),
        version=1,
    )


def family_id(messages: list[Message]) -> int | None:
    for msg in messages:
        raw = msg.attrs.get(uapi.CTRL_ATTR_FAMILY_ID)
        if raw is not None:
            return get_u16(raw)
    return None


@dataclass
class Transaction:
    """Collects the replies to one request: data messages until the ACK (doit) or DONE (dump).

    feed() returns True once the exchange is over; `errno` is then the kernel's error (0: none).
    """

    seq: int
    messages: list[Message] = field(default_factory=list)
    errno: int = 0

    def feed(self, chunk: bytes) -> bool:
        for msg in split_messages(chunk):
            if msg.seq != self.seq:
                continue  # a late reply to an earlier request
            if msg.type == uapi.NLMSG_ERROR:
                self.errno = -struct.unpack_from("=i", msg.payload)[0]
                return True
            if msg.type == uapi.NLMSG_DONE:
                if len(msg.payload) >= 4:  # a failed dump reports its error here
                    self.errno = max(0, -struct.unpack_from("=i", msg.payload)[0])
                return True
            if msg.type in (uapi.NLMSG_NOOP, uapi.NLMSG_OVERRUN):
                continue
            self.messages.append(msg)
        return False
