"""Sans-IO HTTP/1.x for the engine: request/response heads, body framing, error responses.

Two implementations with one API: the Cython twin (tcpvs._fast.httpscan) when it is built,
else the pure-Python one (tcpvs.http.pure); TCPVS_PURE_PYTHON=1 forces the pure one.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

from tcpvs.http.common import BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, HttpError
from tcpvs.http.responses import error_response

_MODULES = {"cython": "tcpvs._fast.httpscan", "python": "tcpvs.http.pure"}


def load(name: str) -> ModuleType:
    """The implementation called `name` ("cython" or "python"); ImportError if not built."""
    return importlib.import_module(_MODULES[name])


def _choose() -> tuple[ModuleType, str]:
    if os.environ.get("TCPVS_PURE_PYTHON", "") in ("", "0"):
        try:
            return load("cython"), "cython"
        except ImportError:
            pass
    return load("python"), "python"


if TYPE_CHECKING:  # both implementations have the pure one's signatures
    from tcpvs.http.pure import (
        ChunkedScanner,
        RequestHead,
        ResponseHead,
        parse_request_head,
        parse_response_head,
    )

    IMPLEMENTATION: str
else:
    _impl, IMPLEMENTATION = _choose()
    ChunkedScanner = _impl.ChunkedScanner
    RequestHead = _impl.RequestHead
    ResponseHead = _impl.ResponseHead
    parse_request_head = _impl.parse_request_head
    parse_response_head = _impl.parse_response_head

__all__ = [
    "BODY_CHUNKED",
    "BODY_LENGTH",
    "BODY_NONE",
    "BODY_UNTIL_CLOSE",
    "IMPLEMENTATION",
    "ChunkedScanner",
    "HttpError",
    "RequestHead",
    "ResponseHead",
    "error_response",
    "load",
    "parse_request_head",
    "parse_response_head",
]
