"""Build the Cython fast path; everything else is declared in pyproject.toml.

- tcpvs/_fast/httpscan.pyx: the request/response head scanner (twin of tcpvs/http/pure.py).
- tcpvs/engine/{pool,listener,frontend,http}.py with their .pxd files: the per-request loop compiled
  into extension types with C fields, from the one Python source (the list is
  tcpvs.engine.COMPILED; tcpvs/engine/__init__.py loads them only when all are built).
  Python semantics are kept (negative indexes, bounds checks): it is Python code.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

ENGINE = ("pool", "listener", "frontend", "http")
FLAGS = ["-O2"]
DIRECTIVES = {"language_level": "3"}

scanner = cythonize(
    [Extension("tcpvs._fast.httpscan", ["tcpvs/_fast/httpscan.pyx"], extra_compile_args=FLAGS)],
    compiler_directives={**DIRECTIVES, "boundscheck": False, "wraparound": False},
)
engine = cythonize(
    [
        Extension(f"tcpvs.engine.{name}", [f"tcpvs/engine/{name}.py"], extra_compile_args=FLAGS)
        for name in ENGINE
    ],
    # Field types come from the .pxd files; the sources' annotations are documentation.
    compiler_directives={**DIRECTIVES, "annotation_typing": False},
)

setup(ext_modules=scanner + engine)
