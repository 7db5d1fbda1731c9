"""Kafka connection settings and the one client factory (no broker: settings, configs and the source)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.kafka import clients
from services.common.kafka.principals import SECURITY_VARIABLES, read_env_file, security_environment, write_env_file
from services.common.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[3]
FACTORY = ROOT / "services" / "common" / "kafka" / "clients.py"
# A Kafka client built by hand, or a faust app given its broker by hand, would skip the CPI_KAFKA_* settings.
_CONSTRUCTION = re.compile(
    r"\b(KafkaAdminClient|KafkaConsumer|KafkaProducer|AIOKafkaProducer|AIOKafkaConsumer|AIOKafkaAdminClient)\s*\("
    r"|\bbroker=(?!=)|\bfaust\.App\s*\("
)


@pytest.fixture(autouse=True)
def _no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests set every connection variable themselves (the session may have the broker's admin's)."""
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_no_module_but_the_factory_constructs_a_kafka_client() -> None:
    """Every producer, consumer, admin client and faust broker in services/ and tests/ comes from
    services.common.kafka.clients, so none can connect without the configured TLS and SASL."""
    offenders = []
    for path in sorted([*(ROOT / "services").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        if path in (FACTORY, Path(__file__).resolve()):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if _CONSTRUCTION.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
    stage = (ROOT / "services" / "common" / "kafka" / "stage.py").read_text()
    assert "**faust_broker(settings)" in stage


def test_sasl_over_tls_gives_every_library_the_same_login_and_a_hostname_checking_context(tmp_path: Path) -> None:
    """SASL_SSL settings become kafka-python/aiokafka arguments and faust credentials with the username,
    the password's value, the mechanism and one TLS context that checks the broker's name."""
    settings = PlatformSettings(kafka_bootstrap="a:1,b:2", kafka_security_protocol="SASL_SSL",
                                kafka_sasl_username="cpi-router", kafka_sasl_password="s3cret")
    config = clients.connection_config(settings)
    assert {k: config[k] for k in ("bootstrap_servers", "security_protocol", "sasl_mechanism",
                                   "sasl_plain_username", "sasl_plain_password")} == {
        "bootstrap_servers": "a:1,b:2", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "cpi-router", "sasl_plain_password": "s3cret"}
    context = config["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    faust = clients.faust_broker(settings)
    assert faust["broker"] == "kafka://a:1;kafka://b:2"
    credentials = faust["broker_credentials"]
    assert (credentials.protocol.value, credentials.mechanism.value, credentials.username,
            credentials.password) == ("SASL_SSL", "SCRAM-SHA-512", "cpi-router", "s3cret")


def test_plaintext_settings_give_no_credentials() -> None:
    """The default (an open broker) sends no login and uses no TLS."""
    settings = PlatformSettings(kafka_bootstrap="h:1")
    assert clients.connection_config(settings) == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}
    assert clients.faust_broker(settings)["broker_credentials"] is None


@pytest.mark.parametrize(("fields", "says"), [
    ({"kafka_security_protocol": "SASL_SSL"}, "needs CPI_KAFKA_SASL_USERNAME"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u",
      "kafka_sasl_password": "p"}, "PLAIN sends the password in clear"),
    ({"kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "does not authenticate with SASL"),
    ({"kafka_ssl_cafile": "/ca.pem"}, "does not use TLS"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/c.pem"}, "go together"),
    ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
])
def test_a_bad_combination_of_kafka_settings_is_refused_with_a_clear_error(fields: dict[str, str], says: str) -> None:
    """Settings that would connect less securely than asked (PLAIN without TLS, a login that would not be
    used) or cannot work are refused, saying which variable to change, and never echo the password."""
    with pytest.raises(ValidationError) as raised:
        PlatformSettings(**fields)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert "p'" not in str(raised.value) and "input_value" not in str(raised.value)


def test_plain_over_tls_is_accepted() -> None:
    """PLAIN is allowed where TLS protects it."""
    settings = PlatformSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN",
                                kafka_sasl_username="u", kafka_sasl_password="p")
    assert clients.connection_config(settings)["sasl_mechanism"] == "PLAIN"


def test_env_files_are_private_and_replace_every_connection_variable(tmp_path: Path) -> None:
    """An env file is 0600 in a 0700 folder and reads back as written (shell quoting included); a process
    started with one keeps nothing of the surrounding Kafka connection (no inherited admin password)."""
    path = tmp_path / "kafka" / "principals" / "cpi-edge.env"
    written = {"CPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CPI_KAFKA_SASL_USERNAME": "cpi-edge",
               "CPI_KAFKA_SASL_PASSWORD": "a b'c", "CPI_KAFKA_SSL_CAFILE": "/x y/ca.pem"}
    write_env_file(path, written)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert read_env_file(path) == written
    surrounding = {"PATH": "/bin", "CPI_KAFKA_SASL_USERNAME": "cpi-admin", "CPI_KAFKA_SSL_KEYFILE": "/admin.key"}
    assert security_environment(surrounding, written) == {"PATH": "/bin", **written}
