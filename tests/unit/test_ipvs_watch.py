"""--apply FILE --watch without a kernel or a socket: the --check option of a desired-state file,
the target with health (pure), the re-convergence after hand edits (drains that do not block),
the log lines, and the watcher's tick and reload against an in-memory kernel. (The checks'
tasks run on an event loop: tests/e2e/test_ipvs_checks.py.)"""

from __future__ import annotations

import errno
import io
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tcpvs.health.result import CheckResult
from tcpvs.health.spec import format_check, parse_check
from tcpvs.health.state import Health
from tcpvs.ipvs import apply, uapi
from tcpvs.ipvs.converge import (
    Probe,
    converge,
    explain,
    probes,
    server_key,
    target,
)
from tcpvs.ipvs.errors import IPVSError
from tcpvs.ipvs.model import Dest, Service, ServiceState
from tcpvs.ipvs.watch import Watcher

MASQ = uapi.IP_VS_CONN_F_MASQ
WEB = Service.tcp("10.0.0.1", 80, scheduler="rr")
RS1, RS2, RS3 = (Dest(f"10.0.1.{i}", 80, fwd=MASQ, weight=i) for i in (1, 2, 3))
CHECK = "http GET /healthz expect 200 interval 1 timeout 0.5 rise 2 fall 2"
RULES = (
    f'-A -t 10.0.0.1:80 -s rr --check "{CHECK}"\n'
    "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
    "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2\n"
    "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 3\n"
)
DESIRED = [ServiceState(WEB, (RS1, RS2, RS3))]


def commands(ops: list[apply.Op]) -> list[str]:
    return [op.command() for op in ops]


# -- the file --------------------------------------------------------------------------------


def test_check_option_ends_a_service_line() -> None:
    desired = apply.parse_desired(
        RULES + "-A -u 10.0.0.1:53\n-a -u 10.0.0.1:53 -r 10.0.1.1\n"
        "-A -f 7 --check tcp interval 3 port 8080\n-a -f 7 -r 10.0.1.4\n",
        "web.rules",
    )
    assert desired.services[0] == DESIRED[0]
    assert desired.checks == {
        WEB.key: parse_check(CHECK),
        Service.fw(7).key: parse_check("tcp interval 3 port 8080"),
    }  # the UDP service has none
    # the same file without its checks is the same table (plain --apply runs no check)
    assert desired.services == apply.parse_desired(
        RULES.replace(f' --check "{CHECK}"', ""), "web.rules"
    ).services + [
        ServiceState(Service.udp("10.0.0.1", 53), (Dest("10.0.1.1", 53),)),
        ServiceState(Service.fw(7), (Dest("10.0.1.4", 0),)),
    ]


@pytest.mark.parametrize(
    ("end", "spec"),
    [
        (f"--check {CHECK}", CHECK),  # bare: the rest of the line
        (f'--check\t"{CHECK}"  \r', CHECK),  # quoted, blanks around
        (r'--check "http GET / body \"a \\\"b\""', r'http GET / body "a \"b"'),
        ('--check http GET / body "a b"', 'http GET / body "a b"'),  # bare, the spec's quotes
        ("--check none", "none"),
    ],
)
def test_check_text_bare_or_quoted(end: str, spec: str) -> None:
    assert apply.split_check(f"-A -t 10.0.0.1:80 -s rr {end}") == ("-A -t 10.0.0.1:80 -s rr", spec)
    desired = apply.parse_desired(f"-A -t 10.0.0.1:80 -s rr {end}\n", "f")
    assert desired.checks.get(WEB.key) == parse_check(spec)


def test_a_check_written_back_reads_the_same() -> None:
    spec = parse_check('http HEAD /ok expect 204 body "up and \\"ready\\"" host example.org')
    text = format_check(spec).replace("\\", "\\\\").replace('"', '\\"')
    desired = apply.parse_desired(f'-A -t 10.0.0.1:80 --check "{text}"\n', "f")
    assert desired.checks[Service.tcp("10.0.0.1", 80).key] == spec


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "-A -t 10.0.0.1:80 --check http GET / intervall 1\n",
            "f:1: check: unknown keyword 'intervall' (column 12)",
        ),
        (
            "#\n-A -t 10.0.0.1:80 --check http interval 1\n",
            "f:2: check: interval '1' must be more than the timeout (1s) (column 15)",
        ),
        ('-A -t 10.0.0.1:80 --check "tcp\n', "f:1: check: unclosed quote (column 1)"),
        ("-A -t 10.0.0.1:80 --check\n", "f:1: check: empty: give http, tcp or none"),
        ("-A -t 10.0.0.1:80 --check tcp -s rr\n", "f:1: check: unknown keyword '-s' (column 5)"),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 --check tcp\n",
            "f:2: --check belongs at the end of a service's -A line",
        ),
        ("\n  --check tcp\n", "f:2: --check belongs at the end of a service's -A line"),
        ("-A -t 10.0.0.1:80 --check=tcp\n", "f:1: --check=tcp: unknown option"),
        (
            "-A -f 7 --check tcp\n-a -f 7 -r 10.0.1.4\n",
            "f:2: check: server 10.0.1.4 has no port: give the check one (port N)",
        ),
    ],
)
def test_a_bad_check_names_file_and_line(text: str, error: str) -> None:
    with pytest.raises(apply.DesiredStateError) as exc:
        apply.parse_desired(text, "f")
    assert str(exc.value) == error


def test_a_commented_check_is_a_comment() -> None:
    desired = apply.parse_desired("# -A -t 10.0.0.1:80 --check tcp\n", "f")
    assert desired == apply.DesiredState([], {})


def test_probes_are_the_checked_services_servers() -> None:
    desired = apply.parse_desired(RULES + "-A -t 10.0.0.2:80\n-a -t 10.0.0.2:80 -r 10.0.1.9\n", "f")
    spec = parse_check(CHECK)
    assert spec is not None
    assert probes(desired) == {server_key(WEB, d): Probe(spec, d.addr, 80) for d in (RS1, RS2, RS3)}


# -- the target: the file with the health in ------------------------------------------------


def test_a_down_server_weighs_zero_or_is_left_out() -> None:
    other = ServiceState(Service.tcp("10.0.0.2", 80), (RS1,))
    down = {server_key(WEB, RS2)}
    assert target([*DESIRED, other], down) == [
        ServiceState(WEB, (RS1, RS2.with_(weight=0), RS3)),
        other,  # the same server in another service is judged there
    ]
    assert target([*DESIRED, other], down, remove_down=True) == [
        ServiceState(WEB, (RS1, RS3)),
        other,
    ]
    assert target(DESIRED, set()) == DESIRED


def test_health_and_convergence_agree() -> None:
    """A down server's weight 0 is what the loop keeps: no correction undoes it."""
    down = {server_key(WEB, RS2)}
    kernel = [ServiceState(WEB, (RS1, RS2.with_(weight=0, active_conns=4), RS3))]
    assert converge(kernel, target(DESIRED, down), {}, 0.0, 30) == ([], {})
    # up again: its file weight back
    ops, _ = converge(kernel, target(DESIRED, set()), {}, 0.0, 30)
    assert commands(ops) == ["-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2"]


# -- re-convergence after hand edits ----------------------------------------------------------


def test_a_hand_deleted_service_is_created_again_with_its_servers() -> None:
    ops, draining = converge([], DESIRED, {}, 0.0, 30)
    assert commands(ops) == [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1",
        "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2",
        "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 3",
    ]
    assert draining == {}


def test_hand_edits_are_undone() -> None:
    kernel = [
        ServiceState(
            WEB.with_(scheduler="wlc"),
            (RS1.with_(weight=7), RS3),  # RS2 deleted, RS1's weight changed
        )
    ]
    ops, _ = converge(kernel, DESIRED, {}, 0.0, 30)
    assert commands(ops) == [
        "-E -t 10.0.0.1:80 -s rr",
        "-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1",
        "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2",
    ]


def test_a_hand_added_server_is_drained_then_deleted_without_waiting_in_between() -> None:
    extra = Dest("10.0.1.9", 80, fwd=MASQ)
    kernel = [ServiceState(WEB, (RS1, RS2, RS3, extra.with_(active_conns=2)))]
    key = server_key(WEB, extra)
    ops, draining = converge(kernel, DESIRED, {}, 100.0, 30)
    assert commands(ops) == ["-e -t 10.0.0.1:80 -r 10.0.1.9:80 -m -w 0"]
    assert draining == {key: 100.0}
    # drained, its connections still open: nothing to do, the drain goes on
    kernel = [ServiceState(WEB, (RS1, RS2, RS3, extra.with_(weight=0, active_conns=1)))]
    assert converge(kernel, DESIRED, draining, 110.0, 30) == ([], {key: 100.0})
    # deleted when its connections are gone ...
    idle = [ServiceState(WEB, (RS1, RS2, RS3, extra.with_(weight=0)))]
    ops, draining = converge(idle, DESIRED, {key: 100.0}, 111.0, 30)
    assert (commands(ops), draining) == (["-d -t 10.0.0.1:80 -r 10.0.1.9:80"], {})
    # ... or when the drain timeout has passed
    ops, draining = converge(kernel, DESIRED, {key: 100.0}, 130.0, 30)
    assert (commands(ops), draining) == (["-d -t 10.0.0.1:80 -r 10.0.1.9:80"], {})


def test_a_server_without_connections_goes_at_once() -> None:
    extra = Dest("10.0.1.9", 80, fwd=MASQ)
    kernel = [ServiceState(WEB, (RS1, RS2, RS3, extra))]
    ops, draining = converge(kernel, DESIRED, {}, 0.0, 30)
    assert commands(ops) == [
        "-e -t 10.0.0.1:80 -r 10.0.1.9:80 -m -w 0",
        "-d -t 10.0.0.1:80 -r 10.0.1.9:80",
    ]
    assert draining == {}


def test_a_service_gone_from_the_file_waits_for_its_servers_drain() -> None:
    gone = Service.tcp("10.0.0.9", 80)
    busy = Dest("10.0.1.1", 80, fwd=MASQ, active_conns=1)
    kernel = [*DESIRED, ServiceState(gone, (busy, RS2))]
    ops, draining = converge(kernel, DESIRED, {}, 0.0, 5)
    assert commands(ops) == [
        "-e -t 10.0.0.9:80 -r 10.0.1.1:80 -m -w 0",
        "-e -t 10.0.0.9:80 -r 10.0.1.2:80 -m -w 0",
    ]
    assert draining == {server_key(gone, busy): 0.0, server_key(gone, RS2): 0.0}
    drained = [*DESIRED, ServiceState(gone, (busy.with_(weight=0), RS2.with_(weight=0)))]
    ops, draining = converge(drained, DESIRED, draining, 5.0, 5)
    assert (commands(ops), draining) == (["-D -t 10.0.0.9:80"], {})


def test_a_drain_ends_when_the_server_comes_back() -> None:
    kernel = [ServiceState(WEB, (RS1, RS2.with_(weight=0, active_conns=3), RS3))]
    key = server_key(WEB, RS2)
    ops, draining = converge(kernel, [ServiceState(WEB, (RS1, RS3))], {}, 0.0, 30)
    assert (ops, draining) == ([], {key: 0.0})  # at weight 0 already: not drained again
    ops, draining = converge(kernel, DESIRED, draining, 1.0, 30)
    assert (commands(ops), draining) == (["-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2"], {})


# -- log lines ------------------------------------------------------------------------------


def test_each_correction_says_what_was_wrong_and_what_is_done() -> None:
    extra = Dest("10.0.1.9", 80, fwd=MASQ)
    gone = Service.udp("10.0.0.9", 53)
    kernel = [
        ServiceState(WEB.with_(scheduler="wlc", timeout=5), (RS1.with_(weight=7), RS3, extra)),
        ServiceState(gone),
    ]
    wanted = target(DESIRED, {server_key(WEB, RS3)})
    ops, _ = converge(kernel, wanted, {}, 0.0, 30)
    assert [explain(op, kernel, DESIRED) for op in ops] == [
        "service TCP 10.0.0.1:80 has scheduler wlc (want rr), persistence timeout 5 (want 0): "
        "-E -t 10.0.0.1:80 -s rr",
        "service TCP 10.0.0.1:80: server 10.0.1.1:80 has weight 7 (want 1): "
        "-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1",
        "service TCP 10.0.0.1:80: server 10.0.1.2:80 is missing: "
        "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2",
        "service TCP 10.0.0.1:80: server 10.0.1.3:80 has weight 3 (want 0) (down): "
        "-e -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 0",
        "service TCP 10.0.0.1:80: server 10.0.1.9:80 is not in the file, draining: "
        "-e -t 10.0.0.1:80 -r 10.0.1.9:80 -m -w 0",
        "service TCP 10.0.0.1:80: server 10.0.1.9:80 is not in the file, drained: "
        "-d -t 10.0.0.1:80 -r 10.0.1.9:80",
        "service UDP 10.0.0.9:53 is not in the file: -D -u 10.0.0.9:53",
    ]
    removed = target(DESIRED, {server_key(WEB, RS3)}, remove_down=True)
    ops, _ = converge([ServiceState(WEB, (RS1, RS2, RS3))], removed, {}, 0.0, 30)
    assert [explain(op, kernel, DESIRED) for op in ops] == [
        "service TCP 10.0.0.1:80: server 10.0.1.3:80 is down, draining: "
        "-e -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 0",
        "service TCP 10.0.0.1:80: server 10.0.1.3:80 is down, drained: "
        "-d -t 10.0.0.1:80 -r 10.0.1.3:80",
    ]


# -- the watcher's loop against an in-memory kernel ------------------------------------------


@dataclass
class Kernel:
    """AsyncIPVS's methods the watcher uses, on a table in memory; `failing` names a method
    that fails once (as a kernel refusing an operation)."""

    table: dict[tuple, ServiceState] = field(default_factory=dict)
    failing: str = ""

    async def state(self) -> list[ServiceState]:
        return list(self.table.values())

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        if name.startswith("_"):
            raise AttributeError(name)
        change = getattr(self, f"_{name}")

        async def call(*args: Any) -> None:
            if name == self.failing:
                self.failing = ""
                raise IPVSError(name, errno.ENOMEM)
            change(*args)

        return call

    def _add_service(self, svc: Service) -> None:
        self.table[svc.key] = ServiceState(svc)

    def _edit_service(self, svc: Service) -> None:
        self.table[svc.key] = ServiceState(svc, self.table[svc.key].dests)

    def _delete_service(self, svc: Service) -> None:
        del self.table[svc.key]

    def _add_dest(self, svc: Service, dest: Dest) -> None:
        state = self.table[svc.key]
        self.table[svc.key] = ServiceState(state.service, (*state.dests, dest))

    def _edit_dest(self, svc: Service, dest: Dest) -> None:
        state = self.table[svc.key]
        dests = tuple(dest if d.key == dest.key else d for d in state.dests)
        self.table[svc.key] = ServiceState(state.service, dests)

    def _delete_dest(self, svc: Service, dest: Dest) -> None:
        state = self.table[svc.key]
        dests = tuple(d for d in state.dests if d.key != dest.key)
        self.table[svc.key] = ServiceState(state.service, dests)


def refused() -> CheckResult:
    return CheckResult(False, None, "connection refused", 0.1, 0.0)


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Drive a coroutine that never waits for the event loop (the fake kernel answers at
    once): no loop, so no socket (its self-pipe) in tests/unit."""
    with pytest.raises(StopIteration):
        coro.send(None)


def watcher(kernel: Kernel, path: Path, err: io.StringIO) -> Watcher:
    return Watcher(
        kernel,  # type: ignore[arg-type]
        str(path),
        apply.parse_desired(path.read_text(), str(path)),
        prog="pyipvsadm",
        err=err,
        drain_timeout=30,
        remove_down=False,
    )


def test_the_watcher_applies_the_file_with_the_health_in(tmp_path: Path) -> None:
    rules = tmp_path / "web.rules"
    rules.write_text(RULES)
    kernel, err = Kernel(), io.StringIO()
    w = watcher(kernel, rules, err)
    run(w.tick())
    assert kernel.table == {WEB.key: DESIRED[0]}
    run(w.tick())  # nothing more to do
    assert err.getvalue().count("\n") == 4
    # a server fails its checks: its weight goes to 0, and stays there
    health = w.checks.health[server_key(WEB, RS2)] = Health(2, 2, passed=1)
    for _ in range(2):
        if health.observe(refused(), 0.0):
            w._health_changed(server_key(WEB, RS2), health)
    assert w.wake.is_set()
    run(w.tick())
    run(w.tick())
    assert kernel.table[WEB.key].dests == (RS1, RS2.with_(weight=0), RS3)
    assert err.getvalue().splitlines()[-2:] == [
        "pyipvsadm: service TCP 10.0.0.1:80: server 10.0.1.2:80 is down: "
        "2 failed checks: connection refused",
        "pyipvsadm: service TCP 10.0.0.1:80: server 10.0.1.2:80 has weight 2 (want 0) (down): "
        "-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0",
    ]


def test_a_bad_file_on_reload_changes_nothing(tmp_path: Path) -> None:
    rules = tmp_path / "web.rules"
    rules.write_text(RULES)
    kernel, err = Kernel(), io.StringIO()
    w = watcher(kernel, rules, err)
    run(w.tick())
    rules.write_text(RULES.replace("-w 2", "-w 5").replace("rise 2", "rise 0"))
    assert not w.read_file()
    run(w.tick())
    assert kernel.table == {WEB.key: DESIRED[0]}
    assert err.getvalue().splitlines()[-1] == (
        f"pyipvsadm: {rules}:1: check: rise must be a whole number from 1 to 100, not '0' "
        "(column 58); the rules in force stay"
    )
    rules.unlink()
    assert not w.read_file()
    assert err.getvalue().splitlines()[-1] == (
        f"pyipvsadm: {rules}: No such file or directory; the rules in force stay"
    )
    # a good file is applied
    rules.write_text(RULES.replace("-w 2", "-w 5"))
    assert w.read_file()
    run(w.tick())
    assert kernel.table[WEB.key].dests == (RS1, RS2.with_(weight=5), RS3)
    assert err.getvalue().splitlines()[-2:] == [
        f"pyipvsadm: reloaded {rules}: 1 service, 3 servers, 1 check",
        "pyipvsadm: service TCP 10.0.0.1:80: server 10.0.1.2:80 has weight 2 (want 5): "
        "-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 5",
    ]


def test_a_kernel_error_stops_the_tick_and_the_next_one_goes_on(tmp_path: Path) -> None:
    rules = tmp_path / "web.rules"
    rules.write_text(RULES)
    kernel, err = Kernel(failing="add_dest"), io.StringIO()
    w = watcher(kernel, rules, err)
    run(w.tick())
    assert kernel.table == {WEB.key: ServiceState(WEB)}
    assert err.getvalue().splitlines()[-1] == (
        "pyipvsadm: -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1: Memory allocation problem"
    )
    run(w.tick())
    assert kernel.table == {WEB.key: DESIRED[0]}


def test_a_drain_cut_short_says_so() -> None:
    extra = Dest("10.0.1.9", 80, fwd=MASQ, weight=0, active_conns=2)
    kernel = [ServiceState(WEB, (RS1, RS2, RS3, extra))]
    ops, _ = converge(kernel, DESIRED, {server_key(WEB, extra): 0.0}, 30.0, 30)
    assert [explain(op, kernel, DESIRED) for op in ops] == [
        "service TCP 10.0.0.1:80: server 10.0.1.9:80 is not in the file, drain timeout passed "
        "with 2 active: -d -t 10.0.0.1:80 -r 10.0.1.9:80"
    ]


def test_remove_down_deletes_a_down_server_and_adds_it_back(tmp_path: Path) -> None:
    rules = tmp_path / "web.rules"
    rules.write_text(RULES)
    kernel, err = Kernel(), io.StringIO()
    w = watcher(kernel, rules, err)
    w.remove_down = True
    run(w.tick())
    w.checks.health[server_key(WEB, RS2)] = Health(2, 2, up=False)
    run(w.tick())
    assert kernel.table[WEB.key].dests == (RS1, RS3)
    assert err.getvalue().splitlines()[-1] == (
        "pyipvsadm: service TCP 10.0.0.1:80: server 10.0.1.2:80 is down, drained: "
        "-d -t 10.0.0.1:80 -r 10.0.1.2:80"
    )
    w.checks.health[server_key(WEB, RS2)].up = True
    run(w.tick())
    assert kernel.table[WEB.key].dests == (RS1, RS3, RS2)
