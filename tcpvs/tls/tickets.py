"""Session ticket keys: the same in every worker, rotated on a clock, old ones still read.

A TLS session ticket is the server's own state, encrypted with a key only the server knows,
that a client brings back to skip the full handshake. OpenSSL makes one random key per
SSL_CTX and never changes it: with `--workers N` each worker would have its own (a client
resumes only on the worker that issued its ticket, 1 time in N), and a key that never
changes protects every recorded session until the process ends.

So tcpvs derives the keys instead, HMAC-SHA256 of a secret that tcpvsd makes at start (and
hands its workers) and of the period's number: every worker computes the same key for the
same period with no message between them. A ticket is sealed with the current period's key
and opened with it or one of the KEEP before (then OpenSSL issues a fresh ticket), so a
ticket stays good for KEEP to KEEP + 1 periods and a key is forgotten after that. The
defaults, a period of an hour and two kept, cover OpenSSL's ticket lifetime (7,200 s).

`TicketKeys` is the arithmetic (sans-IO, a clock passed in); `install` sets OpenSSL's ticket
key callback on a context (through tcpvs.tls.openssl), which asks the process's keys.
"""

from __future__ import annotations

import ctypes
import hmac
import logging
import os
import secrets
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from tcpvs.tls import openssl

log = logging.getLogger("tcpvsd")

NAME_SIZE, AES_SIZE, HMAC_SIZE = 16, 32, 32
SECRET_SIZE = 32
DEFAULT_ROTATION = 3600.0
KEEP = 2


@dataclass(frozen=True)
class TicketKey:
    """One period's key: its name (sent in the clear in each ticket, to find the key again),
    the AES-256-CBC key and the HMAC-SHA256 key (OpenSSL's ticket format)."""

    name: bytes
    aes: bytes
    hmac: bytes


class TicketKeys:
    """The keys derived from `secret`, one per `rotation` seconds."""

    def __init__(self, secret: bytes, rotation: float = DEFAULT_ROTATION) -> None:
        if len(secret) < 16:
            raise ValueError("a ticket secret has at least 16 bytes")
        if not rotation > 0:
            raise ValueError("the rotation period must be positive")
        self.secret = secret
        self.rotation = rotation
        self._keys: dict[int, TicketKey] = {}  # period -> key, the last KEEP + 1 periods
        self._periods: dict[bytes, int] = {}  # key name -> period

    def period(self, now: float) -> int:
        return int(now // self.rotation)

    def key(self, period: int) -> TicketKey:
        key = self._keys.get(period)
        if key is None:
            material = b"".join(
                hmac.digest(self.secret, b"tcpvs ticket key %d %d" % (period, block), "sha256")
                for block in range(3)
            )
            key = TicketKey(
                material[:NAME_SIZE],
                material[NAME_SIZE : NAME_SIZE + AES_SIZE],
                material[NAME_SIZE + AES_SIZE : NAME_SIZE + AES_SIZE + HMAC_SIZE],
            )
            self._keys[period] = key
            self._periods[key.name] = period
            self._forget_before(period - KEEP)
        return key

    def sealing(self, now: float) -> TicketKey:
        """The key new tickets are encrypted with."""
        return self.key(self.period(now))

    def opening(self, name: bytes, now: float) -> tuple[TicketKey, bool] | None:
        """The key named `name` if it may still open a ticket, and whether the ticket should be
        replaced by a new one (it was sealed in an earlier period); None: a full handshake."""
        current = self.period(now)
        for period in range(current, current - KEEP - 1, -1):
            key = self.key(period)
            if key.name == name:
                return key, period != current
        return None

    def _forget_before(self, oldest: int) -> None:
        for period in [p for p in self._keys if p < oldest]:
            del self._periods[self._keys.pop(period).name]


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_SIZE)


def read_secret(path: str) -> bytes:
    """The secret in the file at `path` (all of it, raw or text: `openssl rand -base64 48`),
    for machines that must resume each other's tickets; ValueError saying why it cannot be
    one."""
    try:
        with open(path, "rb") as handle:
            secret = handle.read(4096).strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(secret) < SECRET_SIZE:
        raise ValueError(f"{path}: {len(secret)} bytes, a ticket secret needs {SECRET_SIZE}")
    if os.stat(path).st_mode & 0o077:
        log.warning("%s: readable by others than its owner: ticket keys come from it", path)
    return secret


# The keys of this process: one secret per tcpvsd (its workers are given it: `configure`).
_process_keys = TicketKeys(new_secret())
_readers: list[Callable[[], None]] = []  # told when the keys change (copies to drop)


def configure(secret: bytes, rotation: float = DEFAULT_ROTATION) -> None:
    """Use these keys from now on in this process (a worker, with its master's secret)."""
    global _process_keys
    _process_keys = TicketKeys(secret, rotation)
    for forget in _readers:
        forget()


def on_configure(forget: Callable[[], None]) -> None:
    """Have `forget` called when the process's keys change (tcpvs's TLS layer keeps a copy
    of the current ones in C)."""
    _readers.append(forget)


def process_keys() -> TicketKeys:
    return _process_keys


def _ticket_key_callback(
    ssl: int | None,
    key_name: int,  # never NULL: OpenSSL's buffers
    iv: int,
    cipher: int | None,
    mac: int | None,
    encrypt: int,
) -> int:
    # Called by OpenSSL inside a handshake; an exception must not escape into C. Returning
    # 0 means: no ticket issued (encrypt) or a full handshake (decrypt), never a failure.
    try:
        now = time.time()
        if encrypt:
            key = _process_keys.sealing(now)
            ctypes.memmove(key_name, key.name, NAME_SIZE)
            if _lib.RAND_bytes(iv, openssl.EVP_MAX_IV_LENGTH) != 1:
                return 0
            init, renew = _lib.EVP_EncryptInit_ex, False
        else:
            found = _process_keys.opening(ctypes.string_at(key_name, NAME_SIZE), now)
            if found is None:
                return 0
            key, renew = found
            init = _lib.EVP_DecryptInit_ex
        if not init(cipher, _aes_256_cbc, None, key.aes, iv):
            return 0
        if not _lib.HMAC_Init_ex(mac, key.hmac, HMAC_SIZE, _sha256, None):
            return 0
        return 2 if renew else 1
    except BaseException:  # noqa: BLE001 - see above
        return 0


if openssl.LIBRARY is not None:
    _lib = openssl.LIBRARY
    # Fetched once: OpenSSL 3 would look the algorithms up again in every call given the
    # legacy EVP_aes_256_cbc() and EVP_sha256() (about a tenth of a ticket's cost).
    _aes_256_cbc = _lib.EVP_CIPHER_fetch(None, b"AES-256-CBC", None)
    _sha256 = _lib.EVP_MD_fetch(None, b"SHA256", None)
    _callback = openssl.TICKET_KEY_CALLBACK(_ticket_key_callback)  # alive as long as we are
_installed: weakref.WeakSet[object] = weakref.WeakSet()
_warned = False


def install(context: object) -> bool:
    """Make `context` (an ssl.SSLContext) seal and open tickets with the process's keys;
    False (logged once) when OpenSSL cannot be reached, and then OpenSSL's own per-context
    key stays in use."""
    global _warned
    if context in _installed:
        return True
    try:
        pointer = openssl.ssl_ctx_pointer(context)  # type: ignore[arg-type]
        openssl.library().SSL_CTX_callback_ctrl(
            pointer,
            openssl.SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB,
            ctypes.cast(_callback, ctypes.c_void_p),
        )
    except openssl.OpenSSLUnavailable as exc:
        if not _warned:
            log.warning("TLS ticket keys are per worker and never rotated: %s", exc)
            _warned = True
        return False
    _installed.add(context)
    return True
