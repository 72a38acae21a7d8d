"""Guest side of the ipvsadm cross-check: one Python process runs the whole suite.

pyipvsadm runs in-process (tcpvs.ipvs.cli.main), Debian's ipvsadm in batched shell scripts;
every case is applied by each tool on a clean table and listed by both. Writes a JSON report
to argv[1]: per case the differences found, plus the invalid-line and API/JSON/--apply checks.
"""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ipvs_cases  # noqa: E402

from tcpvs.ipvs import IPVS, AsyncIPVS, Dest, Service, Timeouts, uapi  # noqa: E402
from tcpvs.ipvs.cli import main  # noqa: E402
from tcpvs.ipvs.options import PYIPVSADM_HELP, PYIPVSADM_VERSION  # noqa: E402

Result = list  # [status, stdout, stderr]
WORK = Path(tempfile.mkdtemp(prefix="ipvs-xcheck-"))


def step_parts(step: ipvs_cases.Step) -> tuple[list[str], str]:
    line, stdin = (step, "") if isinstance(step, str) else step
    return shlex.split(line), stdin


def clean() -> None:
    """An empty table, default timeouts, no sync daemon (through the API: no process start)."""
    with IPVS() as ipvs:
        ipvs.flush()
        ipvs.set_timeouts(Timeouts(900, 120, 300))
        for daemon in ipvs.daemons():
            ipvs.stop_daemon(daemon)


def real(steps: list[ipvs_cases.Step]) -> list[Result]:
    """Run `ipvsadm <args>` for each step in one shell; status, stdout and stderr of each."""
    script = []
    for i, step in enumerate(steps):
        args, stdin = step_parts(step)
        (WORK / f"i.{i}").write_text(stdin)
        script.append(
            f"{shlex.join(['ipvsadm', *args])} <{WORK}/i.{i} >{WORK}/o.{i} "
            f"2>{WORK}/e.{i}; echo $? >{WORK}/r.{i}"
        )
    subprocess.run(["sh", "-c", "\n".join(script)], check=True, timeout=300)
    return [
        [
            int((WORK / f"r.{i}").read_text()),
            (WORK / f"o.{i}").read_text(),
            (WORK / f"e.{i}").read_text(),
        ]
        for i in range(len(steps))
    ]


def py(step: ipvs_cases.Step) -> Result:
    """pyipvsadm in this process, with its own stdin/stdout/stderr."""
    args, stdin = step_parts(step)
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        status: Any = main(args, prog="ipvsadm")
    except BaseException:  # noqa: BLE001 - a traceback is a finding, not a crash of the suite
        status = "exception"
        err.write(traceback.format_exc())
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return [status, out.getvalue(), err.getvalue()]


def run_case(steps: list[ipvs_cases.Step]) -> list[dict[str, Any]]:
    listings: list[ipvs_cases.Step] = list(ipvs_cases.LISTINGS)
    clean()
    by_real = real(steps + listings)
    setup_real, list_real_a = by_real[: len(steps)], by_real[len(steps) :]
    list_py_a = [py(step) for step in listings]
    clean()
    setup_py = [py(step) for step in steps]
    list_real_b = dict(
        zip(ipvs_cases.CORE_LISTINGS, real(list(ipvs_cases.CORE_LISTINGS)), strict=True)
    )
    list_py_b = [py(step) for step in listings]
    diffs = []
    for step, r, p in zip(steps, setup_real, setup_py, strict=True):
        if r != p:
            diffs.append({"what": f"apply {step!r}", "ipvsadm": r, "pyipvsadm": p})
    for i, step in enumerate(listings):
        seen = {
            "ipvsadm on ipvsadm's table": list_real_a[i],
            "pyipvsadm on ipvsadm's table": list_py_a[i],
            "pyipvsadm on pyipvsadm's table": list_py_b[i],
        }
        if step in list_real_b:
            seen["ipvsadm on pyipvsadm's table"] = list_real_b[step]
        if any(v != list_real_a[i] for v in seen.values()):
            diffs.append({"what": f"listing {step!r}", **seen})
    return diffs


# pyipvsadm's own line, which it prints after ipvsadm's version line; the rest is ipvsadm's.
OWN_LINE = {
    "-h": PYIPVSADM_HELP,
    "--help": PYIPVSADM_HELP,
    "-v": PYIPVSADM_VERSION,
    "--version": PYIPVSADM_VERSION,
}


def expected_py(line: ipvs_cases.Step, r: Result) -> Result:
    """What pyipvsadm must print where ipvsadm printed `r`."""
    own = OWN_LINE.get(line) if isinstance(line, str) else None
    if own is None:
        return r
    first, _, rest = r[1].partition("\n")
    return [r[0], f"{first}\n{own}\n{rest}", r[2]]


def check_invalid() -> list[dict[str, Any]]:
    clean()
    lines: list[ipvs_cases.Step] = list(ipvs_cases.INVALID)
    reals = real(lines)
    diffs = []
    for line, r in zip(lines, reals, strict=True):
        p = py(line)
        if expected_py(line, r) != p:
            diffs.append({"what": line, "ipvsadm": r, "pyipvsadm": p})
    state = real(["-S -n"])[0]
    if state != [0, "", ""]:
        diffs.append({"what": "invalid lines changed the table", "ipvsadm": state})
    return diffs


def check(name: str, ok: bool, detail: Any = "") -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def check_api() -> list[dict[str, Any]]:
    clean()
    out = []
    with IPVS() as ipvs:
        svc = Service.tcp("10.20.0.1", 80, scheduler="rr")
        ipvs.add_service(svc)
        ipvs.add_dest(svc, Dest("10.20.1.1", 8080, fwd=uapi.IP_VS_CONN_F_MASQ, weight=4))
        listed = real(["-Ln"])[0][1]
        out.append(
            check(
                "api add visible to ipvsadm",
                "TCP  10.20.0.1:80 rr" in listed and "10.20.1.1:8080" in listed,
                listed,
            )
        )
        (state,) = ipvs.state()
        out.append(
            check("api state", state.service == svc and state.dests[0].weight == 4, repr(state))
        )
        ipvs.set_timeouts(Timeouts(111, 0, 0))
        out.append(
            check("api timeouts", ipvs.timeouts() == Timeouts(111, 120, 300), repr(ipvs.timeouts()))
        )
        try:
            ipvs.add_service(svc)
            out.append(check("api error", False, "no exception"))
        except Exception as exc:  # noqa: BLE001
            out.append(
                check(
                    "api error",
                    getattr(exc, "errno", 0) == 17 and str(exc) == "Service already exists",
                    repr(exc),
                )
            )

    async def use_async() -> list[Any]:
        async with await AsyncIPVS.open() as aipvs:
            await aipvs.add_service(Service.udp("10.20.0.2", 53))
            return await asyncio.gather(aipvs.services(), aipvs.info())

    services, info = asyncio.run(use_async())
    out.append(
        check("async api", len(services) == 2 and info.version_text == "1.2.1", repr(services))
    )
    return out


def check_json() -> list[dict[str, Any]]:
    clean()
    real(
        [
            "-A -t 10.30.0.1:80 -s sh -b sh-port -p 30",
            "-a -t 10.30.0.1:80 -r 10.30.1.1 -m -w 7",
            f"--start-daemon master --mcast-interface {ipvs_cases.SYNC_IF}",
        ]
    )
    doc = json.loads(py("-L --json")[1])
    svc = doc["services"][0]
    out = [
        check(
            "json -L",
            doc["version"] == "1.2.1"
            and svc["address"] == "10.30.0.1"
            and svc["sched_flags"] == ["sh-port"]
            and svc["timeout"] == 30
            and svc["dests"][0]["weight"] == 7
            and svc["dests"][0]["forward"] == "Masq",
            doc,
        )
    ]
    out.append(
        check(
            "json --timeout",
            json.loads(py("-L --timeout --json")[1]) == {"tcp": 900, "tcpfin": 120, "udp": 300},
        )
    )
    daemons = json.loads(py("-L --daemon --json")[1])["daemons"]
    out.append(
        check(
            "json --daemon",
            daemons[0]["state"] == "master" and daemons[0]["mcast_interface"] == ipvs_cases.SYNC_IF,
            daemons,
        )
    )
    out.append(check("json -c", json.loads(py("-L -c --json")[1]) == {"connections": []}))
    out.append(check("json -S", json.loads(py("-S --json")[1])["services"][0]["port"] == 80))
    return out


def check_apply() -> list[dict[str, Any]]:
    clean()
    real(
        [
            "-A -t 10.40.0.1:80 -s rr",
            "-a -t 10.40.0.1:80 -r 10.40.1.1 -m",
            "-a -t 10.40.0.1:80 -r 10.40.1.2 -m",
            "-A -t 10.40.0.9:80",
        ]
    )
    desired = WORK / "desired.rules"
    desired.write_text(
        "# desired\n-A -t 10.40.0.1:80 -s wlc\n"
        "-a -t 10.40.0.1:80 -r 10.40.1.1 -m -w 3\n"
        "-a -t 10.40.0.1:80 -r 10.40.1.3 -m -w 1\n-A -u 10.40.0.1:53\n"
    )
    before = real(["-S -n"])[0]
    plan = py(f"--apply {desired} --dry-run")
    out = [
        check(
            "apply --dry-run plan",
            plan
            == [
                0,
                (
                    "-E -t 10.40.0.1:80 -s wlc\n"
                    "-e -t 10.40.0.1:80 -r 10.40.1.1:80 -m -w 3\n"
                    "-a -t 10.40.0.1:80 -r 10.40.1.3:80 -m -w 1\n"
                    "-A -u 10.40.0.1:53 -s wlc\n"
                    "-e -t 10.40.0.1:80 -r 10.40.1.2:80 -m -w 0\n"
                    "-d -t 10.40.0.1:80 -r 10.40.1.2:80\n"
                    "-D -t 10.40.0.9:80\n"
                ),
                "",
            ],
            plan,
        )
    ]
    out.append(check("apply --dry-run changes nothing", real(["-S -n"])[0] == before))
    applied = py(f"--apply {desired} --drain-timeout 5")
    after = real(["-S -n"])[0]
    out.append(
        check(
            "apply",
            applied == [0, "", ""]
            and after
            == [
                0,
                (
                    "-A -t 10.40.0.1:80 -s wlc\n"
                    "-a -t 10.40.0.1:80 -r 10.40.1.1:80 -m -w 3\n"
                    "-a -t 10.40.0.1:80 -r 10.40.1.3:80 -m -w 1\n"
                    "-A -u 10.40.0.1:53 -s wlc\n"
                ),
                "",
            ],
            [applied, after],
        )
    )
    again = py(f"--apply {desired} --dry-run")
    out.append(check("apply is idempotent", again == [0, "", ""], again))
    bad = WORK / "bad.rules"
    bad.write_text("-A -t 10.40.0.1:80\n-a -t 10.40.0.7:80 -r 10.40.1.1\n")
    out.append(
        check(
            "apply refuses a bad file",
            py(f"--apply {bad}") == [2, "", f"{bad}:2: Service not defined\n"],
            py(f"--apply {bad}"),
        )
    )
    return out


def check_connections() -> list[dict[str, Any]]:
    """-c with live entries: local connection attempts to NAT services (nobody answers, so
    they stay in SYN_RECV). Expiry counts down: pyipvsadm must match ipvsadm's listing just
    before or just after its own."""
    clean()
    name = ipvs_cases.SYNC_IF
    subprocess.run(
        [
            "sh",
            "-c",
            f"ip route add 10.50.0.0/16 dev {name} && ip -6 route add fd00:50::/64 dev {name}",
        ],
        check=True,
    )
    real(
        [
            "-A -t 10.50.0.1:80 -p",
            "-a -t 10.50.0.1:80 -r 10.50.1.1 -m",
            "-A -u 10.50.0.1:53",
            "-a -u 10.50.0.1:53 -r 10.50.1.2 -m",
            "-A -t [fd00:50::1]:80",
            "-a -t [fd00:50::1]:80 -r [fd00:50::2]:8080 -m",
        ]
    )
    socks = []
    for family, addr in (
        (socket.AF_INET, "10.50.0.1"),
        (socket.AF_INET, "10.50.0.1"),
        (socket.AF_INET6, "fd00:50::1"),
    ):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((addr, 80))
        socks.append(sock)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendto(b"x", ("10.50.0.1", 53))
    socks.append(udp)
    out = []
    try:
        for line in ("-Lnc", "-Lc", "-L -c --persistent-conn -n", "--list --connection"):
            before, mine, after = real([line])[0], py(line), real([line])[0]
            out.append(
                check(
                    f"connections {line}",
                    mine in (before, after) and len(mine[1].splitlines()) == 7,
                    {"ipvsadm": before, "pyipvsadm": mine},
                )
            )
        entries = json.loads(py("-L -c --json")[1])["connections"]
        out.append(
            check(
                "json -c with entries",
                len(entries) == 5
                and {e["virtual"] for e in entries} == {"10.50.0.1", "fd00:50::1"},
                entries,
            )
        )
    finally:
        for sock in socks:
            sock.close()
    return out


def sync_interface(up: bool) -> None:
    name = ipvs_cases.SYNC_IF
    cmd = (
        f"ip link add {name} type veth peer name {name[:-1]}1 && ip link set {name} up "
        f"&& ip link set {name[:-1]}1 up"
        if up
        else f"ip link del {name}"
    )
    subprocess.run(["sh", "-c", cmd], check=True)


def run(selected: list[str]) -> dict[str, Any]:
    sync_interface(True)
    try:
        report: dict[str, Any] = {"cases": {}}
        for name, steps in ipvs_cases.CASES.items():
            if not selected or name in selected:
                report["cases"][name] = run_case(steps)
        if not selected:
            report["invalid"] = check_invalid()
            report["checks"] = check_api() + check_json() + check_apply() + check_connections()
        return report
    finally:
        clean()
        sync_interface(False)


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(run(sys.argv[2:]), indent=1))
