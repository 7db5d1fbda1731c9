"""What the console's browser tests bring up themselves: a real OpenID Connect provider and axe-core.

The provider is NAV's mock-oauth2-server from Maven Central (tests/browser/oidc/pom.xml), resolved once
with mvn into ~/.cache/cpi/ as the Kafka jars are, and started with java on a free loopback port; its
interactive login page lets a test sign in as any officer id with any roles claim. axe-core is the npm
package, installed once with npm into ~/.cache/cpi/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from services.common.kafka.broker import free_port
from tests.npm_helpers import cache_dir, npm_package

POM = Path(__file__).parent / "oidc" / "pom.xml"
MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"
ISSUER_ID = "cpi"
AXE_VERSION = "4"


def _oidc_version() -> str:
    node = ET.parse(POM).find("{http://maven.apache.org/POM/4.0.0}properties/"  # noqa: S314 - our own file
                              "{http://maven.apache.org/POM/4.0.0}mock-oauth2-server.version")
    assert node is not None and node.text
    return node.text


def oidc_jars() -> Path:
    """The provider's jars, fetched with mvn the first time only; skips when neither they nor mvn and java are here."""
    libs = cache_dir() / f"mock-oauth2-server-{_oidc_version()}" / "libs"
    marker = libs.parent / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        pytest.skip("mvn and java are needed once to fetch and run the test OIDC provider (apt-get install maven)")
    result = subprocess.run([mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, f"mvn could not fetch mock-oauth2-server:\n{result.stdout[-2000:]}{result.stderr}"
    marker.write_text(_oidc_version())
    return libs


@contextmanager
def oidc_provider(log_file: Path) -> Iterator[str]:
    """A running provider; yields its issuer URL (http://127.0.0.1:PORT/cpi)."""
    libs = oidc_jars()
    port = free_port()
    env = {**os.environ, "SERVER_HOSTNAME": "127.0.0.1", "SERVER_PORT": str(port),
           "JSON_CONFIG": json.dumps({"interactiveLogin": True})}
    with open(log_file, "wb") as log:
        process = subprocess.Popen(["java", "-Xmx256m", "-cp", f"{libs}/*", MAIN_CLASS], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}/{ISSUER_ID}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, f"the OIDC provider exited: {log_file.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the OIDC provider did not start in 90 s"
            time.sleep(0.3)
        yield issuer
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def axe_source() -> str:
    """axe-core's browser script, installed with npm the first time only; skips when npm is missing."""
    modules = npm_package("axe-core", AXE_VERSION, why="for the accessibility checks")
    return (modules / "axe-core" / "axe.min.js").read_text()
