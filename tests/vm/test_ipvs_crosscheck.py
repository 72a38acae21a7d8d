"""pyipvsadm against Debian's ipvsadm on a real kernel: same tables, same bytes, same errors.

One guest Python process (ipvs_crosscheck_runner.py) applies every case of ipvs_cases.py
with each tool on a clean table and lists both tables with both tools in every format; the
tests below read its report. Also: invalid command lines, the Python API (sync and asyncio),
--json and --apply.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.vm import ipvs_cases
from tests.vm.harness import Vm

pytestmark = [pytest.mark.vm, pytest.mark.timeout(900)]  # the report takes minutes
RUNNER = Path(__file__).with_name("ipvs_crosscheck_runner.py")


@pytest.fixture(scope="module")
def report(ipvs_vm: Vm) -> dict[str, Any]:
    out = ipvs_vm.shared / "ipvs-crosscheck.json"
    ipvs_vm.python(RUNNER, str(out), timeout=900).check()
    return json.loads(out.read_text())


def _show(diffs: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(d, indent=1) for d in diffs)


def test_suite_covers_every_command_and_option() -> None:
    words = {
        w
        for steps in ipvs_cases.CASES.values()
        for step in steps
        for w in shlex.split(step if isinstance(step, str) else step[0])
    }
    words |= {w for line in ipvs_cases.LISTINGS for w in shlex.split(line)}
    commands = {
        "-A",
        "-E",
        "-D",
        "-C",
        "-R",
        "-S",
        "-a",
        "-e",
        "-d",
        "-L",
        "-l",
        "-Z",
        "--set",
        "--start-daemon",
        "--stop-daemon",
    }
    options = {
        "-t",
        "-u",
        "--sctp-service",
        "-f",
        "-6",
        "-s",
        "-p",
        "-M",
        "--pe",
        "-b",
        "-o",
        "-r",
        "-g",
        "-i",
        "-m",
        "-w",
        "-x",
        "-y",
        "--tun-type",
        "--tun-port",
        "--tun-nocsum",
        "--tun-csum",
        "--tun-remcsum",
        "-n",
        "-c",
        "--timeout",
        "--daemon",
        "--stats",
        "--rate",
        "--exact",
        "--thresholds",
        "--persistent-conn",
        "--tun-info",
        "--nosort",
        "--sort",
        "--mcast-interface",
        "--syncid",
        "--mcast-group",
        "--mcast-port",
        "--mcast-ttl",
        "--sync-maxlen",
        "-X",
    }
    assert commands - words == set() and options - words == set()
    assert len(ipvs_cases.CASES) >= 40


@pytest.mark.parametrize("case", list(ipvs_cases.CASES))
def test_same_table_and_listings(report: dict[str, Any], case: str) -> None:
    diffs = report["cases"][case]
    assert not diffs, _show(diffs)


def test_invalid_command_lines(report: dict[str, Any]) -> None:
    assert not report["invalid"], _show(report["invalid"])


@pytest.mark.parametrize(
    "check",
    [
        "api add visible to ipvsadm",
        "api state",
        "api timeouts",
        "api error",
        "async api",
        "json -L",
        "json --timeout",
        "json --daemon",
        "json -c",
        "json -S",
        "apply --dry-run plan",
        "apply --dry-run changes nothing",
        "apply",
        "apply is idempotent",
        "apply refuses a bad file",
        "connections -Lnc",
        "connections -Lc",
        "connections -L -c --persistent-conn -n",
        "connections --list --connection",
        "json -c with entries",
    ],
)
def test_api_json_apply_and_connections(report: dict[str, Any], check: str) -> None:
    (result,) = [c for c in report["checks"] if c["name"] == check]
    assert result["ok"], json.dumps(result["detail"], indent=1)


def test_no_ipvs_message_without_traceback(ipvs_vm: Vm) -> None:
    """IPVS that cannot be used (here: CAP_NET_ADMIN dropped, as the table is shared): the
    same two lines as ipvsadm, status 2, never a traceback."""
    drop = "setpriv --bounding-set=-net_admin --inh-caps=-net_admin "
    r = ipvs_vm.run(drop + "python3 -m tcpvs.ipvs.cli -Ln; echo status=$?")
    real = ipvs_vm.run(drop + "ipvsadm -Ln; echo status=$?")
    assert "Traceback" not in r.stderr
    ipvsadm_lines = [
        line for line in real.stderr.splitlines(True) if not line.startswith("modprobe")
    ]  # modprobe's own complaint
    assert (r.stdout, r.stderr) == (real.stdout, "".join(ipvsadm_lines))
    assert (
        r.stderr
        == (
            "Can't initialize ipvs: Permission denied (you must be root)\n"
            "Are you sure that IP Virtual Server is built in the kernel or as "
            "module?\n"
        )
        and r.stdout == "status=2\n"
    )
