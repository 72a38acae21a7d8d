"""Build the `extsched` plugin distribution (scheduler `first`) for tests that need a plugin.

`build_extsched(tmp_path)` copies tests/data/extsched into a fresh directory, a minimal
installed distribution (module + dist-info with the entry point); `plugin_env(site)` is an
environment whose PYTHONPATH makes a subprocess (python, tcpvsd) see it and this checkout.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "extsched"
REPO = Path(__file__).resolve().parents[2]
PLUGIN_NAME = "first"  # the scheduler name the plugin registers
PLUGIN_HEADER = b"X-Scheduler: first"  # the header it adds to HTTP responses


def build_extsched(root: Path) -> Path:
    """Copy the plugin distribution under `root`; return the directory to put on sys.path."""
    site = root / "extsched-site"
    shutil.copytree(DATA, site, ignore=shutil.ignore_patterns("__pycache__"))
    return site


def plugin_env(site: Path | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) with `site` (None: no plugin), then this checkout, first on
    PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    paths = [str(site)] if site is not None else []
    paths.append(str(REPO))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
