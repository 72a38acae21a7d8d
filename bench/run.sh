#!/bin/sh
# The benchmark in one command: tcpvs against HAProxy and nginx (see docs/benchmarks.md).
# tcpvs is this tree's, built into .venv by scripts/setup (run first when .venv is missing).
set -e
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup
exec .venv/bin/python -m bench "$@"
