"""Sans-IO HTTP/1.x syntax for the engine: request/response heads, chunked framing, the
switch's own error answers.

heads and chunked are compiled like the rest of the data path (tcpvs/compiled.py); `load`
gives the tests either build of them side by side in one process.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType, SimpleNamespace

from tcpvs import compiled

compiled.use()

from tcpvs.http.chunked import ChunkedScanner  # noqa: E402  (after use(): the chosen build)
from tcpvs.http.common import (  # noqa: E402
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    BODY_UNTIL_CLOSE,
    HttpError,
)
from tcpvs.http.heads import (  # noqa: E402
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
)
from tcpvs.http.responses import error_response  # noqa: E402

IMPLEMENTATION = compiled.IMPLEMENTATION


def _source(name: str) -> ModuleType:
    """tcpvs.http.`name` run from its .py file, as a module of its own (not the one in use)."""
    path = os.path.join(os.path.dirname(__file__), name + ".py")
    spec = importlib.util.spec_from_file_location(f"tcpvs.http._source_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load(build: str) -> SimpleNamespace:
    """The heads and chunked scanner of one build, "cython" (ImportError when not compiled)
    or "python" (the sources, whatever runs): for tests that compare the two."""
    if build == "cython":
        if compiled.WHY_PURE:
            raise ImportError(f"the compiled build does not run: {compiled.WHY_PURE}")
        modules = [sys.modules["tcpvs.http.heads"], sys.modules["tcpvs.http.chunked"]]
    else:
        modules = [_source("heads"), _source("chunked")]
    names = {
        name: getattr(module, name)
        for module in modules
        for name in (
            "ChunkedScanner",
            "RequestHead",
            "ResponseHead",
            "parse_request_head",
            "parse_response_head",
        )
        if hasattr(module, name)
    }
    return SimpleNamespace(**names, HttpError=HttpError, error_response=error_response)


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
