"""Waiting for a process of ours to answer on its health endpoint, and stopping it (used by `cpi bench`, and tests)."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx

from services.common.errors import CpiError


def wait_until_ready(url: str, *, process: subprocess.Popen[bytes] | None = None, timeout: float = 120.0) -> None:
    """Return once `url` answers 200; fail early if `process` exits first, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise CpiError(f"the process behind {url} exited with {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise CpiError(f"{url} was not ready within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Ask `process` to stop with `stop_signal`; kill it if it has not exited after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
