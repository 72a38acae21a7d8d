"""The table refuses two services on overlapping listen addresses exactly where the kernel
would refuse the second listener: each pair is bound for real by two Switches (one service
each, so no table stands between them and the kernel), in a network namespace of their own,
where wildcard addresses and the fixed port reach nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tcpvs.table.addr import listens_overlap
from tests.support.netns import own_netns
from tests.support.procs import ROOT
from tests.unit.test_table_refusals import OVERLAPS, address

# Prints, for each (first, second) pair in argv, whether the second could not listen.
PROBE = """
import asyncio, json, sys
import tcpvs

async def refused(first, second):
    one, two = tcpvs.Switch(), tcpvs.Switch()
    await one.add_service("one", listen=first)
    await two.add_service("two", listen=second)
    await one.start()
    try:
        await two.start()
    except tcpvs.TableError as exc:
        assert "in use" in str(exc), exc
        return True
    finally:
        await one.close()
        await two.close()
    return False

async def main():
    pairs = json.loads(sys.argv[1])
    print(json.dumps([await refused(a, b) for a, b in pairs]))

asyncio.run(main())
"""


def test_the_table_refuses_what_the_kernel_refuses():
    pairs = [(first, second) for first, second, _ in OVERLAPS]
    argv = own_netns([sys.executable, "-c", PROBE, json.dumps(pairs)])
    if argv is None:
        pytest.skip("no network namespace allowed here (wildcard addresses must stay private)")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kernel = json.loads(done.stdout)
    assert kernel == [listens_overlap(address(a), address(b)) for a, b in pairs]
    assert kernel == [overlap for _, _, overlap in OVERLAPS]
