"""The two builds of the engine: compiled from the .py sources with their .pxd files (what pip
installs), and the sources themselves (TCPVS_PURE_PYTHON=1, or a source changed since it was
compiled). The end-to-end tests run on both (the `lab` fixture); these check the choice."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tcpvs.compiled
from tests.support.procs import ROOT

EXCHANGE = ROOT / "tcpvs" / "exchange"
BUILT = "not compiled" not in tcpvs.compiled.why_pure()
needs_build = pytest.mark.skipif(not BUILT, reason="the engine is not compiled (pip install .)")
PROBE = "import tcpvs.compiled as c, tcpvs.exchange.http1 as h; print(c.IMPLEMENTATION, h.__file__)"


def run_python(code: str, env: dict[str, str], pythonpath: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter importing tcpvs from `pythonpath`."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(pythonpath), **env},
        cwd=pythonpath,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def probe(env: dict[str, str], pythonpath: Path = ROOT) -> tuple[str, str, str]:
    """(implementation, file of tcpvs.exchange.http1, stderr) in a fresh interpreter."""
    done = run_python(PROBE, env, pythonpath)
    implementation, path = done.stdout.split()
    return implementation, path, done.stderr


@needs_build
def test_the_compiled_engine_is_used_when_built() -> None:
    implementation, path, _ = probe({"TCPVS_PURE_PYTHON": ""})
    assert implementation == "cython"
    assert not path.endswith(".py")


@needs_build
def test_compiled_protocols_are_extension_types_without_a_dict() -> None:
    from tcpvs.proxy.client import ClientConnection

    if tcpvs.compiled.IMPLEMENTATION != "cython":
        pytest.skip("this interpreter runs the pure engine")
    with pytest.raises(AttributeError):
        ClientConnection(None).unknown_attribute = 1  # fixed C fields: no per-connection dict


def test_pure_python_is_forced_by_the_environment() -> None:
    implementation, path, _ = probe({"TCPVS_PURE_PYTHON": "1"})
    assert (implementation, Path(path)) == ("python", EXCHANGE / "http1.py")


@needs_build
def test_a_compiled_module_whose_source_changed_is_not_used(tmp_path: Path) -> None:
    copy = tmp_path / "tcpvs"
    shutil.copytree(ROOT / "tcpvs", copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = copy / "exchange" / "http1.py"
    source.write_text(source.read_text() + "\n# edited after the build\n")
    implementation, path, stderr = probe({"TCPVS_PURE_PYTHON": ""}, tmp_path)
    assert (implementation, Path(path)) == ("python", source)
    assert "http1.py changed since it was compiled" in stderr


@needs_build
def test_a_copied_build_with_unchanged_sources_runs_compiled(tmp_path: Path) -> None:
    """Copying files (as an install does) changes their times, never their digests."""
    copy = tmp_path / "tcpvs"
    shutil.copytree(ROOT / "tcpvs", copy, ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    later = time.time() + 60
    for source in [*(copy / "exchange").glob("*.py"), *(copy / "proxy").glob("*.py")]:
        os.utime(source, (later, later))  # newer than the compiled modules
    implementation, path, _ = probe({"TCPVS_PURE_PYTHON": ""}, tmp_path)
    assert implementation == "cython" and not path.endswith(".py")


@needs_build
def test_the_own_tls_layer_runs_only_from_its_current_source(tmp_path: Path) -> None:
    def why_not(env: dict[str, str], pythonpath: Path) -> tuple[str, str]:
        code = "import tcpvs.compiled as c; print(c.IMPLEMENTATION, '|', c.WHY_NOT_OWN_TLS)"
        implementation, why = run_python(code, env, pythonpath).stdout.split("|")
        return implementation.strip(), why.strip()

    assert why_not({"TCPVS_PURE_PYTHON": ""}, ROOT) == ("cython", "")
    assert why_not({"TCPVS_PURE_PYTHON": "1"}, ROOT) == ("python", "the pure-Python engine runs")
    copy = tmp_path / "tcpvs"
    shutil.copytree(ROOT / "tcpvs", copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = copy / "_fast" / "tlslayer.pyx"
    source.write_text(source.read_text() + "\n# edited after the build\n")
    implementation, why = why_not({"TCPVS_PURE_PYTHON": ""}, tmp_path)
    assert implementation == "cython" and "tlslayer.pyx changed since it was compiled" in why
