"""Build the Cython fast path; everything else is declared in pyproject.toml.

The modules of tcpvs.compiled.COMPILED (the HTTP head and chunked scanners, the exchanges, the
proxy), each a .py with a .pxd beside it: compiled into extension types with C fields and C
loops, from the one Python source. Python semantics are kept (negative indexes, bounds checks
on Python objects; the scanners index C pointers, which have none).

The build records the digest of every source it compiled in tcpvs/_built.py; the engine runs
the compiled modules only when those digests still match the sources beside them. Without a
C compiler the install still succeeds, with the pure-Python engine and a warning.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the build backend omits it
from tcpvs.compiled import COMPILED, TLS_LAYER, source_digest  # noqa: E402

FLAGS = ["-O2"]
DIRECTIVES = {"language_level": "3", "annotation_typing": False}
PURE_ENGINE_COST = (
    "tcpvs: the engine could not be compiled ({error}); this install runs the pure-Python "
    "engine, which costs about 3x the CPU per request. Install a C compiler and the Python "
    "headers (Debian: gcc python3-dev) and reinstall to get the compiled one."
)
OWN_TLS_COST = (
    "tcpvs: its TLS layer could not be compiled ({error}); TLS services run on the event "
    "loop's TLS layer, which costs about 150 us more per handshake. Install OpenSSL's headers "
    "(Debian: libssl-dev) and reinstall to get it."
)


def record_digests() -> None:
    lines = ['"""Written by setup.py: digests of the sources the compiled modules came from."""']
    lines += ["", "DIGESTS = {"]
    lines += [f'    "{module}": "{source_digest(module)}",' for module in (*COMPILED, TLS_LAYER)]
    lines.append("}")
    with open(os.path.join("tcpvs", "_built.py"), "w", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")


class OptionalBuildExt(build_ext):
    """A failed compilation leaves the pure-Python engine installed (or, for the TLS layer
    alone, the event loop's TLS), and says what it costs."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: setuptools raises several kinds
            print(PURE_ENGINE_COST.format(error=exc), file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            cost = OWN_TLS_COST if ext.name == TLS_LAYER else PURE_ENGINE_COST
            print(cost.format(error=exc), file=sys.stderr)


compiled = cythonize(
    [
        Extension(module, [module.replace(".", "/") + ".py"], extra_compile_args=FLAGS)
        for module in COMPILED
    ]
    # OpenSSL's, the very library Python's ssl module is linked with (libssl.so.3).
    + [Extension(TLS_LAYER, [TLS_LAYER.replace(".", "/") + ".pyx"], libraries=["ssl", "crypto"])],
    # Types come from the .pxd files; the sources' annotations are for mypy.
    compiler_directives=DIRECTIVES,
)
record_digests()

setup(ext_modules=compiled, cmdclass={"build_ext": OptionalBuildExt})
