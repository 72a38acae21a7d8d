"""Benchmarks of tcpvs against HAProxy and nginx, side by side (run: bench/run.sh)."""
