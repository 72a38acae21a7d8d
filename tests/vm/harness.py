"""The host side of the IPVS test VM: boots qemu on Debian's kernel with the host's / as the
guest's root (read-only 9p + tmpfs overlay) and runs commands in it through the guest agent."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .initramfs import ensure_initramfs, find_busybox
from .kernel import Kernel, VmUnavailable, ensure_kernel

__all__ = [
    "GuestCommandError",
    "GuestProcess",
    "GuestResult",
    "GuestTimeout",
    "Vm",
    "VmError",
    "VmUnavailable",
    "boot_vm",
    "check_host",
]

REPO = Path(__file__).resolve().parents[2]
AGENT = Path(__file__).with_name("guest_agent.py")
KERNEL_ARGS = (
    "console=ttyS0 quiet panic=-1 oops=panic cryptomgr.notests=1 tsc=reliable no_timer_check"
)
ANSWER_GRACE = 30.0  # seconds the host waits beyond a command's own timeout before giving up
PR_SET_PDEATHSIG = 1
CONSOLE_TAIL = 60  # lines of guest console shown in errors
Command = str | list[str]


class VmError(Exception):
    """The VM died, hung or never came up; the message ends with the guest console's tail."""


class GuestCommandError(AssertionError):
    """A command run with check=True exited non-zero."""


@dataclass(frozen=True)
class GuestResult:
    args: Command
    returncode: int
    stdout: str
    stderr: str
    elapsed: float  # seconds, measured inside the guest

    def check(self) -> GuestResult:
        if self.returncode:
            raise GuestCommandError(
                _describe(self.args, f"exited {self.returncode}", self.stdout, self.stderr)
            )
        return self


class GuestTimeout(subprocess.TimeoutExpired):
    """A guest command outlived its timeout; it was killed (with its process group)."""

    def __init__(self, cmd: Command, timeout: float, stdout: str, stderr: str, console: str):
        super().__init__(cmd, timeout, stdout, stderr)
        self.console = console

    def __str__(self) -> str:
        return (
            _describe(
                self.cmd, f"timed out after {self.timeout} s", self.stdout or "", self.stderr or ""
            )
            + f"\n--- guest console (tail) ---\n{self.console}"
        )


def _describe(args: Command, what: str, stdout: str, stderr: str) -> str:
    shown = args if isinstance(args, str) else shlex.join(args)
    return f"guest command {shown!r} {what}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}"


def _argv(cmd: Command, netns: str | None) -> list[str]:
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def check_host() -> None:
    """Raise VmUnavailable with the reason this machine cannot run the VM."""
    if os.environ.get("TCPVS_VM", "1") == "0":
        raise VmUnavailable("disabled by TCPVS_VM=0")
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise VmUnavailable("needs an x86_64 Linux host")
    if os.geteuid() != 0:
        raise VmUnavailable("needs root: the guest reads the host's / over 9p as this user")
    for tool, package in (
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("modprobe", "kmod"),
        ("cpio", "cpio"),
        ("ip", "iproute2"),
        ("apt-get", "apt"),
    ):
        if not shutil.which(tool):
            raise VmUnavailable(
                f"{tool} not found (apt-get install {package}, or run .ci/vm-deps.sh)"
            )
    find_busybox()


def _die_with_parent() -> None:
    """In the child before exec: a killed test run (SIGKILL, a closed pipe) takes qemu along
    instead of leaving an orphan VM spinning."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _accel() -> tuple[str, list[str]]:
    """KVM only when the CPU really offers it: the paravirtual /dev/kvm here cannot boot."""
    wanted = os.environ.get("TCPVS_VM_ACCEL")
    if wanted is None:
        flags = Path("/proc/cpuinfo").read_text().split()
        wanted = (
            "kvm" if os.path.exists("/dev/kvm") and ("vmx" in flags or "svm" in flags) else "tcg"
        )
    return wanted, ["-cpu", "host" if wanted == "kvm" else "max"]


class GuestProcess:
    """A background process in the guest (a server, a daemon); its output goes to two files
    in the shared folder, readable from the host at any time."""

    def __init__(self, vm: Vm, pid: int, args: Command, stdout: Path, stderr: Path):
        self.vm, self.pid, self.args = vm, pid, args
        self.stdout_path, self.stderr_path = stdout, stderr

    def poll(self) -> int | None:
        return self.vm._call({"op": "poll", "pid": self.pid}, 10)["rc"]

    def wait(self, timeout: float = 60) -> int:
        reply = self.vm._call({"op": "wait", "pid": self.pid, "timeout": timeout}, timeout)
        if reply["timed_out"]:
            raise GuestTimeout(self.args, timeout, *self.output(), self.vm.console_tail())
        return reply["rc"]

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signal its process group, wait (SIGKILL after timeout); returns the exit status."""
        return self.vm._call(
            {"op": "kill", "pid": self.pid, "signal": int(sig), "timeout": timeout}, timeout + 5
        )["rc"]

    def output(self) -> tuple[str, str]:
        return (
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )

    def wait_output(self, text: str, timeout: float = 60) -> str:
        """Wait until its stdout contains text (e.g. a "ready" line); returns the stdout."""
        deadline = time.monotonic() + timeout
        while text not in (out := self.output()[0]):
            if time.monotonic() > deadline or self.poll() is not None:
                raise VmError(
                    f"{self.args!r} never printed {text!r}\n--- stdout ---\n{out}"
                    f"--- stderr ---\n{self.output()[1]}"
                )
            time.sleep(0.1)
        return out

    def __enter__(self) -> GuestProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.vm.dead:
            self.kill()


class Vm:
    """One booted guest. Use boot_vm() (or the ipvs_vm fixture) rather than this directly."""

    def __init__(self, kernel: Kernel, workdir: Path, memory_mb: int = 512):
        self.kernel, self.workdir, self.memory_mb = kernel, workdir, memory_mb
        self.shared = workdir / "shared"  # same path in the guest, read-write both ways
        self.console_path = workdir / "console.log"
        self.accel = ""
        self.boot_seconds = 0.0  # host wall time from qemu start to agent ready
        self.guest_uptime = 0.0  # guest's /proc/uptime when the agent started
        self.dead = False
        self.answer_grace = ANSWER_GRACE
        self._qemu: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 0
        self._spawned = 0
        self._lock = threading.Lock()
        self.python_exe = sys.executable

    # --- life cycle -----------------------------------------------------------------------

    def start(self, boot_timeout: float = 120) -> None:
        initrd = ensure_initramfs(self.kernel)
        self.shared.mkdir(parents=True, exist_ok=True)
        self._write_boot_config()
        # AF_UNIX paths are limited to 108 bytes: the socket lives in a short private folder
        sockdir = Path(tempfile.mkdtemp(prefix="tcpvs-vm-"))
        sock_path = sockdir / "agent"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(sock_path))
        listener.listen(1)
        self.accel, cpu = _accel()
        started = time.monotonic()
        try:
            with open(self.workdir / "qemu.log", "wb") as log:
                self._qemu = subprocess.Popen(
                    self._qemu_argv(initrd, sock_path, cpu),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            listener.settimeout(30)
            try:
                self._sock, _ = listener.accept()  # qemu connects as soon as it starts
            except TimeoutError:
                self._fail("qemu never connected the agent port")
        finally:
            listener.close()
            shutil.rmtree(sockdir, ignore_errors=True)
        hello = self._read_reply(boot_timeout, "the guest agent to start")
        self.boot_seconds = time.monotonic() - started
        self.guest_uptime = hello["uptime"]

    def _write_boot_config(self) -> None:
        pydir = str(Path(self.python_exe).parent)  # before any pyenv shim: shims cost seconds
        path = f"{pydir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        boot_env = {
            "SHARED": str(self.shared),
            "MODDIR": str(self.kernel.moddir),
            "PYTHON": self.python_exe,
            "AGENT": str(AGENT),
            "GUEST_PATH": path,
        }
        (self.shared / "boot.env").write_text(
            "".join(f"{k}={shlex.quote(v)}\n" for k, v in boot_env.items())
        )
        env = {
            "PATH": path,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
        }
        (self.shared / "boot.json").write_text(json.dumps({"env": env, "cwd": str(REPO)}))

    def _qemu_argv(self, initrd: Path, sock_path: Path, cpu: list[str]) -> list[str]:
        p9 = "security_model=none,multidevs=remap"
        argv = [
            "qemu-system-x86_64",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-machine",
            f"pc,accel={self.accel}",
            *cpu,
            "-smp",
            "1",
            "-m",
            str(self.memory_mb),
            "-nic",
            "none",
            "-kernel",
            str(self.kernel.image),
            "-initrd",
            str(initrd),
            "-append",
            KERNEL_ARGS,
            "-chardev",
            f"file,id=console,path={self.console_path}",
            "-serial",
            "chardev:console",
            "-fsdev",
            f"local,id=hostroot,path=/,readonly=on,{p9}",
            "-device",
            "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-fsdev",
            f"local,id=shared,path={self.shared},{p9}",
            "-device",
            "virtio-9p-pci,fsdev=shared,mount_tag=shared",
            "-device",
            "virtio-serial-pci",
            "-chardev",
            f"socket,id=agent,path={sock_path}",
            "-device",
            "virtserialport,chardev=agent,name=tcpvs.agent",
        ]
        qboot = Path("/usr/share/qemu/qboot.rom")  # far faster than SeaBIOS
        return argv + (["-bios", str(qboot)] if qboot.exists() else [])

    @property
    def qemu_pid(self) -> int | None:
        return self._qemu.pid if self._qemu else None

    def close(self) -> None:
        """Kill qemu by its PID (the guest holds nothing worth a clean shutdown)."""
        self.dead = True
        if self._sock:
            self._sock.close()
        if self._qemu and self._qemu.poll() is None:
            self._qemu.kill()
            self._qemu.wait()

    def __enter__(self) -> Vm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- diagnostics ----------------------------------------------------------------------

    def console(self) -> str:
        """Everything the guest printed on its console (kernel, init, agent errors)."""
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_tail(self, lines: int = CONSOLE_TAIL) -> str:
        return "\n".join(self.console().splitlines()[-lines:])

    def _fail(self, what: str) -> None:
        self.dead = True
        qemu = ""
        if self._qemu and self._qemu.poll() is not None:
            log = (self.workdir / "qemu.log").read_text(errors="replace")
            qemu = f" (qemu exited {self._qemu.returncode}{': ' + log if log else ''})"
        raise VmError(f"{what}{qemu}\n--- guest console (tail) ---\n{self.console_tail()}")

    # --- the agent channel ----------------------------------------------------------------

    def _read_reply(self, timeout: float, waiting_for: str) -> dict[str, Any]:
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(
                    f"no answer from the guest after {timeout:.0f} s waiting for {waiting_for}"
                )
            self._sock.settimeout(min(left, 1.0))
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                if self._qemu and self._qemu.poll() is not None:
                    self._fail(f"the VM died while waiting for {waiting_for}")
                continue
            if not chunk:
                self._fail(f"the VM closed the agent channel while waiting for {waiting_for}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self._lock:
            if self.dead:
                raise VmError("the VM is down (an earlier failure is above)")
            assert self._sock is not None
            self._next_id += 1
            request["id"] = self._next_id
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            what = f"{request['op']} {request.get('argv') or request.get('pid')}"
            reply = self._read_reply(timeout + self.answer_grace, what)
        if "error" in reply:
            raise VmError(f"guest agent failed on {request}:\n{reply['error']}")
        return reply

    # --- the API the tests use ------------------------------------------------------------

    def run(
        self,
        cmd: Command,
        *,
        netns: str | None = None,
        timeout: float = 60,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        check: bool = False,
    ) -> GuestResult:
        """Run a command (argv list, or a string for sh -c) in the guest and wait for it."""
        request = {
            "op": "run",
            "argv": _argv(cmd, netns),
            "timeout": timeout,
            "input": input,
            "env": env,
            "cwd": str(cwd) if cwd else None,
        }
        reply = self._call(request, timeout)
        if reply["timed_out"]:
            raise GuestTimeout(cmd, timeout, reply["stdout"], reply["stderr"], self.console_tail())
        result = GuestResult(cmd, reply["rc"], reply["stdout"], reply["stderr"], reply["elapsed"])
        return result.check() if check else result

    def python(self, code: str | Path, *args: str, **kwargs: Any) -> GuestResult:
        """Run Python code (a string for -c, or a Path to a script) with the host's own
        interpreter, the project checkout on PYTHONPATH; keywords as for run()."""
        source = [str(code)] if isinstance(code, Path) else ["-c", code]
        return self.run([self.python_exe, *source, *map(str, args)], **kwargs)

    def spawn(
        self,
        cmd: Command,
        *,
        netns: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> GuestProcess:
        """Start a command in the background; end it with .kill() (or a with block)."""
        self._spawned += 1
        out, err = (self.shared / f"spawn-{self._spawned}.{s}" for s in ("out", "err"))
        reply = self._call(
            {
                "op": "spawn",
                "argv": _argv(cmd, netns),
                "env": env,
                "cwd": str(cwd) if cwd else None,
                "stdout": str(out),
                "stderr": str(err),
            },
            30,
        )
        return GuestProcess(self, reply["pid"], cmd, out, err)


def boot_vm(workdir: Path, memory_mb: int = 512) -> Vm:
    """Check the host, fetch the kernel (cached), boot; VmUnavailable when it cannot be had."""
    check_host()
    vm = Vm(ensure_kernel(), workdir, memory_mb)
    try:
        vm.start()
    except BaseException:
        vm.close()
        raise
    return vm
