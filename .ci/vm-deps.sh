#!/usr/bin/env bash
# Install what the kernel IPVS VM tests (tests/vm) need on a Debian 12 machine, as root, and
# fetch the guest kernel into its cache. Safe to run again. Without it the VM tests skip with
# the reason; a failed kernel download does not fail this script (the tests say why they skip).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "vm-deps: must run as root (apt-get, and qemu shares / with the guest)" >&2
  exit 1
fi
# qemu-system-x86 (qemu-system-data brings qboot.rom), Debian's ipvsadm (the guest's reference
# tool), a static busybox and cpio (the initramfs), kmod (depmod, modprobe), iproute2 (ip netns,
# veth, bridge), procps (pgrep), apt/dpkg (the kernel package).
packages=(qemu-system-x86 ipvsadm busybox-static kmod cpio iproute2 procps bash python3)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The kernel linux-image-amd64 depends on, unpacked into ~/.cache/tcpvs-vm (or $TCPVS_VM_CACHE)
# once; the harness would fetch it on first use anyway, this only moves the wait here.
python3 -c 'from tests.vm.kernel import ensure_kernel; print("vm-deps: kernel", ensure_kernel().version)' \
  || echo "vm-deps: warning: could not fetch the guest kernel; the VM tests will skip" >&2
