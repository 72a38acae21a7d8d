"""The test VM's initramfs: static busybox, the kernel modules in load order and guest_init.sh
as /init; built once per kernel and content, cached next to the kernel."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .kernel import Kernel, VmUnavailable, cache_lock, is_static_elf, module_files

# What the guest needs before it can mount the host (virtio, 9p, overlay) and what the tests
# exercise (IPVS with every scheduler and the SIP persistence engine, veth, bridge).
# crc32c_generic is a soft dependency of libcrc32c that insmod does not resolve by itself.
MODULES = (
    "virtio_pci",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "overlay",
    "crc32c_generic",
    "nf_conntrack",
    "ip_vs",
    *(
        f"ip_vs_{s}"
        for s in (
            "rr",
            "wrr",
            "lc",
            "wlc",
            "sed",
            "nq",
            "sh",
            "dh",
            "mh",
            "fo",
            "ovf",
            "lblc",
            "lblcr",
        )
    ),
    "ip_vs_pe_sip",
    "veth",
    "bridge",
)
INIT = Path(__file__).with_name("guest_init.sh")


def find_busybox() -> Path:
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).exists() and is_static_elf(Path(candidate)):
            return Path(candidate)
    raise VmUnavailable("no static busybox (apt-get install busybox-static)")


def ensure_initramfs(kernel: Kernel) -> Path:
    """The cpio archive for this kernel, rebuilt only when its inputs change."""
    busybox = find_busybox()
    modules = module_files(kernel, MODULES)
    digest = hashlib.sha256()
    for item in (busybox, INIT, *modules):
        digest.update(str(item).encode() + item.read_bytes())
    out = kernel.root / f"initramfs-{digest.hexdigest()[:16]}.cpio"
    with cache_lock():
        if not out.exists():
            _build(out, busybox, modules)
    return out


def _build(out: Path, busybox: Path, modules: list[Path]) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        stage = Path(tmp) / "root"
        for sub in ("bin", "proc", "sys", "dev", "lib/modules"):
            (stage / sub).mkdir(parents=True)
        shutil.copy2(busybox, stage / "bin" / "busybox")
        shutil.copy2(INIT, stage / "init")
        os.chmod(stage / "init", 0o755)
        for ko in modules:
            shutil.copy2(ko, stage / "lib" / "modules" / ko.name)
        (stage / "modules").write_text("".join(f"{ko.name}\n" for ko in modules))
        names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
        archive = Path(tmp) / "initramfs.cpio"
        with open(archive, "wb") as f:
            try:
                subprocess.run(
                    ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                    cwd=stage,
                    input="\n".join(names).encode(),
                    stdout=f,
                    check=True,
                )
            except FileNotFoundError as exc:
                raise VmUnavailable("cpio is not installed (apt-get install cpio)") from exc
        for stale in out.parent.glob("initramfs-*.cpio"):  # qemu reads it only at start
            stale.unlink()
        archive.rename(out)
