"""A real single-node Apache Kafka (KRaft, combined broker/controller) from the official jars.

The jars are resolved once from Maven Central with `mvn dependency:copy-dependencies` into
~/.cache/cpi/, then the broker runs from them on loopback with its data and log under a work
directory. This is what `cpi kafka start|stop|status`, `cpi up` and the test fixtures use when
CPI_KAFKA_BOOTSTRAP does not name a cluster.

Secured by default: one SASL_SSL listener (TLS from a local CA generated here, SCRAM-SHA-512 logins,
one per principal of the topic registry, with random passwords), the StandardAuthorizer denying
whatever no ACL allows, and the administrator `cpi-admin` as the only super user besides the broker
itself. The controller listener takes only mutual TLS with the broker's own certificate (the CA's key
is discarded once that is issued), so it is no anonymous way round the authorizer. `admin.env` and
`principals/<name>.env` in the work directory hold each principal's client settings (mode 0600).
`security="open"` (CPI_LOCAL_KAFKA_SECURITY=open) runs the old PLAINTEXT broker for experiments.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from schemas.topics import ADMIN, PRINCIPALS
from services.common.errors import CpiError
from services.common.files import PRIVATE_UMASK, private_dir, write_private
from services.common.kafka.principals import (
    ADMIN_ENV,
    principal_env_file,
    read_env_file,
    with_connection,
    write_env_file,
)
from services.common.settings import PlatformSettings

KAFKA_DIR = Path(__file__).resolve().parents[3] / "deploy" / "local" / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J2 = KAFKA_DIR / "log4j2.properties"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
BROKER_PRINCIPAL = "cpi-broker"  # the CN of the broker's certificate: how it logs in to its controller
_SCRAM = "SCRAM-SHA-512"


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
class Launched:
    """A broker process just started, and the SCRAM logins to add once it answers (principals added to the
    registry after its storage was formatted)."""

    process: subprocess.Popen[bytes]
    new_logins: dict[str, str]


@dataclass(frozen=True)
class LocalBroker:
    """Where one local broker lives: its work directory and its two loopback ports."""

    workdir: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    heap: str = "768m"
    security: Literal["secured", "open"] = "secured"
    # One node of a local cluster (`LocalCluster`): its id, the static controller quorum of every node
    # ("1@host:port,2@host:port,..."), the cluster's id, the replication of Kafka's own topics, and the
    # bootstrap the client settings name (every node's, so a client outlives any one node).
    node_id: int = 1
    voters: str | None = None
    cluster_id: str | None = None
    replication: int = 1
    cluster_bootstrap: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.workdir / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.workdir / "logs" / "broker.log"

    @property
    def admin_env_file(self) -> Path:
        """The administrator's client settings, for `set -a; . admin.env`."""
        return self.workdir / ADMIN_ENV

    @property
    def tls_dir(self) -> Path:
        return self.workdir / "tls"

    @property
    def _security_file(self) -> Path:
        return self.workdir / "security"  # how the data was formatted: secured or open

    def admin_settings(self) -> PlatformSettings:
        """Settings that connect to this broker as its administrator."""
        return with_connection(PlatformSettings(), read_env_file(self.admin_env_file))

    def _passwords(self) -> tuple[dict[str, str], set[str]]:
        """Every principal's password (the administrator's too), from its env file or made now; and the
        principals whose passwords were made now."""
        passwords, new = {}, set()
        for principal in (ADMIN, *PRINCIPALS):
            path = self.admin_env_file if principal == ADMIN else principal_env_file(self.workdir, principal)
            try:
                passwords[principal] = read_env_file(path)["CPI_KAFKA_SASL_PASSWORD"]
            except (CpiError, KeyError):
                passwords[principal] = secrets.token_urlsafe(32)  # no '=' ',' '[' ']' '"' to escape
                new.add(principal)
        return passwords, new

    def _add_logins(self, passwords: dict[str, str]) -> None:
        """SCRAM logins for principals added to the registry after the broker's storage was formatted."""
        from kafka.admin import UserScramCredentialUpsertion

        from services.common.kafka.clients import admin_client

        admin = admin_client(self.admin_settings())
        try:
            refused = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(name, _SCRAM, password) for name, password in passwords.items()])
        finally:
            admin.close()
        if any(refused.values()):
            raise BrokerError(f"the broker refused new SCRAM logins: {refused}")

    def _write_env_files(self, passwords: dict[str, str]) -> None:
        bootstrap = {"CPI_KAFKA_BOOTSTRAP": self.cluster_bootstrap or self.bootstrap}
        if self.security == "open":
            write_env_file(self.admin_env_file, {**bootstrap, "CPI_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
            return
        for principal, password in passwords.items():
            path = self.admin_env_file if principal == ADMIN else principal_env_file(self.workdir, principal)
            write_env_file(path, {
                **bootstrap,
                "CPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "CPI_KAFKA_SASL_MECHANISM": _SCRAM,
                "CPI_KAFKA_SASL_USERNAME": principal,
                "CPI_KAFKA_SASL_PASSWORD": password,
                "CPI_KAFKA_SSL_CAFILE": str((self.tls_dir / "ca.pem").resolve()),
            })

    def _listener_properties(self, admin_password: str) -> list[str]:
        controller = f"CONTROLLER://{self.host}:{self.controller_port}"
        if self.security == "open":
            return [
                f"listeners=PLAINTEXT://{self.host}:{self.port},{controller}",
                f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ]
        tls = self.tls_dir.resolve()
        return [
            f"listeners=SASL_SSL://{self.host}:{self.port},{controller}",
            f"advertised.listeners=SASL_SSL://{self.host}:{self.port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={_SCRAM}",
            f"sasl.mechanism.inter.broker.protocol={_SCRAM}",
            f"listener.name.sasl_ssl.{_SCRAM.lower()}.sasl.jaas.config="
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
            f'password="{admin_password}";',
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls / 'broker.pem'}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls / 'ca.pem'}",
            # The controller listener: only a client holding a certificate from our CA (the broker's own).
            "listener.name.controller.ssl.client.auth=required",
            "ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{ADMIN};User:{BROKER_PRINCIPAL}",
        ]

    def _properties(self, admin_password: str) -> Path:
        path = self.workdir / "server.properties"
        write_private(  # it holds the administrator's password (the broker's own login)
            path,
            ("\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    # A cluster's quorum is static (every voter named); a single node bootstraps itself.
                    f"controller.quorum.voters={self.voters}" if self.voters else
                    f"controller.quorum.bootstrap.servers={self.host}:{self.controller_port}",
                    *self._listener_properties(admin_password),
                    "controller.listener.names=CONTROLLER",
                    f"log.dirs={self.workdir / 'data'}",
                    "num.partitions=1",
                    f"offsets.topic.replication.factor={self.replication}",
                    "offsets.topic.num.partitions=6",
                    f"transaction.state.log.replication.factor={self.replication}",
                    f"transaction.state.log.min.isr={min(self.replication, 2)}",
                    f"share.coordinator.state.topic.replication.factor={self.replication}",
                    f"share.coordinator.state.topic.min.isr={min(self.replication, 2)}",
                    f"min.insync.replicas={min(self.replication, 2)}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                ]
            )
            + "\n"
        ).encode())
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
        self.await_ready(self.launch(), timeout)
        return self.bootstrap

    def launch(self) -> Launched:
        """Start the broker process (formatting its storage the first time) without waiting for it: a cluster's
        nodes answer only once a majority of its controllers runs."""
        if _port_open(self.host, self.port):
            raise BrokerError(f"{self.bootstrap} is taken by another process; set CPI_KAFKA_BOOTSTRAP to use it")
        libs = resolve_jars()
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java 17 or newer is needed to run the local broker")
        private_dir(self.workdir / "logs")
        formatted = (self.workdir / "data" / "meta.properties").exists()
        if formatted:
            was = self._security_file.read_text().strip() if self._security_file.exists() else "open"
            if was != self.security:
                raise BrokerError(
                    f"the local broker in {self.workdir} was set up {was}; to run it {self.security}, stop it and "
                    f"remove {self.workdir} (its topics are lost), or set CPI_LOCAL_KAFKA_SECURITY={was}")
        passwords, new_logins = self._passwords()
        if formatted and ADMIN in new_logins and self.security == "secured":
            raise BrokerError(f"{self.admin_env_file} is gone, and with it the administrator's login to the broker in "
                              f"{self.workdir}: stop it and remove {self.workdir} to start afresh")
        if self.security == "secured" and not (self.tls_dir / "broker.pem").exists():
            write_tls(self.tls_dir, self.host)
        self._write_env_files(passwords)
        properties = self._properties(passwords[ADMIN])
        classpath = f"{libs}/*"
        jvm = [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dkafka.logs.dir={self.workdir / 'logs'}", f"-Dlog4j2.configurationFile={LOG4J2}",
               "-cp", classpath]
        if not formatted:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # SCRAM credentials go into the cluster's first metadata, so they exist before any client.
            scram = [] if self.security == "open" else [
                argument for principal, password in passwords.items()
                for argument in ("--add-scram", f"{_SCRAM}=[name={principal},password={password}]")
            ]
            quorum = [] if self.voters else ["--standalone"]  # a static quorum names its voters already
            result = subprocess.run(  # noqa: S603 - fixed arguments
                [*jvm, "kafka.tools.StorageTool", "format", *quorum,
                 f"--cluster-id={self.cluster_id or cluster_id}", "-c", str(properties), *scram],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise BrokerError(f"could not format KRaft storage:\n{result.stdout}{result.stderr}")
            self._security_file.write_text(self.security)
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
        return Launched(process, {name: passwords[name] for name in new_logins} if formatted else {})

    def await_ready(self, launched: Launched, timeout: float = 90.0) -> None:
        """Return once the launched broker answers (as itself, not another node of its cluster)."""
        process = launched.process
        settings = self.admin_settings().model_copy(update={"kafka_bootstrap": self.bootstrap})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(f"the broker exited with {process.returncode}; see {self.log_file}")
            if _broker_ready(settings):
                if launched.new_logins and self.security == "secured":
                    self._add_logins(launched.new_logins)
                return
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
            "security": self.security,
            "admin_env": str(self.admin_env_file),
            "answering": pid is not None and self.admin_env_file.exists() and _broker_ready(self.admin_settings()),
        }


@dataclass(frozen=True)
class LocalCluster:
    """Local brokers from the same jars as one cluster: each node a combined broker and controller of one static
    KRaft quorum, Kafka's own topics replicated to every node with min.insync.replicas 2, which is also the
    brokers' default (the project's topics take theirs from CPI_REPLICATION_FACTOR and
    CPI_MIN_INSYNC_REPLICAS). Every node is on loopback, so one TLS certificate serves all, and all share one set
    of SCRAM logins: the first node makes both and the others get copies before any storage is formatted. The
    first node's folder holds admin.env and principals/ (CPI_KAFKA_ENV_DIR), naming every node's address."""

    nodes: tuple[LocalBroker, ...]

    @classmethod
    def on_free_ports(cls, workdir: Path, size: int = 3, heap: str = "512m") -> LocalCluster:
        ports = [(free_port(), free_port()) for _ in range(size)]
        voters = ",".join(f"{n}@127.0.0.1:{controller}" for n, (_port, controller) in enumerate(ports, start=1))
        bootstrap = ",".join(f"127.0.0.1:{port}" for port, _controller in ports)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        return cls(tuple(
            LocalBroker(workdir / f"node-{n}", port=port, controller_port=controller, heap=heap, node_id=n,
                        voters=voters, cluster_id=cluster_id, replication=size, cluster_bootstrap=bootstrap)
            for n, (port, controller) in enumerate(ports, start=1)))

    @property
    def bootstrap(self) -> str:
        return self.nodes[0].cluster_bootstrap or self.nodes[0].bootstrap

    @property
    def workdir(self) -> Path:
        """The folder of admin.env and principals/ (the first node's)."""
        return self.nodes[0].workdir

    @property
    def admin_env_file(self) -> Path:
        return self.nodes[0].admin_env_file

    def start(self, timeout: float = 120.0) -> str:
        """Start every node that is not running, and return once each answers. Returns the bootstrap."""
        first = self.nodes[0]
        private_dir(first.workdir)
        if first.security == "secured" and not (first.tls_dir / "broker.pem").exists():
            write_tls(first.tls_dir, first.host)
        first._write_env_files(first._passwords()[0])
        for node in self.nodes[1:]:
            private_dir(node.workdir)
            for shared in (first.tls_dir, first.workdir / "principals"):
                if shared.exists():
                    shutil.copytree(shared, node.workdir / shared.name, dirs_exist_ok=True)
            shutil.copy2(first.admin_env_file, node.admin_env_file)
        launched = [(node, node.launch()) for node in self.nodes if node.running_pid() is None]
        for node, started in launched:
            node.await_ready(started, timeout)
        return self.bootstrap

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _broker_ready(settings: PlatformSettings) -> bool:
    """True once the broker serves metadata (a listening port alone is not enough)."""
    host, _, port = settings.bootstrap.split(",")[0].rpartition(":")
    if not _port_open(host, int(port)):
        return False
    from services.common.kafka.clients import admin_client

    try:
        admin = admin_client(settings, request_timeout_ms=5000)
        try:
            return bool(admin.describe_cluster()["brokers"])
        finally:
            admin.close()
    except Exception:
        return False


def cluster_version(settings: PlatformSettings) -> str:
    """The broker version a remote cluster reports, as far as the protocol tells (major.minor)."""
    from services.common.kafka.clients import admin_client

    admin = admin_client(settings, request_timeout_ms=10_000)
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


def write_tls(folder: Path, host: str) -> None:
    """A local CA (ca.pem) and the broker's key and certificate chain (broker.pem, as Kafka's PEM keystore
    takes it), valid for `host` and localhost. The CA's key is not kept: nothing else can be issued, so
    the broker's certificate is the only one the controller listener accepts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cpi local Kafka CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_PRINCIPAL)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    write_private(folder / "broker.pem",
                  (key_pem + cert.public_bytes(pem).decode() + ca.public_bytes(pem).decode()).encode())
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
