"""A real single-node Apache Kafka (KRaft, combined broker/controller) from the official jars.

The jars are resolved once from Maven Central with `mvn dependency:copy-dependencies` into
~/.cache/cpi/, then the broker runs from them on loopback with its data and log under a work
directory. This is what `cpi kafka start|stop|status`, `cpi up` and the test fixtures use when
CPI_KAFKA_BOOTSTRAP does not name a cluster.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import CpiError
from services.common.files import PRIVATE_UMASK, private_dir

KAFKA_DIR = Path(__file__).resolve().parents[3] / "deploy" / "local" / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J2 = KAFKA_DIR / "log4j2.properties"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class BrokerError(CpiError):
    """The local broker could not be resolved, started or stopped."""


def kafka_version() -> str:
    """The Apache Kafka version the POM names."""
    version = ET.parse(POM).find("m:properties/m:kafka.version", _POM_NS)  # noqa: S314 - our own file
    if version is None or not version.text:
        raise BrokerError(f"{POM} names no kafka.version")
    return version.text


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cpi" / f"kafka-{kafka_version()}"


def resolve_jars() -> Path:
    """The directory of broker jars, fetched with Maven the first time only."""
    libs = cache_dir() / "libs"
    marker = cache_dir() / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed once to fetch the Kafka jars: apt-get install maven")
    if libs.exists():
        shutil.rmtree(libs)
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise BrokerError(f"mvn could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    marker.write_text(kafka_version())
    return libs


@dataclass(frozen=True)
class LocalBroker:
    """Where one local broker lives: its work directory and its two loopback ports."""

    workdir: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    heap: str = "768m"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.workdir / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.workdir / "logs" / "broker.log"

    def _properties(self) -> Path:
        path = self.workdir / "server.properties"
        path.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={self.host}:{self.controller_port}",
                    f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.workdir / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                ]
            )
            + "\n"
        )
        return path

    def running_pid(self) -> int | None:
        try:
            pid = int(json.loads(self.state_file.read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker unless it runs already; return once it answers. Returns the bootstrap."""
        if self.running_pid() is not None:
            return self.bootstrap
        if _port_open(self.host, self.port):
            raise BrokerError(f"{self.bootstrap} is taken by another process; set CPI_KAFKA_BOOTSTRAP to use it")
        libs = resolve_jars()
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java 17 or newer is needed to run the local broker")
        private_dir(self.workdir / "logs")
        properties = self._properties()
        classpath = f"{libs}/*"
        jvm = [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dkafka.logs.dir={self.workdir / 'logs'}", f"-Dlog4j2.configurationFile={LOG4J2}",
               "-cp", classpath]
        if not (self.workdir / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            formatted = subprocess.run(  # noqa: S603 - fixed arguments
                [*jvm, "kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}",
                 "-c", str(properties)],
                capture_output=True, text=True, check=False,
            )
            if formatted.returncode != 0:
                raise BrokerError(f"could not format KRaft storage:\n{formatted.stdout}{formatted.stderr}")
        out = open(self.workdir / "logs" / "broker.out", "ab")
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [*jvm, "kafka.Kafka", str(properties)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches `cpi up`, which stops us in order
            umask=PRIVATE_UMASK,  # the broker's logs and segments hold sealed submissions: 0600, 0700
        )
        out.close()
        self.state_file.write_text(json.dumps({"pid": process.pid, "bootstrap": self.bootstrap,
                                               "version": kafka_version()}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(f"the broker exited with {process.returncode}; see {self.log_file}")
            if _broker_ready(self.bootstrap):
                return self.bootstrap
            time.sleep(0.5)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after `timeout`). False if none was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            _reap(pid)
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
        self.state_file.unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, object]:
        pid = self.running_pid()
        state = json.loads(self.state_file.read_text()) if pid is not None else {}
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap,
            "version": state.get("version", kafka_version()),
            "log": str(self.log_file),
            "answering": pid is not None and _broker_ready(self.bootstrap),
        }


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _broker_ready(bootstrap: str) -> bool:
    """True once the broker serves metadata (a listening port alone is not enough)."""
    host, _, port = bootstrap.rpartition(":")
    if not _port_open(host, int(port)):
        return False
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            return bool(admin.describe_cluster()["brokers"])
        finally:
            admin.close()
    except Exception:
        return False


def cluster_version(bootstrap: str) -> str:
    """The broker version a remote cluster reports, as far as the protocol tells (major.minor)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        return ".".join(str(part) for part in admin._manager.broker_version)
    finally:
        admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_VERSION_LINE = re.compile(r"Kafka version: (\S+)")


def logged_version(log_file: Path) -> str | None:
    """The version the running broker printed at start-up (proof it is the jar we think it is)."""
    try:
        matches = _VERSION_LINE.findall(log_file.read_text(errors="replace"))
    except FileNotFoundError:
        return None
    return matches[-1] if matches else None
