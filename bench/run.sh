#!/bin/sh
# The benchmark in one command: tcpvs against HAProxy and nginx (see docs/benchmarks.md).
cd "$(dirname "$0")/.." && exec python3 -m bench "$@"
