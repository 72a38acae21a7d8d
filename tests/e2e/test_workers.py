"""tcpvsd --workers 2: a master and two SO_REUSEPORT worker processes, administered as one.

Every request here goes on a new connection, so the kernel spreads them over the workers;
`-L --json` names the workers and counts what each served, which proves that both got
traffic (40 connections all landing on one of two workers: chance 2**-39) and, as every
answer is checked, that both route by the rules.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpvs.daemon.master import Master, WorkerOptions
from tcpvs.errors import ControlError, TableError
from tcpvs.switch import Switch
from tcpvs.table.listing import snapshot
from tcpvs.table.operations import Table
from tests.support.client import get
from tests.support.lab import Lab
from tests.support.limits import default_maxclients, soft_nofile
from tests.support.procs import (
    ROOT,
    Backend,
    Daemon,
    free_port,
    start_backend,
    start_daemon,
    stop,
)

CONNECTIONS = 40


def fresh_gets(port: int) -> list[tuple[str, str]]:
    """(path, X-Backend) of requests each on its own connection, /a/ and /b/ alternating."""
    answers = []
    for i in range(CONNECTIONS):
        path = f"/{'ab'[i % 2]}/{i}"
        status, headers, _ = get(port, path)
        assert status == 200, f"GET {path}: {status}"
        answers.append((path, headers["X-Backend"]))
    return answers


def listing(d: Daemon, *args: str) -> dict:
    return json.loads(d.ok("-L", "--json", *args))


def served(d: Daemon) -> dict[int, int]:
    """Requests served so far by each worker, by pid."""
    return {w["pid"]: w["requests"] for w in listing(d)["workers"]}


def assert_both_route(d: Daemon, port: int, a: Backend, b: Backend) -> None:
    """Every request is routed by the rules (/a/ -> a, else b), and both workers served."""
    before = served(d)
    answers = fresh_gets(port)
    assert answers == [(p, a.name if p.startswith("/a/") else b.name) for p, _ in answers]
    after = served(d)
    per_worker = [after[pid] - before.get(pid, 0) for pid in after]
    assert len(per_worker) == 2 and sum(per_worker) == CONNECTIONS
    assert min(per_worker) > 0, f"one worker served everything: {per_worker}"


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, ...; None if there is no such pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def gone(pid: int) -> bool:
    fields = _stat(pid)
    return fields is None or fields[0] == "Z"


def wait_for(check, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Started with a low soft open-files limit, which tcpvsd must raise; the service is made
    with -A, -a, --add-rule and --start, which must reach both workers."""
    tmp = tmp_path_factory.mktemp("workers")
    r1, r2 = start_backend(tmp, "r1"), start_backend(tmp, "r2")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    try:
        d = start_daemon(tmp, "--workers", "2")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    lab = Lab(d, [r1, r2], tmp)
    # service `web`: /a/ -> r1, else r2
    lab.port = lab.service({"^/a/": r1, ".*": r2}, servers=[r1, r2], ident="web")
    yield lab
    lab.close()


def test_commands_reach_both_workers_and_stats_sum_them(lab):
    d = lab.daemon
    workers = listing(d)["workers"]
    assert [w["index"] for w in workers] == [0, 1]
    assert {w["pid"] for w in workers} == children(d.proc.pid)
    before = listing(d, "-i", "web")["services"][0]
    assert_both_route(d, lab.port, lab.r1, lab.r2)
    after = listing(d, "-i", "web")["services"][0]
    assert after["stats"]["requests"] - before["stats"]["requests"] == CONNECTIONS
    assert after["stats"]["total_conns"] - before["stats"]["total_conns"] == CONNECTIONS
    assert [
        s1["stats"]["requests"] - s0["stats"]["requests"]
        for s0, s1 in zip(before["servers"], after["servers"], strict=True)
    ] == [CONNECTIONS // 2, CONNECTIONS // 2]
    total, (r1, r2) = after["stats"]["requests"], (s["stats"] for s in after["servers"])
    text = d.ok("-L", "-n", "--stats", "-i", "web")
    assert f"/ {after['stats']['total_conns']} total, requests {total}," in text
    assert f"{lab.r1.address} 1  # up: connections 0 active / {r1['total_conns']} total," in text
    assert f"requests {r2['requests']}, bytes in {r2['bytes_in']} /" in text
    # Without --json nothing shows that there are workers: KTCPVS's layout, as ever.
    assert d.ok("-L", "-n", "-i", "web") == (
        "Virtual web {\n"
        f"    listen = 127.0.0.1:{lab.port}\n"
        "    scheduler = http\n"
        f"    startservers = 8\n    maxclients = {default_maxclients(workers[0]['pid'])}\n"
        "    minspareservers = 6\n    maxspareservers = 18\n"
        f"    server = {lab.r1.address} 1\n    server = {lab.r2.address} 1\n"
        f'    rule = pattern "^/a/" use server {lab.r1.address}\n'
        f'    rule = pattern ".*" use server {lab.r2.address}\n'
        "}\n"
    )


def test_open_files_limit_is_raised_in_the_master_and_its_workers(lab):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard <= 1024:
        pytest.skip("the hard open-files limit is not above the soft 1024 the lab starts with")
    pids = [lab.daemon.proc.pid, *children(lab.daemon.proc.pid)]
    assert len(pids) == 3
    assert [soft_nofile(pid) for pid in pids] == [hard] * 3


def test_refused_commands_change_no_worker(lab, tmp_path):
    d = lab.daemon
    before = d.ok("-L", "-n")
    bad = tmp_path / "bad.conf"  # would send everything to r1, but its line 5 is wrong
    bad.write_text(
        f"Virtual web {{\n    listen = 127.0.0.1:{lab.port}\n    server = {lab.r1.address}\n"
        f'    rule = pattern ".*" use server {lab.r1.address}\n    nonsense = 1\n}}\n'
    )
    refused = {
        ("-a", "-i", "web", "-r", lab.r1.address): "Destination already exists",
        ("--add-rule", "-i", "web", "-p", "^/b/", "-r", "127.0.0.1:1"): "No such destination",
        ("-E", "-i", "web", "-s", "nosuchscheduler"): "Scheduler not found",
        ("-E", "-i", "web", "-l", lab.r1.address): "Address already in use",
        ("-f", str(bad)): f"{bad}:5:",
        # A second service on the address of the running one (SO_REUSEPORT alone would let
        # both listen and split the connections), or on a wildcard that covers it.
        ("-A", "-i", "twin", "-l", f"127.0.0.1:{lab.port}"): (
            f"service twin listens on 127.0.0.1:{lab.port} like service web"
        ),
        ("-A", "-i", "twin", "-l", f"0.0.0.0:{lab.port}"): (
            f"service twin listens on 0.0.0.0:{lab.port} like service web on 127.0.0.1"
        ),
    }
    for args, message in refused.items():
        done = d.adm(*args)
        assert done.returncode == 1 and message.lower() in done.stderr.lower(), args
    assert d.ok("-L", "-n") == before
    assert_both_route(d, lab.port, lab.r1, lab.r2)


def test_edit_listen_rebinds_in_both_workers(lab):
    old, new = lab.port, free_port()
    lab.daemon.ok("-E", "-i", "web", "-l", f"127.0.0.1:{new}")
    lab.port = new
    for _ in range(10):  # a worker still listening there would accept some of these
        with pytest.raises(ConnectionRefusedError):
            get(old, "/a/old")
    assert_both_route(lab.daemon, new, lab.r1, lab.r2)


def test_a_killed_worker_is_replaced_and_serves_the_current_table(lab):
    d = lab.daemon
    lab.daemon.ok("-e", "-i", "web", "-r", lab.r2.address, "-w", "3")  # a change after the start
    pids = set(served(d))
    victim = listing(d)["workers"][0]["pid"]
    assert victim in children(d.proc.pid)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(now := served(d)) == 2 and victim not in now, "no new worker 0")
    workers = listing(d)["workers"]
    (replacement,) = {w["pid"] for w in workers} - pids
    assert workers[0]["pid"] == replacement and replacement in children(d.proc.pid)
    assert_both_route(d, lab.port, lab.r1, lab.r2)
    assert f"server = {lab.r2.address} 3" in d.ok("-L", "-n")


def _config(port: int, a: Backend, b: Backend) -> str:
    return (
        f"Virtual web {{\n    listen = 127.0.0.1:{port}\n"
        f"    server = {a.address} 1\n    server = {b.address} 1\n"
        f'    rule = pattern "^/a/" use server {a.address}\n'
        f'    rule = pattern ".*" use server {b.address}\n}}\n'
    )


def test_sighup_reloads_both_workers_and_sigterm_leaves_no_worker(daemon, backends, tmp_path):
    r1, r2 = backends("r1", "r2")
    port, conf = free_port(), tmp_path / "tcpvs.conf"
    conf.write_text(_config(port, r1, r2))
    d = daemon("--workers", "2", "-f", str(conf))
    pids = set(served(d))
    assert len(pids) == 2 and pids == children(d.proc.pid)
    assert_both_route(d, port, r1, r2)
    conf.write_text(_config(port, r2, r1))
    os.kill(d.proc.pid, signal.SIGHUP)
    # The master answers -L only after the whole reload (it holds its lock until then).
    wait_for(lambda: f'"^/a/" use server {r2.address}' in d.ok("-L", "-n"), "no reload")
    assert_both_route(d, port, r2, r1)
    assert set(served(d)) == pids  # reloaded, not restarted
    assert stop(d.proc) == 0
    assert all(gone(pid) for pid in pids)


def test_a_bad_config_at_start_exits_1_and_leaves_no_worker(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("Virtual web {\n    listen = 127.0.0.1:1\n    nonsense = 3\n}\n")
    argv = [sys.executable, "-m", "tcpvs.daemon", "--socket", str(tmp_path / "s")]
    # A worker left running would hold stderr open: run() would wait for it and time out.
    done = subprocess.run(
        [*argv, "--workers", "2", "-f", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"{conf}:3:" in done.stderr


def test_workers_exit_when_the_master_dies(daemon):
    d = daemon("--workers", "2")
    pids = children(d.proc.pid)
    assert len(pids) == 2
    stop(d.proc, signal.SIGKILL)
    wait_for(lambda: all(gone(pid) for pid in pids), "workers outlived their master")


def test_one_worker_is_the_single_process_daemon(daemon):
    d = daemon()
    assert children(d.proc.pid) == set()
    assert "workers" not in listing(d)


async def test_a_reuse_port_switch_refuses_two_services_on_one_address():
    # SO_REUSEPORT would let both listen, so the table refuses the second service itself.
    switch = Switch(reuse_port=True)
    port, other = free_port(), free_port()
    await switch.add_service("a", listen=f"127.0.0.1:{port}")
    with pytest.raises(TableError, match="service b listens on 0.0.0.0:.* like service a"):
        await switch.add_service("b", listen=f"0.0.0.0:{port}")
    await switch.add_service("b", listen=f"127.0.0.1:{other}")
    await switch.add_service("c", listen=f"[::1]:{port}")  # another family: no conflict
    try:
        await switch.start()
        with pytest.raises(TableError, match="service b listens on 127.0.0.1:.* like service a"):
            await switch.edit_service("b", listen=f"127.0.0.1:{port}")
        assert switch.table.service("b").listen.port == other
        assert all(s["running"] for s in switch.snapshot()["services"])
    finally:
        await switch.close()


class FakeWorker:
    """What the master sees of a worker: an index, a pid and answers to request lines."""

    def __init__(self, index: int, answer: dict | None, snap: dict | None = None) -> None:
        self.index, self.pid, self.answer, self.snap = index, 100 + index, answer, snap

    async def ask(self, line: bytes) -> dict | None:
        if json.loads(line)["op"] == "snapshot" and self.answer is not None:
            return {"ok": True, "result": self.snap or {"version": "x", "services": []}}
        return self.answer


def _server(requests: int) -> dict:
    return {"ok": True, "result": {"host": "10.0.0.1", "port": 80, "stats": {"r": requests}}}


async def test_the_master_answers_with_worker_0_and_logs_workers_that_disagree(caplog):
    master = Master(2, WorkerOptions(1.0))
    master.workers = [FakeWorker(0, _server(1)), FakeWorker(1, _server(2))]
    args = {"ident": "web", "server": "10.0.0.1:80"}
    assert await master.handle("edit_server", args) == _server(1)["result"]
    assert "DISAGREE" not in caplog.text  # counters differ from worker to worker
    master.workers[1].answer = {"ok": False, "error": "No such service"}
    assert await master.handle("edit_server", args) == _server(1)["result"]
    assert "WORKERS DISAGREE on edit_server" in caplog.text
    master.workers[0].answer = None  # gone: the next one answers
    with pytest.raises(ControlError, match="^No such service$"):
        await master.handle("edit_server", args)
    master.workers[1].answer = None
    with pytest.raises(ControlError, match="no tcpvsd worker is running"):
        await master.handle("edit_server", args)


async def test_the_master_snapshot_sums_the_workers_and_names_them():
    table = Table()
    table.add_service("web", listen="127.0.0.1:8080")
    table.services["web"].stats.requests = 3
    one = snapshot(table)
    table.services["web"].stats.requests = 4
    master = Master(2, WorkerOptions(1.0))
    master.workers = [FakeWorker(0, {}, one), FakeWorker(1, {}, snapshot(table))]
    merged = await master.handle("snapshot", {})
    assert merged["services"][0]["stats"]["requests"] == 7
    assert [(w["index"], w["pid"], w["requests"]) for w in merged["workers"]] == [
        (0, 100, 3),
        (1, 101, 4),
    ]
