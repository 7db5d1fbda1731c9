"""promtool, Prometheus's own checker of rule files, for the alert-rule tests: built once with `go install` into
~/.cache/cpi/ (as the Kafka jars and axe-core are cached), at the version pinned here. .ci/run builds it before
the tests, so a test's time limit is not spent compiling."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = "github.com/prometheus/prometheus/cmd/promtool"
VERSION = "v0.316.0"  # Prometheus 3.16.0 (the Go module's versions are 0.<major><minor>.<patch>)


def promtool() -> Path:
    """The cached promtool, built with `go install` the first time only; skips when neither it nor go is here."""
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cpi" / f"promtool-{VERSION}"
    binary = folder / "promtool"
    if not binary.exists():
        go = shutil.which("go")
        if go is None:
            pytest.skip(f"go is needed once to build promtool (go install {MODULE}@{VERSION})")
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env={**os.environ, "GOBIN": str(folder)},
                                capture_output=True, text=True, check=False, timeout=3000)
        assert result.returncode == 0, f"go install could not build promtool:\n{result.stderr[-3000:]}"
    return binary


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """promtool with `args`, its output captured."""
    return subprocess.run([str(promtool()), *args], capture_output=True, text=True, check=False, timeout=120)
