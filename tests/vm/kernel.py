"""Debian's amd64 kernel for the test VM: fetched with apt into a cache outside the repo,
unpacked, indexed with depmod, and its bzImage turned into a PVH-bootable vmlinux."""

from __future__ import annotations

import fcntl
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

META_PACKAGE = "linux-image-amd64"
_COMPLETE = ".complete"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_PT_INTERP, _PT_NOTE = 3, 4
_XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point qemu -kernel needs in an ELF vmlinux


class VmUnavailable(Exception):
    """The VM cannot run on this machine; the message says why (it becomes the skip reason)."""


@dataclass(frozen=True)
class Kernel:
    root: Path  # the unpacked .deb
    version: str  # uname -r of the guest, e.g. 6.1.0-56-amd64

    @property
    def moddir(self) -> Path:
        return self.root / "lib" / "modules" / self.version

    @property
    def image(self) -> Path:
        """The decompressed vmlinux if it has a PVH entry (3-4 s faster under TCG), else bzImage."""
        vmlinux = self.root / "vmlinux"
        return vmlinux if vmlinux.exists() else self.root / "boot" / f"vmlinuz-{self.version}"


def cache_dir() -> Path:
    if os.environ.get("TCPVS_VM_CACHE"):
        return Path(os.environ["TCPVS_VM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tcpvs-vm"


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise VmUnavailable(f"{argv[0]} is not installed (run .ci/vm-deps.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise VmUnavailable(f"{' '.join(argv)} took more than {timeout} s") from exc
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise VmUnavailable(f"{' '.join(argv)} failed: {' / '.join(tail)}")
    return proc.stdout


@contextmanager
def cache_lock() -> Iterator[None]:
    """Serialise changes to the cache between concurrent test runs sharing it."""
    cache = cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VmUnavailable(f"cannot create the kernel cache {cache}: {exc}") from exc
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _wanted_package() -> tuple[str, str] | None:
    """(package, version) that linux-image-amd64 pins, or None when apt cannot say."""
    try:
        info = _run(["apt-cache", "show", "--no-all-versions", META_PACKAGE])
    except VmUnavailable:
        return None
    match = re.search(r"^Depends:.*?(linux-image-[^\s,]+) \(= ([^)]+)\)", info, re.M)
    return (match.group(1), match.group(2)) if match else None


def _cached() -> list[Path]:
    """Complete unpacked kernels in the cache, newest first."""
    found = [p.parent for p in cache_dir().glob(f"*/{_COMPLETE}")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _kernel_at(root: Path) -> Kernel:
    return Kernel(root, next((root / "lib" / "modules").iterdir()).name)


def ensure_kernel() -> Kernel:
    """The kernel linux-image-amd64 depends on, fetched once; offline, the newest cached one."""
    with cache_lock():
        wanted = _wanted_package()
        if wanted is None:
            cached = _cached()
            if not cached:
                raise VmUnavailable(
                    f"apt knows no {META_PACKAGE} and {cache_dir()} holds no kernel"
                )
            return _kernel_at(cached[0])
        root = cache_dir() / f"{wanted[0]}_{wanted[1]}"
        if not (root / _COMPLETE).exists():
            _fetch(wanted[0], root)
            _prune(keep=root)
        return _kernel_at(root)


def _fetch(package: str, root: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root.parent))
    try:
        os.chmod(work, 0o755)  # apt drops to user _apt for the download when it can
        _run(["apt-get", "download", "-q", package], cwd=work)
        deb = next(work.glob("*.deb"))
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)])
        deb.unlink()
        kernel = _kernel_at(tree)
        _run(["depmod", "-b", str(tree), kernel.version])  # the .deb ships no modules.dep
        _write_vmlinux(tree / "boot" / f"vmlinuz-{kernel.version}", tree / "vmlinux")
        (tree / _COMPLETE).touch()
        shutil.rmtree(root, ignore_errors=True)
        tree.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune(keep: Path) -> None:
    """Older kernels are 400 MB each: keep only the one in use."""
    for old in cache_dir().glob("linux-image-*"):
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _segments(elf: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, offset, size) of an ELF64 little-endian file's program headers."""
    if elf[:5] != b"\x7fELF\x02":
        return
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        header = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        yield header[0], header[2], header[5]  # p_type, p_offset, p_filesz


def _has_pvh_note(elf: bytes) -> bool:
    for ptype, offset, size in _segments(elf):
        pos, end = offset, offset + size
        while ptype == _PT_NOTE and pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz]
            if ntype == _XEN_ELFNOTE_PHYS32_ENTRY and name.rstrip(b"\0") == b"Xen":
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def _write_vmlinux(bzimage: Path, out: Path) -> None:
    """Decompress the bzImage's XZ payload; keep the result only if qemu can boot it (PVH)."""
    data = bzimage.read_bytes()
    start = data.find(_XZ_MAGIC)
    if start < 0:
        return
    try:
        elf = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        return
    if _has_pvh_note(elf):
        out.write_bytes(elf)


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without an interpreter (it can run alone in an initramfs)."""
    with open(path, "rb") as f:
        head = f.read(65536)
    kinds = [ptype for ptype, _o, _s in _segments(head)]
    return bool(kinds) and _PT_INTERP not in kinds


def module_files(kernel: Kernel, names: Iterable[str]) -> list[Path]:
    """The .ko files to insmod, dependencies (and soft dependencies) first, each once."""
    order: list[Path] = []
    for name in names:
        out = _run(
            ["modprobe", "-d", str(kernel.root), "-S", kernel.version, "--show-depends", name]
        )
        for line in out.splitlines():
            if line.startswith("insmod "):
                path = Path(line.split()[1])
                if path not in order:
                    order.append(path)
    return order
