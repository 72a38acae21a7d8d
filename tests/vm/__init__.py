"""Kernel IPVS tests inside a throw-away qemu VM (see tests/vm/README.md)."""
