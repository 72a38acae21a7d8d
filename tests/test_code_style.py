"""The code style checks run with the tests: ruff's lint and its formatter (pinned version)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.procs import ROOT

RUFF = shutil.which("ruff", path=str(ROOT / ".venv" / "bin")) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(check):
    done = subprocess.run(
        [RUFF, *check, "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
