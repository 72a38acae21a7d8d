"""Generic netlink and IPVS codec: golden bytes built by hand from the uAPI layout, round trips."""

from __future__ import annotations

import struct

import pytest

from tcpvs.ipvs import codec, netlink, uapi
from tcpvs.ipvs.model import Daemon, Dest, Service, Stats, Timeouts


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


# IPVS_CMD_ATTR_SERVICE for `-A -t 192.168.1.100:80` (wlc, not persistent), as libipvs sends it.
SVC_TCP = h("""
    5400 0100
    0600 0100 0200 0000
    0600 0200 0600 0000
    1400 0300 c0a8 0164 0000 0000 0000 0000 0000 0000
    0600 0400 0050 0000
    0800 0600 776c 6300
    0c00 0700 0000 0000 ffff ffff
    0800 0800 0000 0000
    0800 0900 ffff ffff
""")


def test_nla_is_padded_to_four_bytes() -> None:
    assert netlink.nla(6, b"wlc\0") == h("0800 0600 776c 6300")
    assert netlink.nla_u16(1, 10) == h("0600 0100 0a00 0000")
    assert netlink.nla_be16(4, 80) == h("0600 0400 0050 0000")
    assert netlink.nla_u8(13, 1) == h("0500 0d00 0100 0000")


def test_service_attr_matches_libipvs_bytes() -> None:
    assert codec.service_attr(Service.tcp("192.168.1.100", 80)) == SVC_TCP


def test_persistent_ipv6_fwmark_service_bytes() -> None:
    svc = Service.fw(
        42,
        af=uapi.AF_INET6,
        scheduler="sh",
        timeout=300,
        netmask=64,
        flags=uapi.IP_VS_SVC_F_PERSISTENT | uapi.IP_VS_SVC_F_SCHED1,
        pe_name="sip",
    )
    body = h("""
        0600 0100 0a00 0000
        0800 0500 2a00 0000
        0700 0600 7368 0000
        0800 0b00 7369 7000
        0c00 0700 0900 0000 ffff ffff
        0800 0800 2c01 0000
        0800 0900 4000 0000
    """)
    assert codec.service_attr(svc) == struct.pack("=HH", 4 + len(body), 1) + body


def test_ipv4_netmask_goes_in_network_order() -> None:
    svc = Service.tcp("10.0.0.1", 80, netmask=0xFFFFFF00)
    assert codec.service_attr(svc).endswith(h("0800 0900 ffff ff00"))


def test_key_only_service_for_dest_dumps() -> None:
    got = codec.service_attr(Service.udp("10.1.2.3", 53), key_only=True)
    assert got == h("""
        3000 0100
        0600 0100 0200 0000
        0600 0200 1100 0000
        1400 0300 0a01 0203 0000 0000 0000 0000 0000 0000
        0600 0400 0035 0000
    """)


def test_dest_attr_gue_tunnel_bytes() -> None:
    dest = Dest(
        "10.0.0.2",
        80,
        fwd=uapi.IP_VS_CONN_F_TUNNEL,
        weight=3,
        tun_type=1,
        tun_port=6080,
        tun_flags=uapi.IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
        u_threshold=100,
        l_threshold=50,
    )
    assert codec.dest_attr(dest) == h("""
        6000 0200
        0600 0b00 0200 0000
        1400 0100 0a00 0002 0000 0000 0000 0000 0000 0000
        0600 0200 0050 0000
        0800 0300 0200 0000
        0800 0400 0300 0000
        0500 0d00 0100 0000
        0600 0e00 17c0 0000
        0600 0f00 0100 0000
        0800 0500 6400 0000
        0800 0600 3200 0000
    """)


def test_daemon_and_timeout_attrs() -> None:
    start = codec.daemon_attr(
        Daemon(
            uapi.IP_VS_STATE_MASTER,
            "eth1",
            syncid=7,
            mcast_port=8849,
            mcast_group="224.0.0.82",
            mcast_ttl=2,
            sync_maxlen=1400,
        )
    )
    assert start == h("""
        4000 0300
        0800 0100 0100 0000
        0900 0200 6574 6831 0000 0000
        0800 0300 0700 0000
        0600 0400 7805 0000
        0600 0700 9122 0000
        0500 0800 0200 0000
        0800 0500 e000 0052
    """)
    stop = codec.daemon_attr(Daemon(uapi.IP_VS_STATE_BACKUP, "", syncid=3), stop=True)
    assert stop == h("1c00 0300 0800 0100 0200 0000 0500 0200 0000 0000 0800 0300 0300 0000")
    assert codec.timeout_attrs(Timeouts(900, 120, 300)) == h(
        "0800 0400 8403 0000 0800 0500 7800 0000 0800 0600 2c01 0000"
    )


def test_genl_message_header() -> None:
    msg = netlink.genl_message(0x1D, uapi.IPVS_CMD_FLUSH, uapi.NLM_F_REQUEST | uapi.NLM_F_ACK, 7)
    assert msg == h("1400 0000 1d00 0500 0700 0000 0000 0000 1101 0000")


def test_getfamily_request_bytes() -> None:
    assert netlink.getfamily_request(1) == h(
        "2000 0000 1000 0500 0100 0000 0000 0000 0301 0000 0900 0200 4950 5653 0000 0000"
    )


def _reply(seq: int, cmd: int, attrs: bytes, flags: int = uapi.NLM_F_MULTI) -> bytes:
    return netlink.genl_message(0x1D, cmd, flags, seq, attrs)


def _error(seq: int, errno: int) -> bytes:
    payload = struct.pack("=i", -errno) + bytes(16)
    return netlink.NLMSGHDR.pack(16 + len(payload), uapi.NLMSG_ERROR, 0, seq, 0) + payload


def _done(seq: int) -> bytes:
    return netlink.NLMSGHDR.pack(20, uapi.NLMSG_DONE, uapi.NLM_F_MULTI, seq, 0) + bytes(4)


def _stats(width: str, values: list[int]) -> bytes:
    return b"".join(netlink.nla(i + 1, struct.pack(width, v)) for i, v in enumerate(values))


def test_decode_service_from_a_kernel_dump_message() -> None:
    stats64 = _stats("=Q", [15, 300, 0, 23456, 1234 * 10**6, 1, 20, 0, 1500, 0])
    body = (
        netlink.nla_u16(1, uapi.AF_INET)
        + netlink.nla_u16(2, uapi.IPPROTO_TCP)
        + netlink.nla(3, bytes([192, 168, 1, 100]) + bytes(12))
        + netlink.nla_be16(4, 80)
        + netlink.nla_string(6, "wlc")
        + netlink.nla(7, struct.pack("=II", 0x3, 0xFFFFFFFF))
        + netlink.nla_u32(8, 360)
        + netlink.nla(9, h("ffffff00"))
        + netlink.nla(12, stats64)
    )
    data = _reply(5, uapi.IPVS_CMD_NEW_SERVICE, netlink.nla(1, body)) + _done(5)
    tx = netlink.Transaction(5)
    assert tx.feed(data) and tx.errno == 0
    svc = codec.decode_service(tx.messages[0].attrs)
    # HASHED (0x2) is the kernel's bookkeeping, not a setting: it is dropped.
    assert svc == Service.tcp(
        "192.168.1.100", 80, scheduler="wlc", flags=1, timeout=360, netmask=0xFFFFFF00
    )
    assert svc.persistent
    assert svc.stats == Stats(15, 300, 0, 23456, 1234 * 10**6, 1, 20, 0, 1500, 0)


def test_decode_dest_defaults_family_to_the_service_and_reads_32_bit_stats() -> None:
    stats32 = b"".join(
        netlink.nla(i + 1, struct.pack("=Q" if i in (3, 4) else "=I", v))
        for i, v in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    )
    body = (
        netlink.nla(1, h("20010db8000000000000000000000002"))
        + netlink.nla_be16(2, 443)
        + netlink.nla_u32(3, uapi.IP_VS_CONN_F_MASQ)
        + netlink.nla_u32(4, 5)
        + netlink.nla_u32(5, 0)
        + netlink.nla_u32(6, 0)
        + netlink.nla_u32(7, 12)
        + netlink.nla_u32(8, 40)
        + netlink.nla_u32(9, 2)
        + netlink.nla(10, stats32)
    )
    dest = codec.decode_dest({uapi.IPVS_CMD_ATTR_DEST: body}, uapi.AF_INET6)
    assert dest == Dest("2001:db8::2", 443, fwd=uapi.IP_VS_CONN_F_MASQ, weight=5)
    assert (dest.active_conns, dest.inact_conns, dest.persist_conns) == (12, 40, 2)
    assert dest.stats == Stats(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def test_decode_daemon_info_and_timeouts() -> None:
    daemon = (
        netlink.nla_u32(1, 1)
        + netlink.nla_string(2, "eth0")
        + netlink.nla_u32(3, 0)
        + netlink.nla_u16(4, 1472)
        + netlink.nla_u16(7, 8848)
        + netlink.nla_u8(8, 1)
        + netlink.nla(5, bytes([224, 0, 0, 81]))
    )
    got = codec.decode_daemon({uapi.IPVS_CMD_ATTR_DAEMON: daemon})
    assert got == Daemon(1, "eth0", 0, 1472, "224.0.0.81", 8848, 1)
    info = codec.decode_info({1: struct.pack("=I", 0x010201), 2: struct.pack("=I", 4096)})
    assert (info.version_text, info.conn_tab_size) == ("1.2.1", 4096)
    assert codec.decode_timeouts(
        netlink.parse_attrs(codec.timeout_attrs(Timeouts(1, 2, 3)))
    ) == Timeouts(1, 2, 3)


@pytest.mark.parametrize(
    "svc",
    [
        Service.tcp("10.0.0.1", 80, scheduler="rr"),
        Service.udp("2001:db8::1", 53, flags=uapi.IP_VS_SVC_F_ONEPACKET),
        Service.sctp("10.0.0.9", 3868, flags=1, timeout=60, netmask=0xFFFF0000, pe_name="sip"),
        Service.fw(7, af=uapi.AF_INET6, scheduler="mh", flags=0x18),
    ],
)
def test_service_round_trip(svc: Service) -> None:
    """What we send for a service decodes back to the same service (the kernel echoes it)."""
    assert codec.decode_service(netlink.parse_attrs(codec.service_attr(svc))) == svc


def test_transaction_errors_acks_and_stale_replies() -> None:
    tx = netlink.Transaction(9)
    assert not tx.feed(_reply(8, 1, b""))  # an older request's reply is skipped
    assert tx.feed(_error(9, 3)) and tx.errno == 3 and tx.messages == []
    ack = netlink.Transaction(4)
    assert ack.feed(_reply(4, 15, b"", flags=0) + _error(4, 0))
    assert ack.errno == 0 and len(ack.messages) == 1
    partial = netlink.Transaction(2)
    assert not partial.feed(_reply(2, 1, b""))
    assert partial.feed(_done(2)) and len(partial.messages) == 1


def test_parse_attrs_masks_flag_bits_and_stops_on_truncation() -> None:
    data = struct.pack("=HH", 8, 0x8000 | 3) + b"abcd" + struct.pack("=HH", 40, 4) + b"xy"
    assert netlink.parse_attrs(data) == {3: b"abcd"}
