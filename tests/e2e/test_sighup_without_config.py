"""SIGHUP to a tcpvsd started without -f: nothing to reload, so it says so and keeps running
and serving (one process, and the master of --workers 2)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.client import get
from tests.support.logs import StderrLog
from tests.support.procs import free_port, stop

NOTHING_TO_RELOAD = "SIGHUP: no config file to reload (tcpvsd was started without -f)"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_without_config_file_logs_and_keeps_serving(daemon, backends, workers):
    (r1,) = backends("r1")
    d = daemon("--workers", workers)
    log = StderrLog(d.proc)
    port = free_port()
    d.ok("-A", "-i", "web", "-l", f"127.0.0.1:{port}")
    d.ok("-a", "-i", "web", "-r", r1.address)
    d.ok("--start", "-i", "web")
    listing = d.ok("-L", "-n")
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)  # what a SIGHUP would do (exit, reload) happens well within this
    assert d.proc.poll() is None, "tcpvsd exited on SIGHUP"
    assert d.ok("-L", "-n") == listing  # the table is untouched
    status, headers, _ = get(port, "/after-hup")
    assert (status, headers["X-Backend"]) == (200, "r1")
    assert stop(d.proc) == 0
    stderr = log.text()
    assert stderr.count(NOTHING_TO_RELOAD) == 1, stderr
    assert "Traceback" not in stderr
