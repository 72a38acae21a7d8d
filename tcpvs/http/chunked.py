"""Chunked body scanner: finds where a chunked body ends, byte by byte if need be, refusing any
framing a strict parser would not read the same way.

The grammar (RFC 9112 7.1) is one transition table, TABLE. One source for both builds: Cython
compiles it typed by chunked.pxd (the loop then runs in C on the buffer's bytes).
"""

from __future__ import annotations

from tcpvs.http.common import (
    C_FIELD,
    C_HEX,
    C_QDTEXT,
    C_TCHAR,
    CLASSES,
    MAX_CHUNK_LINE,
    MAX_CHUNK_SIZE_DIGITS,
    HttpError,
)

# States, in the order the bytes come. Chunk-size line: size, then extensions
# *( BWS ";" BWS name [ BWS "=" BWS value ] ), then CRLF.
SIZE = 0  # hex digits of the chunk size
EXT_WS = 1  # whitespace after the size or a value: only more of it or ";" may follow
EXT_PRE_NAME = 2  # after ";"
EXT_NAME = 3
EXT_POST_NAME = 4  # whitespace after a name: "=" or ";" may follow
EXT_PRE_VALUE = 5  # after "="
EXT_TOKEN = 6
EXT_QUOTED = 7
EXT_QUOTED_PAIR = 8  # after a backslash inside quotes
EXT_POST_QUOTE = 9
LINE_LF = 10  # CR seen at the end of the chunk-size line
DATA = 11  # chunk data: skipped by count, never looked at
DATA_CR = 12
DATA_LF = 13
TRAILER = 14  # start of a trailer field line, or of the final empty line
TRAILER_NAME = 15
TRAILER_VALUE = 16
TRAILER_LF = 17
FINAL_LF = 18
DONE = 19
REFUSE = 255


def _transitions() -> tuple[bytes, ...]:
    """Row per state (DATA's unused): the next state for each byte, or REFUSE."""
    tchar = bytes(c for c in range(256) if CLASSES[c] & C_TCHAR)
    hexdig = bytes(c for c in range(256) if CLASSES[c] & C_HEX)
    qdtext = bytes(c for c in range(256) if CLASSES[c] & C_QDTEXT)
    field = bytes(c for c in range(256) if CLASSES[c] & C_FIELD)
    ws = b" \t"
    rules: dict[int, tuple[tuple[bytes, int], ...]] = {
        SIZE: ((hexdig, SIZE), (ws, EXT_WS), (b";", EXT_PRE_NAME), (b"\r", LINE_LF)),
        EXT_WS: ((ws, EXT_WS), (b";", EXT_PRE_NAME)),
        EXT_PRE_NAME: ((ws, EXT_PRE_NAME), (tchar, EXT_NAME)),
        EXT_NAME: (
            (tchar, EXT_NAME),
            (ws, EXT_POST_NAME),
            (b"=", EXT_PRE_VALUE),
            (b";", EXT_PRE_NAME),
            (b"\r", LINE_LF),
        ),
        EXT_POST_NAME: ((ws, EXT_POST_NAME), (b"=", EXT_PRE_VALUE), (b";", EXT_PRE_NAME)),
        EXT_PRE_VALUE: ((ws, EXT_PRE_VALUE), (b'"', EXT_QUOTED), (tchar, EXT_TOKEN)),
        EXT_TOKEN: ((tchar, EXT_TOKEN), (ws, EXT_WS), (b";", EXT_PRE_NAME), (b"\r", LINE_LF)),
        EXT_QUOTED: ((qdtext, EXT_QUOTED), (b'"', EXT_POST_QUOTE), (b"\\", EXT_QUOTED_PAIR)),
        EXT_QUOTED_PAIR: ((field, EXT_QUOTED),),
        EXT_POST_QUOTE: ((ws, EXT_WS), (b";", EXT_PRE_NAME), (b"\r", LINE_LF)),
        LINE_LF: ((b"\n", DATA),),  # or TRAILER after the last chunk (size 0)
        DATA_CR: ((b"\r", DATA_LF),),
        DATA_LF: ((b"\n", SIZE),),
        TRAILER: ((tchar, TRAILER_NAME), (b"\r", FINAL_LF)),
        TRAILER_NAME: ((tchar, TRAILER_NAME), (b":", TRAILER_VALUE)),
        TRAILER_VALUE: ((field, TRAILER_VALUE), (b"\r", TRAILER_LF)),
        TRAILER_LF: ((b"\n", TRAILER),),
        FINAL_LF: ((b"\n", DONE),),
    }
    rows = []
    for state in range(DONE):
        row = bytearray([REFUSE]) * 256
        for members, target in rules.get(state, ()):
            for c in members:
                row[c] = target
        rows.append(bytes(row))
    return tuple(rows)


TRANSITIONS = _transitions()
_TABLE = b"".join(TRANSITIONS)  # row `state` at state * 256
TABLE = _TABLE  # (compiled: a pointer into the bytes object above, which keeps it alive)
# Why a byte is refused, per state.
REASONS: dict[int, str] = {
    SIZE: "invalid chunk size",
    **dict.fromkeys(range(EXT_WS, LINE_LF), "invalid chunk extension"),
    LINE_LF: "bare CR in chunk size line",
    DATA_CR: "missing CRLF after chunk data",
    DATA_LF: "missing CRLF after chunk data",
    TRAILER: "invalid trailer field or obs-fold",
    TRAILER_NAME: "invalid trailer field",
    TRAILER_VALUE: "invalid trailer field",
    TRAILER_LF: "bare CR in trailer section",
    FINAL_LF: "missing CRLF at end of chunked body",
}


class ChunkedScanner:
    """Follows one chunked body through the bytes fed to it.

    feed() returns how many of the bytes from `start` on belong to the body; once `done`, the
    rest of the data is the next message. Malformed framing raises HttpError(400).
    """

    def __init__(self, max_trailer: int = 16384) -> None:
        self.done = False
        self._state = SIZE
        self._size = 0  # chunk size being read, then data bytes still to come
        self._digits = 0
        self._count = 0  # bytes of the current chunk-size line, or of the trailer section
        self._max_trailer = max_trailer

    def feed(self, data: bytes | bytearray | memoryview, start: int = 0) -> int:
        if type(data) is memoryview:
            data = bytes(data)
        p = data
        end = len(data)
        if not 0 <= start <= end:
            raise ValueError("start outside data")
        i = start
        state = self._state
        while i < end and state != DONE:
            if state == DATA:
                take = end - i
                if self._size < take:
                    take = self._size
                i += take
                self._size -= take
                if not self._size:
                    state = DATA_CR
                continue
            c = p[i]
            i += 1
            nxt = TABLE[state * 256 + c]
            if nxt == REFUSE or (state == SIZE and nxt != SIZE and not self._digits):
                raise HttpError(400, REASONS[state])
            if state <= LINE_LF:
                self._count += 1
                if self._count > MAX_CHUNK_LINE:
                    raise HttpError(400, "chunk size line too long")
                if nxt == SIZE:
                    self._digits += 1
                    if self._digits > MAX_CHUNK_SIZE_DIGITS:
                        raise HttpError(400, "invalid chunk size")
                    self._size = self._size * 16 + (c & 15) + (9 if c > 57 else 0)
                elif nxt == DATA and not self._size:
                    nxt = TRAILER
                    self._count = 0
            elif state >= TRAILER:
                self._count += 1
                if self._count > self._max_trailer:
                    raise HttpError(400, "trailer section too large")
            elif nxt == SIZE:  # a new chunk-size line
                self._size = 0
                self._digits = 0
                self._count = 0
            state = nxt
        self._state = state
        self.done = state == DONE
        return i - start
