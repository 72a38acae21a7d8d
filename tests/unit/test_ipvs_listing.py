"""ipvsadm's listings from synthetic tables: the spec's example lines, every format, sorting."""

from __future__ import annotations

import pytest

from tcpvs.ipvs import listing, uapi
from tcpvs.ipvs.conntab import parse_line
from tcpvs.ipvs.model import Daemon, Dest, Info, Service, ServiceState, Stats, Timeouts
from tcpvs.ipvs.options import (
    FMT_EXACT,
    FMT_NOSORT,
    FMT_NUMERIC,
    FMT_PERSISTENTCONN,
    FMT_RATE,
    FMT_RULE,
    FMT_STATS,
    FMT_THRESHOLDS,
    FMT_TUN_INFO,
)

MASQ, TUN, DR = uapi.IP_VS_CONN_F_MASQ, uapi.IP_VS_CONN_F_TUNNEL, uapi.IP_VS_CONN_F_DROUTE
INFO = Info(0x010201, 4096)

# The table of the spec's example (B.3.5), listed out of order on purpose.
TABLE = [
    ServiceState(
        Service.fw(42, scheduler="sh", flags=uapi.IP_VS_SVC_F_SCHED1 | 0x10), (Dest("10.0.0.5", 0),)
    ),
    ServiceState(
        Service.udp("192.168.1.100", 53, scheduler="rr"), (Dest("10.0.0.2", 53, fwd=TUN),)
    ),
    ServiceState(
        Service.tcp("192.168.1.100", 80, flags=uapi.IP_VS_SVC_F_PERSISTENT, timeout=360),
        (
            Dest("10.0.0.3", 80, fwd=MASQ, weight=3, active_conns=12, inact_conns=40),
            Dest("10.0.0.2", 80),
        ),
    ),
]


def test_spec_example_list_numeric() -> None:
    assert listing.list_all(INFO, TABLE, FMT_NUMERIC).splitlines() == [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  192.168.1.100:80 wlc persistent 360",
        "  -> 10.0.0.2:80                  Route   1      0          0         ",
        "  -> 10.0.0.3:80                  Masq    3      12         40        ",
        "UDP  192.168.1.100:53 rr",
        "  -> 10.0.0.2:53                  Tunnel  1      0          0         ",
        "FWM  42 sh (sh-fallback,sh-port)",
        "  -> 10.0.0.5:0                   Route   1      0          0         ",
    ]


def test_stats_and_rate_columns() -> None:
    svc = Service.tcp(
        "192.168.1.100", 80, stats=Stats(15, 300, 0, 23456, 1234 * 10**6 + 5, 1, 20, 0, 1500, 0)
    )
    dest = Dest("10.0.0.2", 80, stats=Stats(15, 300, 0, 23456, 0, 1, 20, 0, 1500, 0))
    stats = listing.list_all(None, [ServiceState(svc, (dest,))], FMT_NUMERIC | FMT_STATS)
    assert stats.splitlines() == [
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
        "  -> RemoteAddress:Port",
        "TCP  192.168.1.100:80                   15      300        0    23456    1234M",
        "  -> 10.0.0.2:80                        15      300        0    23456        0",
    ]
    rate = listing.list_all(None, [ServiceState(svc, (dest,))], FMT_NUMERIC | FMT_RATE)
    assert rate.splitlines()[0] == (
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS"
    )
    assert rate.splitlines()[3] == (
        "  -> 10.0.0.2:80                         1       20        0     1500        0"
    )
    exact = listing.list_all(None, [ServiceState(svc, ())], FMT_NUMERIC | FMT_STATS | FMT_EXACT)
    assert exact.splitlines()[2].endswith("    23456 1234000005")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (10**11, "     100G"),
        (10**14, "     100T"),
    ],
)
def test_largenum(value: int, text: str) -> None:
    assert listing.largenum(value, 0) == text


def test_dest_counters_wrap_at_32_bits_like_ipvsadm() -> None:
    dest = Dest("10.0.0.2", 80, stats=Stats(2**32 + 7, 0, 0, 2**33, 0))
    line = listing.service_entry(
        ServiceState(Service.tcp("10.0.0.1", 80), (dest,)), FMT_NUMERIC | FMT_STATS | FMT_EXACT
    ).splitlines()[1]
    assert (
        line == "  -> 10.0.0.2:80                         7        0        0 8589934592        0"
    )


def test_thresholds_persistent_conn_and_tunnel_formats() -> None:
    gue = Dest(
        "10.0.0.2",
        80,
        fwd=TUN,
        tun_type=1,
        tun_port=6080,
        tun_flags=1,
        u_threshold=100,
        l_threshold=50,
        persist_conns=4,
    )
    state = [ServiceState(Service.tcp("10.0.0.1", 80), (gue,))]
    th = listing.list_all(None, state, FMT_NUMERIC | FMT_THRESHOLDS).splitlines()
    assert th[0] == "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn "
    assert th[3] == "  -> 10.0.0.2:80                  100        50         0          0         "
    pc = listing.list_all(None, state, FMT_NUMERIC | FMT_PERSISTENTCONN).splitlines()
    assert pc[0] == "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn "
    assert pc[3] == "  -> 10.0.0.2:80                  1         4           0          0         "
    ti = listing.list_all(None, state, FMT_NUMERIC | FMT_TUN_INFO).splitlines()
    assert ti[1] == (
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn"
    )
    assert ti[3] == (
        "  -> 10.0.0.2:80                  Tunnel  gue:6080:+c   1      0          0         "
    )


def test_tunnel_info_texts() -> None:
    assert listing.tun_info(Dest("10.0.0.2", fwd=TUN)) == "ipip"
    assert listing.tun_info(Dest("10.0.0.2", fwd=TUN, tun_type=2, tun_flags=2)) == "gre:r+c"
    assert listing.tun_info(Dest("10.0.0.2", fwd=MASQ)) is None


def test_save_format() -> None:
    table = [
        ServiceState(
            Service.tcp(
                "10.0.0.1",
                80,
                scheduler="sh",
                flags=0x9,
                timeout=50,
                netmask=0xFFFF0000,
                pe_name="sip",
            ),
            (
                Dest("10.0.0.3", 8080, fwd=MASQ, weight=4),
                Dest("10.0.0.4", 80, fwd=TUN, tun_type=1, tun_port=99, tun_flags=2),
                Dest("10.0.0.5", 80, fwd=TUN, tun_type=2),
                Dest("2001:db8::9", 80, fwd=TUN),
            ),
        ),
        ServiceState(Service.fw(4294967295, af=uapi.AF_INET6, flags=1, timeout=10, netmask=120)),
        ServiceState(Service.udp("2001:db8::1", 53, flags=uapi.IP_VS_SVC_F_ONEPACKET)),
    ]
    # fwmark 4294967295 sorts first: libipvs's fwmark difference wraps around (and %d prints -1).
    assert listing.list_all(INFO, table, FMT_RULE | FMT_NUMERIC).splitlines() == [
        "-A -f -1 -6 -s wlc -p 10 -M 120",
        "-A -t 10.0.0.1:80 -s sh -p 50 -M 255.255.0.0 --pe sip -b sh-fallback",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 4",
        "-a -t 10.0.0.1:80 -r 10.0.0.4:80 -i -w 1 --tun-type gue --tun-port 99 --tun-remcsum",
        "-a -t 10.0.0.1:80 -r 10.0.0.5:80 -i -w 1 --tun-type gre --tun-nocsum",
        "-a -t 10.0.0.1:80 -r [2001:db8::9]:80 -i -w 1 --tun-type ipip",
        "-A -u [2001:db8::1]:53 -s wlc -o",
    ]


def test_names_unless_numeric() -> None:
    state = [ServiceState(Service.tcp("127.0.0.1", 80), (Dest("127.0.0.1", 80, fwd=MASQ),))]
    lines = listing.list_all(INFO, state, 0).splitlines()
    assert lines[3] == "TCP  localhost:http wlc"
    assert lines[4].startswith(f"  -> {'localhost:http':<28} Masq    1")
    assert listing.list_all(INFO, state, FMT_RULE).splitlines()[0] == "-A -t localhost:http -s wlc"


def test_sort_wraps_like_ipvsadm() -> None:
    """libipvs compares addresses by a 32-bit difference: 10.x sorts after 200.x, so
    10 < 100 < 200 < 10 is a cycle and the result depends on glibc's merge order."""

    def order(*addrs: str) -> list[str]:
        states = [ServiceState(Service.tcp(a, 80)) for a in addrs]
        return [s.service.addr for s in listing.sort_states(states, 0)]

    assert listing.cmp_services(Service.tcp("10.0.0.1", 80), Service.tcp("200.0.0.1", 80)) > 0
    assert order("10.0.0.1", "200.0.0.1", "100.0.0.1") == ["10.0.0.1", "100.0.0.1", "200.0.0.1"]
    assert order("100.0.0.1", "200.0.0.1", "10.0.0.1") == ["100.0.0.1", "200.0.0.1", "10.0.0.1"]


def test_sort_keys_fwmark_family_protocol_address_port() -> None:
    fw = [
        ServiceState(Service.fw(7)),
        ServiceState(Service.fw(3, af=uapi.AF_INET6)),
        ServiceState(Service.fw(3)),
    ]
    other = [
        ServiceState(Service.udp("10.0.0.1", 80)),
        ServiceState(Service.tcp("2001:db8::1", 80)),
        ServiceState(Service.tcp("10.0.0.1", 81)),
        ServiceState(Service.tcp("10.0.0.1", 80)),
    ]
    got = [s.service for s in listing.sort_states(fw + other, 0)]
    assert [(s.fwmark, s.af, s.protocol, s.addr, s.port) for s in got] == [
        (0, 2, 6, "10.0.0.1", 80),
        (0, 2, 6, "10.0.0.1", 81),
        (0, 2, 17, "10.0.0.1", 80),
        (0, 10, 6, "2001:db8::1", 80),
        (3, 2, 0, "", 0),
        (3, 10, 0, "", 0),
        (7, 2, 0, "", 0),
    ]
    assert [s.service.fwmark for s in listing.sort_states(fw, FMT_NOSORT)] == [7, 3, 3]


def test_msort_is_glibc_merge_order() -> None:
    def cyclic(a: int, b: int) -> int:  # rock-paper-scissors: any order is "sorted"
        return 0 if a == b else (-1 if (a, b) in ((0, 1), (1, 2), (2, 0)) else 1)

    assert listing.msort([2, 1, 0], cyclic) == [2, 0, 1]
    assert listing.msort([0, 1, 2, 0], cyclic) == [2, 0, 0, 1]


def test_timeouts_and_daemons() -> None:
    assert listing.timeouts_text(Timeouts(900, 120, 300)) == (
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    )
    assert listing.daemons_text(
        [Daemon(1, "eth0", 0, 1472, "224.0.0.81", 8848, 1), Daemon(2, "eth1", 5)]
    ) == (
        "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, "
        "ttl=1)\nbackup sync daemon (mcast=eth1, syncid=5)\n"
    )


def test_connections_from_proc_rows() -> None:
    rows = [
        "TCP C0A80132 C822 C0A80164 0050 0A000002 0050 ESTABLISHED     898",
        "UDP 2001:0db8:0000:0000:0000:0000:0000:0005 0035 2001:0db8:0000:0000:0000:0000:0000:0001"
        " 0035 0A000003 0035 UDP             299",
        "TCP C0A80132 C823 C0A80164 0050 0A000002 0050 NONE           3599 sip 1@a",
    ]
    conns = [parse_line(r) for r in rows]
    assert conns[1] is not None and conns[1].client == "2001:db8::5"
    text = listing.connections_text([c for c in conns if c], FMT_NUMERIC)
    assert text.splitlines() == [
        "IPVS connection entries",
        "pro expire state       source             virtual            destination",
        "TCP 14:58  ESTABLISHED 192.168.1.50:51234 192.168.1.100:80   10.0.0.2:80",
        "UDP 04:59  UDP         [2001:db8::5]:53   [2001:db8::1]:53   10.0.0.3:53",
        "TCP 59:59  NONE        192.168.1.50:51235 192.168.1.100:80   10.0.0.2:80",
    ]
    pe = listing.connections_text([c for c in conns if c], FMT_NUMERIC | FMT_PERSISTENTCONN)
    assert pe.splitlines()[1] == (
        "pro expire state       source             virtual            "
        "destination        pe name          pe_data"
    )
    assert pe.splitlines()[4] == (
        "TCP 59:59  NONE        192.168.1.50:51235 192.168.1.100:80   "
        "10.0.0.2:80      sip                1@a"
    )
