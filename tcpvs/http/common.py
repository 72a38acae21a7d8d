"""What the pure-Python HTTP code and its Cython twin share: body framing constants, HttpError,
the byte classes of RFC 9110/9112 (one flag table both scan with) and the limits.
"""

from __future__ import annotations

from tcpvs.errors import TcpvsError

BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE = 0, 1, 2, 3

MAX_CONTENT_LENGTH = 2**63 - 1
MAX_CHUNK_SIZE_DIGITS = 16
# A chunk-size line (size and extensions) longer than this is refused: nobody needs more, and
# without a bound a client could stream extensions forever.
MAX_CHUNK_LINE = 4096
# Transfer codings we know; any other one in a request is answered 501 (RFC 9112 6.1).
# "identity" is gone from RFC 9112 and was a classic smuggling vector, so it is unknown here.
CODINGS = (b"chunked", b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress")

DIGIT = b"0123456789"
HEXDIG = DIGIT + b"abcdefABCDEF"
ALPHA = bytes(range(0x41, 0x5B)) + bytes(range(0x61, 0x7B))
TCHAR = b"!#$%&'*+-.^_`|~" + DIGIT + ALPHA
VCHAR = bytes(range(0x21, 0x7F))
OBS_TEXT = bytes(range(0x80, 0x100))
FIELD_CHAR = b"\t " + VCHAR + OBS_TEXT  # a field value (and a status line's reason phrase)
TARGET_CHAR = VCHAR + OBS_TEXT  # a request-target: anything visible, no space, no control
HOST_CHAR = ALPHA + DIGIT + b"-._~%!$&'()*+,;=:[]"  # reg-name, IP literals and the port
QDTEXT = b"\t !" + bytes(range(0x23, 0x5C)) + bytes(range(0x5D, 0x7F)) + OBS_TEXT

# One byte of flags per byte value.
C_TCHAR, C_FIELD, C_TARGET, C_HOST, C_HEX, C_QDTEXT = 1, 2, 4, 8, 16, 32
CLASSES: bytes = bytes(
    sum(
        flag
        for flag, members in (
            (C_TCHAR, TCHAR),
            (C_FIELD, FIELD_CHAR),
            (C_TARGET, TARGET_CHAR),
            (C_HOST, HOST_CHAR),
            (C_HEX, HEXDIG),
            (C_QDTEXT, QDTEXT),
        )
        if byte in members
    )
    for byte in range(256)
)


class HttpError(TcpvsError):
    """A message the switch refuses: `status` is what to answer, `reason` says why (for logs)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason

    def __reduce__(self) -> tuple:
        return (type(self), (self.status, self.reason))
