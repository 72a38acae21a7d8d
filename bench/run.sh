#!/bin/sh
# The benchmark in one command: tcpvs against HAProxy and nginx (see docs/benchmarks.md);
# with --tls first, tcpvs against HAProxy terminating HTTPS (bench/tls.py).
# tcpvs is measured as users get it: this tree pip-installed (not editable) into its own venv,
# build/bench-venv, whose tcpvsd and tcpvsadm come first on PATH. The harness itself runs from
# .venv (scripts/setup makes it when missing).
set -e
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup
if [ ! -x build/bench-venv/bin/python ]; then
  .venv/bin/python -m venv build/bench-venv
  build/bench-venv/bin/python -m pip install -q --upgrade pip
  build/bench-venv/bin/python -m pip install -q .
fi
# This tree as it is now (a new dependency too), even when its version number did not change.
build/bench-venv/bin/python -m pip install -q --force-reinstall --no-deps .
build/bench-venv/bin/python -m pip install -q .
# bench/run.sh --tls [OPTIONS]: the TLS bench (bench/tls.py) instead of the plain one.
module=bench
if [ "${1:-}" = "--tls" ]; then
  module=bench.tls
  shift
fi
PATH="$PWD/build/bench-venv/bin:$PATH" exec .venv/bin/python -m "$module" "$@"
