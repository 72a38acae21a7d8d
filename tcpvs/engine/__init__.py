"""The data path: listeners, client-side protocols, server connections and their pool.

Every module here is plain Python; `pip install` also compiles the per-request ones with
Cython (tcpvs/compiled.py says which, and when the compiled build may run: the compiled
classes derive from each other, so either all of them run or none). IMPLEMENTATION says which
build runs and WHY_PURE why the pure one does.
"""

from __future__ import annotations

import warnings

from tcpvs.compiled import COMPILED, load_sources, why_pure

WHY_PURE = why_pure()
if not WHY_PURE:
    from tcpvs.http import IMPLEMENTATION as _parser

    if _parser != "cython":  # the compiled engine reads the compiled parser's C fields
        WHY_PURE = "the HTTP parser is not compiled"
IMPLEMENTATION = "python" if WHY_PURE else "cython"
if WHY_PURE:
    if "changed since" in WHY_PURE:
        warnings.warn(f"tcpvs.engine: running the pure-Python engine: {WHY_PURE}", stacklevel=2)
    load_sources(tuple(m for m in COMPILED if m.startswith(__name__ + ".")))
