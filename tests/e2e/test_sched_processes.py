"""hhttp's placement is a property of the key and the servers, not of the process: another
interpreter, with another hash seed, places every key the same way."""

from __future__ import annotations

import json
import subprocess
import sys

from tcpvs.table.model import Rule
from tests.support.extsched import plugin_env
from tests.unit.test_sched_affinity import USERS, placements, servers


def test_hhttp_is_stable_across_processes() -> None:
    """No salted hash(): another interpreter (another hash seed) places keys the same way."""
    code = (
        "import json\n"
        "from tcpvs.table.addr import Address\n"
        "from tcpvs.table.model import RealServer, Rule\n"
        "from tcpvs.sched.base import ScheduleContext\n"
        "from tcpvs.sched.hashing import HhttpScheduler\n"
        "pool = [RealServer(Address('127.0.0.1', 9001 + i), 1) for i in range(4)]\n"
        f"rule = Rule({USERS!r}, 1, pool)\n"
        "out = {}\n"
        "for i in range(100):\n"
        "    uri = f'/users/user{i}/'.encode()\n"
        "    ctx = ScheduleContext(None, rule, rule.compiled.search(uri))\n"
        "    out[f'user{i}'] = HhttpScheduler().select(pool, ctx).address.port\n"
        "print(json.dumps(out))\n"
    )
    env = plugin_env(None)
    env["PYTHONHASHSEED"] = "12345"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    here = placements(Rule(USERS, 1, servers(1, 1, 1, 1)), [f"user{i}" for i in range(100)])
    assert json.loads(done.stdout) == {u: s.address.port for u, s in here.items()}
