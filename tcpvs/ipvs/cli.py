"""pyipvsadm: ipvsadm 1.31's command line over tcpvs.ipvs, plus --json and --apply.

main() is re-entrant: no state survives a call, and output goes to whatever sys.stdout and
sys.stderr are at call time, so one Python process can run many command lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from tcpvs.ipvs import apply, jsonout, listing
from tcpvs.ipvs.api import IPVS
from tcpvs.ipvs.conntab import CONN_PROC_FILE, parse_line
from tcpvs.ipvs.errors import IPVSError, IPVSUnavailable
from tcpvs.ipvs.model import Info, Service, ServiceState
from tcpvs.ipvs.options import (
    CMD_ADD,
    CMD_ADDDEST,
    CMD_APPLY,
    CMD_DEL,
    CMD_DELDEST,
    CMD_EDIT,
    CMD_EDITDEST,
    CMD_FLUSH,
    CMD_LIST,
    CMD_RESTORE,
    CMD_SAVE,
    CMD_STARTDAEMON,
    CMD_STOPDAEMON,
    CMD_TIMEOUT,
    CMD_ZERO,
    FMT_RULE,
    OPTC_CONNECTION,
    OPTC_DAEMON,
    OPTC_DRY_RUN,
    OPTC_JSON,
    OPTC_REMOVE_DOWN,
    OPTC_SERVICE,
    OPTC_TIMEOUT,
    OPTC_WATCH,
    OPTIONS,
    VERSION_TEXT,
    Command,
    Exit,
    LineFailed,
    parse,
    restore_tokens,
    tryhelp,
    usage,
)
from tcpvs.ipvs.popt import Context, PoptError

MINIMUM_IPVS_VERSION = 0x010104


def _modprobe() -> bool:
    """ipvsadm loads ip_vs itself when IPVS cannot be reached; quietly, as a best effort."""
    try:
        done = subprocess.run(
            ["/sbin/modprobe", "--", "ip_vs"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class _Session:
    """One invocation: the kernel handle (opened once) and the streams of this call."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.out: TextIO = sys.stdout
        self.err: TextIO = sys.stderr
        self.stdin: TextIO = sys.stdin
        self.ipvs: IPVS | None = None
        self.info: Info | None = None

    def open(self) -> IPVS:
        """ipvs_init: connect, read the info, load ip_vs once if needed, warn if too old."""
        for attempt in (0, 1):
            try:
                self.ipvs = IPVS()
                self.info = self.ipvs.info()
                break
            except IPVSError as exc:
                if self.ipvs is not None:
                    self.ipvs.close()
                    self.ipvs = None
                if attempt or not _modprobe():
                    raise Exit(2, IPVSUnavailable(exc.errno).message + "\n") from None
        assert self.ipvs is not None and self.info is not None
        if self.info.version < MINIMUM_IPVS_VERSION:
            self.err.write(
                "Warning: IPVS version mismatch: \n"
                f"  Kernel compiled with IPVS version {self.info.version_text}\n"
                "  ipvsadm v1.31  requires minimum IPVS version 1.1.4\n\n"
            )
        return self.ipvs

    def close(self) -> None:
        if self.ipvs is not None:
            self.ipvs.close()

    @property
    def kernel(self) -> IPVS:
        assert self.ipvs is not None
        return self.ipvs

    # ---- commands -------------------------------------------------------------------------
    def process(self, argv: list[str], reading_stdin: bool) -> int:
        """process_options: 0, or -1 when the command failed (its message is printed)."""
        try:
            ce = parse(argv)
        except LineFailed as exc:
            self.err.write(f"{exc}\n")
            return -1
        if ce.cmd == CMD_LIST:
            self.list(ce)
            return 0
        if ce.cmd == CMD_RESTORE:
            if reading_stdin:
                raise tryhelp(argv[0])
            return self.restore()
        if ce.cmd == CMD_SAVE:
            self.list_all(ce.fmt | FMT_RULE, ce.has(OPTC_JSON))
            return 0
        if ce.cmd == CMD_APPLY:
            return self.apply(ce)
        try:
            self._change(ce)
        except IPVSError as exc:
            self.err.write(f"{exc.message}\n")
            return -1
        return 0

    def _change(self, ce: Command) -> None:
        k = self.kernel
        actions: dict[int, Callable[[], None]] = {
            CMD_FLUSH: k.flush,
            CMD_ADD: lambda: k.add_service(ce.service()),
            CMD_EDIT: lambda: k.edit_service(ce.service()),
            CMD_DEL: lambda: k.delete_service(ce.service()),
            CMD_ZERO: lambda: k.zero(ce.service() if ce.has_service_key() else None),
            CMD_ADDDEST: lambda: k.add_dest(ce.service(), ce.real_server()),
            CMD_EDITDEST: lambda: k.edit_dest(ce.service(), ce.real_server()),
            CMD_DELDEST: lambda: k.delete_dest(ce.service(), ce.real_server()),
            CMD_TIMEOUT: lambda: k.set_timeouts(ce.timeouts),
            CMD_STARTDAEMON: lambda: k.start_daemon(ce.daemon),
            CMD_STOPDAEMON: lambda: k.stop_daemon(ce.daemon),
        }
        actions[ce.cmd]()

    def restore(self) -> int:
        result = 0
        for line in self.stdin:
            tokens = restore_tokens(line.rstrip("\n"))
            if tokens:
                result = self.process([self.prog, *tokens], reading_stdin=True)
        return result

    def list(self, ce: Command) -> None:
        as_json = ce.has(OPTC_JSON)
        if ce.has(OPTC_CONNECTION):
            self.list_conn(ce.fmt, as_json)
        elif ce.has(OPTC_SERVICE):
            self.list_service(ce, as_json)
        elif ce.has(OPTC_TIMEOUT):
            try:
                t = self.kernel.timeouts()
            except IPVSError:
                raise Exit(1) from None
            self.out.write(
                jsonout.dumps(jsonout.timeouts_doc(t)) if as_json else listing.timeouts_text(t)
            )
        elif ce.has(OPTC_DAEMON):
            try:
                daemons = self.kernel.daemons()
            except IPVSError:
                raise Exit(1) from None
            self.out.write(
                jsonout.dumps(jsonout.daemons_doc(daemons))
                if as_json
                else listing.daemons_text(daemons)
            )
        else:
            self.list_all(ce.fmt, as_json)

    def _states(self, services: Iterable[Service]) -> Sequence[ServiceState]:
        try:
            return [ServiceState(s, tuple(self.kernel.dests(s))) for s in services]
        except IPVSError as exc:
            raise Exit(1, exc.message + "\n") from None

    def list_all(self, fmt: int, as_json: bool) -> None:
        if not as_json and not fmt & FMT_RULE:
            info = self.info
            assert info is not None
            # Printed before the dump, as ipvsadm does (it stays even if the dump fails).
            self.out.write(
                f"IP Virtual Server version {info.version_text} (size={info.conn_tab_size})\n"
            )
        try:
            services = self.kernel.services()
        except IPVSError as exc:
            raise Exit(1, exc.message + "\n") from None
        states = self._states(services)
        if as_json:
            info = None if fmt & FMT_RULE else self.info
            self.out.write(jsonout.dumps(jsonout.table_doc(info, states, fmt)))
        else:
            self.out.write(listing.list_all(None, states, fmt))

    def list_service(self, ce: Command, as_json: bool) -> None:
        try:
            svc = self.kernel.service(ce.service())
        except IPVSError as exc:
            raise Exit(1, exc.message + "\n") from None
        (state,) = self._states([svc])
        self.out.write(
            jsonout.dumps(jsonout.table_doc(None, [state], ce.fmt))
            if as_json
            else listing.list_service(state, ce.fmt)
        )

    def list_conn(self, fmt: int, as_json: bool) -> None:
        try:
            with open(CONN_PROC_FILE) as fh:
                first = fh.readline()
                rest = fh.read().splitlines()
        except OSError:
            raise Exit(1, f"cannot open file {CONN_PROC_FILE}\n") from None
        if not first:
            raise Exit(1, f"unexpected input from {CONN_PROC_FILE}\n")
        conns = [c for c in map(parse_line, rest) if c is not None]
        self.out.write(
            jsonout.dumps(jsonout.connections_doc(conns))
            if as_json
            else listing.connections_text(conns, fmt)
        )

    def apply(self, ce: Command) -> int:
        name = ce.apply_file
        try:
            if name == "-":
                text = self.stdin.read()
            else:
                with open(name) as fh:
                    text = fh.read()
        except OSError as exc:
            raise Exit(2, f"{name}: {exc.strerror}\n") from None
        try:
            desired = apply.parse_desired(text, name, self.prog)
        except apply.DesiredStateError as exc:
            raise Exit(2, f"{exc}\n") from None
        if ce.has(OPTC_WATCH):
            # The checks bring the HTTP parser and asyncio's streams: only --watch pays.
            from tcpvs.ipvs.watch import watch

            return watch(
                self.kernel,
                name,
                desired,
                prog=self.prog,
                err=self.err,
                drain_timeout=ce.drain_timeout,
                remove_down=ce.has(OPTC_REMOVE_DOWN),
            )
        try:
            current = self._states(self.kernel.services())
        except IPVSError as exc:
            raise Exit(1, exc.message + "\n") from None
        # Without --watch the checks are read (a file with a wrong one is refused) but not
        # run: every server gets its file weight.
        ops = apply.plan(current, desired.services)
        if ce.has(OPTC_JSON):
            self.out.write(
                jsonout.dumps(
                    {
                        "dry_run": ce.has(OPTC_DRY_RUN),
                        "plan": [{"op": op.kind, "command": op.command()} for op in ops],
                    }
                )
            )
        elif ce.has(OPTC_DRY_RUN):
            self.out.write("".join(op.command() + "\n" for op in ops))
        if ce.has(OPTC_DRY_RUN):
            return 0
        try:
            apply.execute(self.kernel, ops, ce.drain_timeout)
        except IPVSError as exc:
            self.err.write(f"{exc.message}\n")
            return -1
        return 0


def _help_or_version(argv: list[str]) -> Exit | None:
    """-h and -v answer without a kernel (ipvsadm insists on IPVS even for those)."""
    try:
        first = Context(argv, OPTIONS).next_opt()
    except PoptError:
        return None
    if first is not None and first[0] == "h":
        return Exit(0, out=usage(argv[0]))
    if first is not None and first[0] == "v":
        return Exit(0, out=VERSION_TEXT)
    return None


def _run(session: _Session, argv: list[str]) -> int:
    early = _help_or_version(argv)
    if early is not None:
        raise early
    session.open()
    if len(argv) == 1:
        session.list_all(0, False)
        return 0
    return session.process(argv, reading_stdin=False) & 0xFF


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    """Run one pyipvsadm command line; returns the exit status (ipvsadm's)."""
    if argv is None:
        argv = sys.argv[1:]
        prog = prog or os.path.basename(sys.argv[0]) or "pyipvsadm"
    session = _Session(prog or "pyipvsadm")
    try:
        return _run(session, [session.prog, *argv])
    except Exit as exc:
        session.out.write(exc.out)
        session.err.write(exc.err)
        return exc.status & 0xFF
    finally:
        session.close()
        session.out.flush()


if __name__ == "__main__":
    sys.exit(main())
