"""Which modules Cython compiles, and whether a compiled build may run.

`pip install` compiles each module of COMPILED from its .py source (typed by the .pxd beside
it) and setup.py records the digest of every source it compiled in tcpvs/_built.py. A
compiled build runs only when every module was compiled from the very sources beside it: an
install always matches; in a source tree, a source edited since the last build does not, and
then every module loads from its .py file instead (TCPVS_PURE_PYTHON=1 forces that too).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES

# In import order: each imports only earlier ones when it loads.
COMPILED = (
    "tcpvs.http.chunked",
    "tcpvs.http.heads",
    "tcpvs.exchange.base",
    "tcpvs.exchange.http1",
    "tcpvs.exchange.tcp",
    "tcpvs.observe.access",
    "tcpvs.proxy.relay",
    "tcpvs.proxy.upstream",
    "tcpvs.proxy.listener",
    "tcpvs.proxy.client",
)
# Cython over OpenSSL with no .py source: compiled (when OpenSSL's headers were there) or absent.
TLS_LAYER = "tcpvs._fast.tlslayer"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stem(module: str) -> str:
    return os.path.join(ROOT, *module.split("."))


def source_digest(module: str) -> str:
    """sha256 of the module's .py, .pxd and .pyx files."""
    digest = hashlib.sha256()
    for suffix in (".py", ".pxd", ".pyx"):
        path = stem(module) + suffix
        if os.path.exists(path):
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def why_pure() -> str:
    """Why the pure-Python modules must run; "" when the compiled ones can."""
    if os.environ.get("TCPVS_PURE_PYTHON", "") not in ("", "0"):
        return "TCPVS_PURE_PYTHON is set"
    try:
        from tcpvs._built import DIGESTS
    except ImportError:
        DIGESTS = {}
    for module in COMPILED:
        built = any(os.path.exists(stem(module) + suffix) for suffix in EXTENSION_SUFFIXES)
        if not built or module not in DIGESTS:
            return "not compiled (no C compiler at install time?)"
        if DIGESTS[module] != source_digest(module):
            return f"{stem(module)}.py changed since it was compiled (rebuild: pip install -e .)"
    return ""


def _load_sources() -> None:
    """Import every COMPILED module from its .py file, even where a compiled one sits beside."""
    for name in COMPILED:
        package, _, attribute = name.rpartition(".")
        importlib.import_module(package)  # (its use() call returns at once: we are in it)
        spec = importlib.util.spec_from_file_location(name, stem(name) + ".py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        setattr(sys.modules[package], attribute, module)


def why_not_own_tls() -> str:
    """Why TLS services run on the event loop's TLS layer; "" when tcpvs's own one runs."""
    if WHY_PURE:
        return "the pure-Python engine runs"
    try:
        from tcpvs._built import DIGESTS
    except ImportError:
        return "not compiled"
    if not any(os.path.exists(stem(TLS_LAYER) + suffix) for suffix in EXTENSION_SUFFIXES):
        return "not compiled (no OpenSSL headers at install time?)"
    # (an installed package has no .pyx beside the build: nothing to have changed)
    source = stem(TLS_LAYER) + ".pyx"
    if os.path.exists(source) and DIGESTS.get(TLS_LAYER) != source_digest(TLS_LAYER):
        return f"{source} changed since it was compiled (rebuild: pip install -e .)"
    return ""


WHY_PURE = why_pure()
IMPLEMENTATION = "python" if WHY_PURE else "cython"
WHY_NOT_OWN_TLS = why_not_own_tls()
_used = False


def use() -> None:
    """Make the chosen build the one imported (the packages of COMPILED call this first)."""
    global _used
    if _used:
        return
    _used = True
    if WHY_PURE:
        if "changed since" in WHY_PURE:
            warnings.warn(f"tcpvs: running the pure-Python engine: {WHY_PURE}", stacklevel=3)
        _load_sources()
