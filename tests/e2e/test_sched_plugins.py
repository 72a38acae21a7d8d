"""Schedulers load by name from the `tcpvs.schedulers` entry points: built-ins and plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from tcpvs.errors import TableError
from tcpvs.sched import Scheduler
from tcpvs.table.operations import Table
from tests.support.extsched import PLUGIN_HEADER, PLUGIN_NAME, build_extsched, plugin_env
from tests.support.procs import ROOT as REPO

BUILTINS = {
    "wlc": False,
    "lc": False,
    "rr": False,
    "wrr": False,
    "http": True,
    "phttp": True,
    "chttp": True,
    "hhttp": True,
}

# Run in a subprocess: entry points are found on the subprocess's own sys.path.
PROBE = """
import json, sys
import tcpvs
from tcpvs.sched import available, load_scheduler
from tcpvs.sched.base import ScheduleContext

out = {"available": available()}
try:
    sched = load_scheduler(sys.argv[1])
except tcpvs.TableError as exc:
    out["error"] = str(exc)
else:
    table = tcpvs.Table()
    service = table.add_service("x", listen="127.0.0.1:8080", scheduler=sys.argv[1])
    a = table.add_server("x", "127.0.0.1:9001", 1)
    b = table.add_server("x", "127.0.0.1:9002", 5)
    ctx = ScheduleContext()
    out.update(
        module=sys.modules[type(sched).__module__].__file__,
        scheduler=service.scheduler_name,
        speaks_http=service.speaks_http,
        picked=[str(service.scheduler.select([a, b], ctx).address),
                str(service.scheduler.select([b, a], ctx).address)],
        empty=service.scheduler.select([], ctx),
        headers=service.scheduler.response_headers(ctx, a).decode(),
    )
    try:
        table.edit_service("x", scheduler="nosuch")
    except tcpvs.TableError as exc:
        out["edit_error"] = str(exc)
    out["after_edit"] = service.scheduler_name
print(json.dumps(out))
"""


def probe(name: str, site: Path | None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, name],
        env=plugin_env(site),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_plugin_scheduler_loads_by_name(tmp_path: Path) -> None:
    site = build_extsched(tmp_path)
    out = probe(PLUGIN_NAME, site)
    assert "error" not in out, out
    assert PLUGIN_NAME in out["available"]
    assert Path(out["module"]).parent == site  # the installed copy, found via its entry point
    assert out["scheduler"] == PLUGIN_NAME
    assert out["speaks_http"] is False
    assert out["picked"] == ["127.0.0.1:9001", "127.0.0.1:9002"]  # always the first candidate
    assert out["empty"] is None
    assert (
        out["headers"].encode() == PLUGIN_HEADER + b"\r\nX-Scheduler-State: 2 0\r\n"
    )  # told of both servers
    assert out["edit_error"] == "Scheduler not found"
    assert out["after_edit"] == PLUGIN_NAME  # a refused edit changes nothing


def test_plugin_is_not_found_without_its_distribution() -> None:
    out = probe(PLUGIN_NAME, None)
    assert out["error"] == "Scheduler not found"
    assert PLUGIN_NAME not in out["available"]


def test_broken_plugin_is_a_table_error(tmp_path: Path) -> None:
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (tmp_path / "notasched.py").write_text("class Other:\n    pass\n")
    (info / "entry_points.txt").write_text(
        "[tcpvs.schedulers]\nbroken = nosuchmodule:Nope\nother = notasched:Other\n"
    )
    broken = probe("broken", tmp_path)
    assert broken["error"].startswith("Scheduler not found (broken: No module named")
    other = probe("other", tmp_path)
    assert other["error"] == "Scheduler not found (other is not a tcpvs scheduler)"


def test_unknown_scheduler_is_refused_and_changes_nothing() -> None:
    table = Table()
    with pytest.raises(TableError) as err:
        table.add_service("x", scheduler="nosuch")
    assert str(err.value) == "Scheduler not found"
    assert table.services == {}


def test_pyproject_declares_every_builtin() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][
        "tcpvs.schedulers"
    ]
    assert set(declared) == set(BUILTINS)
    for name, target in declared.items():
        cls = EntryPoint(name, target, "tcpvs.schedulers").load()
        assert issubclass(cls, Scheduler)
        assert cls.name == name
        assert cls.http is BUILTINS[name]


@pytest.mark.skipif(
    not entry_points(group="tcpvs.schedulers", name="wlc"),
    reason="tcpvs is not installed (pip install -e .): its entry points are not registered",
)
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_loads_by_name(name: str) -> None:
    table = Table()
    service = table.add_service("x", scheduler=name)
    assert service.scheduler.name == name
    assert service.speaks_http is BUILTINS[name]  # without rules: raw TCP unless an HTTP one
