"""Session fixtures shared by every test: a real Kafka broker and unique topics per test.

The broker is, in order of preference: the cluster CPI_KAFKA_BOOTSTRAP names; a testcontainers
KafkaContainer (KRaft) where a Docker engine answers; else the local Apache Kafka broker from the
official jars (`services.common.kafka.broker`), on free loopback ports in a temporary directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.topics import ALL_TOPICS, TopicSpec

SHARED = Path(__file__).resolve().parents[2] / "shared"
TESTDATA = SHARED / "testdata"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="tests/reliability: bigger runs (more submissions, more faults); the default is CI's")


def _docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a real Kafka broker for the whole test session.

    The local broker is the secured one (TLS, SCRAM per principal, ACLs). Its administrator's CPI_KAFKA_*
    settings are put in the environment for the session, so every settings object and every worker a test
    starts connects as the administrator unless it is given a principal's own settings; CPI_KAFKA_ENV_DIR
    names the folder of admin.env and principals/*.env (what `cpi up` and the ACL tests use). With
    CPI_KAFKA_BOOTSTRAP, the caller's own CPI_KAFKA_* settings (and CPI_KAFKA_ENV_DIR, if any) apply."""
    existing = os.environ.get("CPI_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    if _docker_engine_answers():
        from testcontainers.community.kafka import KafkaContainer

        image = os.environ.get("CPI_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.8.0")
        with KafkaContainer(image).with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from services.common.kafka.broker import LocalBroker, free_port
    from tests.kafka_helpers import connect_as_administrator

    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    broker.start()
    session_env = pytest.MonkeyPatch()
    connect_as_administrator(session_env, broker)
    try:
        yield broker.bootstrap
    finally:
        session_env.undo()
        broker.stop()


@pytest.fixture(scope="session")
def kafka_env_dir(kafka_bootstrap: str) -> Path:
    """admin.env and principals/<name>.env of the session's broker; skips where the cluster has none."""
    folder = os.environ.get("CPI_KAFKA_ENV_DIR")
    if not folder or not (Path(folder) / "principals").is_dir():
        pytest.skip("the session's Kafka has no principals' env files (set CPI_KAFKA_ENV_DIR for a cluster)")
    return Path(folder)


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL URL for the whole session: the server CPI_TEST_POSTGRES_URL names; else a throwaway
    server from the Debian `postgresql` package's binaries (`initdb`, `pg_ctl start`) in a temporary
    directory on a free loopback port, run as the `postgres` user when the tests run as root; else the
    tests that need it skip and say why."""
    from services.common.kafka.broker import free_port

    existing = os.environ.get("CPI_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]'")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries: apt-get install -y postgresql, or set CPI_TEST_POSTGRES_URL"
        )
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root.
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        run_as = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="cpi-pg-"))
    if run_as:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, logfile, port = base / "data", base / "server.log", free_port()
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", "60",
             "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off", "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        server_log = logfile.read_text() if logfile.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}\n{server_log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so each test has topics of its own."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def topic_factory(kafka_bootstrap: str, topic_prefix: str) -> Callable[..., dict[str, str]]:
    """Create the registry's topics (or some of them) under this test's prefix; returns name -> real name."""
    from services.common.kafka.admin import apply_topics
    from services.common.settings import PlatformSettings

    def create(*specs: TopicSpec) -> dict[str, str]:
        settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
        chosen = specs or ALL_TOPICS
        report = apply_topics(settings, tuple(chosen))
        assert report.ok, report.drift
        return {spec.name: settings.topic(spec.name) for spec in chosen}

    return create


@pytest.fixture(scope="session")
def blns() -> list[str]:
    """The Big List of Naughty Strings from ../shared/testdata (skips where it is absent)."""
    import json

    path = TESTDATA / "blns" / "blns.json"
    if not path.exists():
        pytest.skip(f"{path} is absent (a clone without ../shared)")
    strings: list[str] = json.loads(path.read_text())
    return strings
