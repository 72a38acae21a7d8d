"""Build the Cython fast path (tcpvs/_fast); everything else is declared in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("tcpvs._fast.httpscan", ["tcpvs/_fast/httpscan.pyx"], extra_compile_args=["-O2"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)
