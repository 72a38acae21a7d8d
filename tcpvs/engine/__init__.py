"""The data path: listeners, client-side protocols, server connections and their pool.

Every module here is plain Python. `pip install` also compiles the per-request modules
(COMPILED) with Cython: their .pxd files turn the protocol classes into extension types with
C fields, from the same .py source. The compiled modules sit beside the sources and are
imported first, except when TCPVS_PURE_PYTHON=1 (debugging, coverage) or when one is older
than its source (an edited tree not rebuilt yet): then all of them load from source, since
the compiled classes derive from each other and cannot be mixed with the pure ones.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, SourceFileLoader

COMPILED = ("pool", "listener", "frontend", "http")


def _compiled_path(directory: str, module: str) -> str | None:
    for suffix in EXTENSION_SUFFIXES:
        path = os.path.join(directory, module + suffix)
        if os.path.exists(path):
            return path
    return None


def _stale(compiled: str) -> bool:
    """In a source tree (the generated .c is there; an installed package has none), the
    compiled module is older than its .py: the source was edited and not rebuilt."""
    stem = os.path.join(os.path.dirname(compiled), os.path.basename(compiled).split(".")[0])
    return os.path.exists(stem + ".c") and os.path.getmtime(compiled) < os.path.getmtime(
        stem + ".py"
    )


def _choose(directory: str) -> str:
    """The engine to load: "cython" when every COMPILED module is built and current."""
    if os.environ.get("TCPVS_PURE_PYTHON", "") not in ("", "0"):
        return "python"
    from tcpvs.http import IMPLEMENTATION as parser  # the compiled engine reads its C fields

    built = [_compiled_path(directory, module) for module in COMPILED]
    if None in built or parser != "cython":
        return "python"
    stale = [module for module, path in zip(COMPILED, built, strict=True) if _stale(path)]
    if stale:
        warnings.warn(
            f"tcpvs.engine: compiled {', '.join(stale)} older than the source; running the "
            "pure-Python engine (rebuild: pip install -e .)",
            stacklevel=2,
        )
        return "python"
    return "cython"


IMPLEMENTATION = _choose(__path__[0])
if IMPLEMENTATION == "python":
    # This package's directory gets a finder that sees only .py files.
    sys.path_importer_cache[__path__[0]] = FileFinder(
        __path__[0], (SourceFileLoader, SOURCE_SUFFIXES)
    )
