"""README.md's library example, run as a user runs it: the code block saved as a file and
started with python, its real servers and client included."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from tests.support.netns import own_netns
from tests.support.procs import ROOT

EXAMPLE_PORT = 8080  # the example's own (fixed) listen port


def library_example() -> str:
    """The Python block of README.md's "As a library" section."""
    section = (ROOT / "README.md").read_text().split("\n## As a library\n", 1)[1]
    found = re.search(r"^```python\n(.*?)^```$", section, re.S | re.M)
    assert found, "README.md's 'As a library' section has no python block"
    return found.group(1)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_library_example_runs_as_written(tmp_path):
    example = tmp_path / "example.py"
    example.write_text(library_example())
    argv = [sys.executable, str(example)]
    # Its fixed port is surely free in a namespace of its own; here only if nothing holds it.
    isolated = own_netns(argv)
    if isolated is None and not port_is_free(EXAMPLE_PORT):
        pytest.skip(f"127.0.0.1:{EXAMPLE_PORT} is in use and no network namespace is allowed")
    done = subprocess.run(
        isolated or argv, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "HTTP/1.1 200 OK from images\nHTTP/1.1 200 OK from pages\n"
    assert "Traceback" not in done.stderr
