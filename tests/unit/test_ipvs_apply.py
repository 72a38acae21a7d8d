"""--apply: desired-state files, the diff plan, the drain-then-delete order, -S/-R round trip."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tcpvs.ipvs import apply, listing, uapi
from tcpvs.ipvs.model import Dest, Service, ServiceState
from tcpvs.ipvs.options import FMT_NUMERIC, FMT_RULE

MASQ, TUN = uapi.IP_VS_CONN_F_MASQ, uapi.IP_VS_CONN_F_TUNNEL
WEB = Service.tcp("10.0.0.1", 80, scheduler="rr")


def commands(current: list[ServiceState], desired: list[ServiceState]) -> list[str]:
    return [op.command() for op in apply.plan(current, desired)]


def test_plan_from_empty_creates_in_file_order() -> None:
    desired = apply.parse_desired(
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 2 -x 10\n"
        "# comment\n\nipvsadm -A -f 5 -6 -p 30 -M 64\n",
        "web.rules",
    ).services
    assert commands([], desired) == [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 2 -x 10",
        "-A -f 5 -6 -s wlc -p 30 -M 64",
    ]


def test_plan_edits_drains_then_deletes() -> None:
    current = [
        ServiceState(
            WEB, (Dest("10.0.0.2", 80, fwd=MASQ), Dest("10.0.0.3", 80, fwd=MASQ, active_conns=4))
        ),
        ServiceState(Service.udp("10.0.0.1", 53), (Dest("10.0.0.9", 53),)),
    ]
    desired = [
        ServiceState(
            WEB.with_(scheduler="wlc"),
            (Dest("10.0.0.2", 80, fwd=MASQ, weight=5), Dest("10.0.0.4", 80, fwd=TUN, tun_type=2)),
        )
    ]
    assert commands(current, desired) == [
        "-E -t 10.0.0.1:80 -s wlc",
        "-e -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 5",
        "-a -t 10.0.0.1:80 -r 10.0.0.4:80 -i -w 1 --tun-type gre --tun-nocsum",
        "-e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0",
        "-e -u 10.0.0.1:53 -r 10.0.0.9:53 -g -w 0",
        "-d -t 10.0.0.1:80 -r 10.0.0.3:80",
        "-D -u 10.0.0.1:53",
    ]


def test_plan_is_empty_when_the_kernel_matches() -> None:
    kernel = [
        ServiceState(
            WEB.with_(flags=uapi.IP_VS_SVC_F_HASHED),
            (Dest("10.0.0.2", 80, fwd=MASQ, active_conns=3, tun_port=7),),
        )
    ]
    desired = [ServiceState(WEB, (Dest("10.0.0.2", 80, fwd=MASQ),))]
    assert apply.plan(kernel, desired) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("-A -t 10.0.0.1:80\n-a -t 10.0.0.9:80 -r 10.0.0.2\n", "f:2: Service not defined"),
        ("-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr\n", "f:2: Service already exists"),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2\n"
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 3\n",
            "f:3: Destination already exists",
        ),
        ("\n-A -t 10.0.0.1\n", "f:2: Zero port specified for non-persistent service"),
        ("-D -t 10.0.0.1:80\n", "f:1: only -A and -a lines can describe a desired state"),
        ("-A -t 10.0.0.1:80 --bogus\n", "f:1: --bogus: unknown option"),
        ("-L\n", "f:1: only -A and -a lines can describe a desired state"),
    ],
)
def test_desired_state_errors_name_file_and_line(text: str, error: str) -> None:
    with pytest.raises(apply.DesiredStateError) as exc:
        apply.parse_desired(text, "f")
    assert str(exc.value) == error


def test_save_output_restores_the_same_table() -> None:
    """-S (numeric) fed back as a desired state (the -R grammar) describes the same table."""
    table = [
        ServiceState(
            Service.tcp(
                "10.0.0.1",
                80,
                scheduler="sh",
                flags=0x19,
                timeout=50,
                netmask=0xFFFF0000,
                pe_name="sip",
            ),
            (
                Dest("10.0.0.3", 8080, fwd=MASQ, weight=4),
                Dest("10.0.0.4", 80, fwd=TUN, tun_type=1, tun_port=99, tun_flags=2),
                Dest("2001:db8::9", 80, fwd=TUN, tun_type=2, tun_flags=1),
            ),
        ),
        ServiceState(
            Service.fw(9, af=uapi.AF_INET6, scheduler="mh", flags=0x9, timeout=10, netmask=120)
        ),
        ServiceState(
            Service.udp("2001:db8::1", 53, flags=uapi.IP_VS_SVC_F_ONEPACKET),
            (Dest("2001:db8::2", 53, weight=0),),
        ),
    ]
    saved = listing.list_all(None, table, FMT_RULE | FMT_NUMERIC)
    restored = apply.parse_desired(saved, "saved").services
    assert apply.plan(table, restored) == []
    assert listing.list_all(None, restored, FMT_RULE | FMT_NUMERIC) == saved


@dataclass
class Kernel:
    """Records what execute() asks of the kernel; reports fading active connections."""

    active: dict[str, list[int]]
    calls: list[str] = field(default_factory=list)

    def dests(self, svc: Service) -> list[Dest]:
        self.calls.append("poll")
        return [
            Dest(addr, 80, active_conns=left.pop(0) if len(left) > 1 else left[0])
            for addr, left in self.active.items()
        ]

    def __getattr__(self, name: str) -> object:  # add_service, edit_dest, delete_dest, ...
        def record(*args: Service | Dest) -> None:
            said = [f"{a.addr}:{a.weight if isinstance(a, Dest) else a.scheduler}" for a in args]
            self.calls.append(" ".join([name, *said]))

        return record


def test_execute_drains_before_deleting() -> None:
    kernel = Kernel({"10.0.0.2": [3, 1, 0], "10.0.0.3": [0]})
    current = [ServiceState(WEB, (Dest("10.0.0.2", 80), Dest("10.0.0.3", 80)))]
    ops = apply.plan(current, [ServiceState(WEB, (Dest("10.0.0.3", 80),))])
    now = [0.0]
    apply.execute(
        kernel,
        ops,
        60,
        clock=lambda: now[0],  # type: ignore[arg-type]
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert kernel.calls == [
        "edit_dest 10.0.0.1:rr 10.0.0.2:0",
        "poll",
        "poll",
        "poll",
        "delete_dest 10.0.0.1:rr 10.0.0.2:1",
    ]
    assert now[0] == 1.0


def test_execute_gives_up_waiting_at_the_drain_timeout() -> None:
    kernel = Kernel({"10.0.0.2": [5]})
    ops = apply.plan([ServiceState(WEB, (Dest("10.0.0.2", 80),))], [])
    now = [0.0]
    apply.execute(
        kernel,
        ops,
        2,
        clock=lambda: now[0],  # type: ignore[arg-type]
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert now[0] == 2.0
    assert kernel.calls[0] == "edit_dest 10.0.0.1:rr 10.0.0.2:0"
    assert kernel.calls[-1] == "delete_service 10.0.0.1:rr"
