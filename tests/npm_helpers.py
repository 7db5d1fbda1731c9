"""npm packages the tests run (axe-core in the browser, the AsyncAPI parser under node), installed with npm
into ~/.cache/cpi/ the first time only, one folder per package and major version."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def cache_dir() -> Path:
    """~/.cache/cpi (or $XDG_CACHE_HOME/cpi): what the tests fetch once and keep."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cpi"


def npm_package(name: str, version: str, *, why: str) -> Path:
    """The node_modules folder holding `name@version`, installed with npm if it is not there yet; skips,
    saying `why` the package is needed, when npm is missing."""
    folder = cache_dir() / f"{name.replace('@', '').replace('/', '-')}-{version}"
    modules = folder / "node_modules"
    if not (modules / name / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is needed once to install {name} {why} (apt-get install npm)")
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder),
                                 f"{name}@{version}"], capture_output=True, text=True, check=False, timeout=600)
        assert result.returncode == 0, f"npm could not install {name}:\n{result.stderr[-2000:]}"
    return modules
