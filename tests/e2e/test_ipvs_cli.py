"""pyipvsadm as a user meets it on a machine without IPVS, and main()'s re-entrancy."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from tcpvs import __version__
from tcpvs.ipvs import IPVS, IPVSError
from tcpvs.ipvs.cli import main

IPVSADM_VERSION = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)"
PYIPVSADM = f"pyipvsadm (tcpvs {__version__})"  # pyipvsadm's line after ipvsadm's
NO_IPVS = (
    "Can't initialize ipvs: Protocol not available\n"
    "Are you sure that IP Virtual Server is built in the kernel or as module?\n"
)


def _ipvs_errno() -> int:
    try:
        IPVS().close()
    except IPVSError as exc:
        return exc.errno
    return 0


needs_no_ipvs = pytest.mark.skipif(
    _ipvs_errno() != errno.ENOPROTOOPT, reason="this kernel has IPVS (the VM tests cover it)"
)


@needs_no_ipvs
@pytest.mark.parametrize(
    "argv", [[], ["-Ln"], ["-A", "-t", "10.0.0.1:80"], ["--bogus"], ["--apply", "-", "--dry-run"]]
)
def test_without_ipvs_one_clear_message_and_status_2(argv: list[str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tcpvs.ipvs.cli", *argv],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (r.returncode, r.stdout, r.stderr) == (2, "", NO_IPVS)


@needs_no_ipvs
def test_main_is_reentrant(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        assert main(["-L"]) == 2
        assert capsys.readouterr() == ("", NO_IPVS)
    assert main(["-v"], prog="ipvsadm") == 0
    assert capsys.readouterr() == (
        f"{IPVSADM_VERSION}\n{PYIPVSADM}\n",
        "",
    )


def test_help_and_version_need_no_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], prog="pyipvsadm") == 0
    out, err = capsys.readouterr()
    assert err == "" and "\n  pyipvsadm -A|E virtual-service [-s scheduler]" in out
    # ipvsadm -h's 82 lines, pyipvsadm's own second
    assert out.count("\n") == 83 and out.split("\n")[1].startswith(f"{PYIPVSADM}: ")
    assert main(["-v"]) == 0
    assert capsys.readouterr().out == f"{IPVSADM_VERSION}\n{PYIPVSADM}\n"
