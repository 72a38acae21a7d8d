"""`pip install` as a user runs it (a fresh venv, not editable): the compiled engine is what
runs, and without a C compiler the install still works, runs the pure-Python engine and says
so. Needs PyPI (or a pip cache) for the build and runtime dependencies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.procs import ROOT

PROBE = "import tcpvs.compiled as c, tcpvs.exchange.http1 as h; print(c.IMPLEMENTATION, h.__file__)"


# what a clean checkout has not: builds of this tree must not stand in for the install's own
NOT_IN_A_CHECKOUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.so", "*.c", "_built.py", ".*cache"
)


def install(target: Path, env: dict[str, str] | None = None) -> Path:
    """A fresh venv at `target` with a clean copy of this tree pip-installed into it; returns
    its python."""
    source = target.parent / "source"
    shutil.copytree(ROOT, source, ignore=NOT_IN_A_CHECKOUT)
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=target,
    )
    if done.returncode and "No matching distribution" in done.stderr + done.stdout:
        pytest.skip(f"no package index to install from: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr
    return python


def run(python: Path, *args: str) -> subprocess.CompletedProcess:
    # cwd outside the tree, and no PYTHONPATH: only the installed package can be imported
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TCPVS_PURE_PYTHON")}
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, timeout=60, cwd=python.parent, env=env
    )


def test_an_installed_package_runs_the_compiled_engine(tmp_path):
    python = install(tmp_path / "venv")
    probe = run(python, "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    implementation, path = probe.stdout.split()
    assert implementation == "cython", probe.stderr
    assert Path(path).is_relative_to(tmp_path / "venv") and path.endswith(".so")
    assert probe.stderr == ""  # no warning
    version = run(tmp_path / "venv" / "bin" / "tcpvsd", "--version")
    assert version.returncode == 0 and "(compiled engine, tcpvs's TLS)" in version.stdout


def test_without_openssl_headers_tls_runs_on_the_loops_layer_and_says_so(tmp_path):
    # Searched before the system's: an openssl/ssl.h that stops the compiler, as if absent.
    headers = tmp_path / "include" / "openssl"
    headers.mkdir(parents=True)
    (headers / "ssl.h").write_text("#error no OpenSSL headers here\n")
    env = {"C_INCLUDE_PATH": str(headers.parent), "PIP_NO_CACHE_DIR": "1"}
    python = install(tmp_path / "venv", env)
    code = "import tcpvs.compiled as c; print(c.IMPLEMENTATION, '|', c.WHY_NOT_OWN_TLS)"
    probe = run(python, "-c", code)
    implementation, why = (part.strip() for part in probe.stdout.split("|"))
    assert implementation == "cython" and why.startswith("not compiled"), probe.stderr
    daemon = run(
        tmp_path / "venv" / "bin" / "tcpvsd", "--socket", "/nonexistent/dir/s", "-f", "/nonexistent"
    )
    assert "TLS services run on the event loop's TLS layer" in daemon.stderr


def test_without_a_c_compiler_the_install_runs_the_pure_engine_and_says_so(tmp_path):
    python = install(tmp_path / "venv", {"CC": "/bin/false", "PIP_NO_CACHE_DIR": "1"})
    code = "import tcpvs.compiled as c; print(c.IMPLEMENTATION, '|', c.WHY_PURE)"
    probe = run(python, "-c", code)
    assert probe.stdout.split("|")[0].strip() == "python", probe.stderr
    assert "not compiled" in probe.stdout
    # tcpvsd says it at start, as a warning (stops at once: the control socket is not usable)
    daemon = run(
        tmp_path / "venv" / "bin" / "tcpvsd", "--socket", "/nonexistent/dir/s", "-f", "/nonexistent"
    )
    assert "running the pure-Python engine" in daemon.stderr
    assert "3x the CPU" in daemon.stderr


if sys.platform != "linux":  # pragma: no cover - the engine is Linux only
    pytestmark = pytest.mark.skip("Linux only")
