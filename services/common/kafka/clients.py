"""Every Kafka client of the project — faust, aiokafka and kafka-python; producers, consumers and admin
clients — is built here, from the one set of `CPI_KAFKA_*` settings, so an operator configures TLS and
SASL one way for all of them and no process can connect less securely than configured.

A unit test scans the source: no module but this one constructs a Kafka client itself.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from services.common.settings import PlatformSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def ssl_context(settings: PlatformSettings) -> ssl.SSLContext | None:
    """The TLS context every client uses: the configured CA (else the system's), hostname checked, and
    the client certificate when one is configured. None when the protocol does not use TLS."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = settings.kafka_ssl_cafile
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.kafka_ssl_certfile is not None and settings.kafka_ssl_keyfile is not None:
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile))
    return context


def connection_config(settings: PlatformSettings) -> dict[str, Any]:
    """Bootstrap and security arguments, named as kafka-python and aiokafka both name them."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings validator makes sure
        config |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return config


def admin_client(settings: PlatformSettings, **config: Any) -> KafkaAdminClient:
    """A kafka-python admin client (topics, ACLs, configs, groups)."""
    return KafkaAdminClient(**{"client_id": "cpi-admin", "request_timeout_ms": 30_000, **config,
                               **connection_config(settings)})


def consumer(settings: PlatformSettings, *topics: str, **config: Any) -> KafkaConsumer:
    """A kafka-python consumer, subscribed to `topics` if any are given."""
    return KafkaConsumer(*topics, **config, **connection_config(settings))


def producer(settings: PlatformSettings, **config: Any) -> KafkaProducer:
    """A kafka-python producer; acks=all unless the caller says otherwise."""
    return KafkaProducer(**{"acks": "all", **config, **connection_config(settings)})


def async_producer(settings: PlatformSettings, **config: Any) -> AIOKafkaProducer:
    """An aiokafka producer (the HTTP edge's); acks=all unless the caller says otherwise."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(**{"acks": "all", **config, **connection_config(settings)})


def async_consumer(settings: PlatformSettings, *topics: str, **config: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer (`cpi bench`'s raw relay), subscribed to `topics` if any are given."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, **config, **connection_config(settings))


def faust_broker(settings: PlatformSettings) -> dict[str, Any]:
    """`broker` and `broker_credentials` for a faust app; its aiokafka driver passes the credentials to
    every consumer, producer and admin client it makes."""
    from faust.auth import SASLCredentials, SSLCredentials

    credentials: SASLCredentials | SSLCredentials | None = None
    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings validator makes sure
        # With a TLS context faust's SASL credentials mean SASL_SSL, without one SASL_PLAINTEXT.
        credentials = SASLCredentials(username=settings.kafka_sasl_username,
                                      password=settings.kafka_sasl_password.get_secret_value(),
                                      ssl_context=context, mechanism=settings.kafka_sasl_mechanism)
    elif context is not None:
        credentials = SSLCredentials(context)
    urls = ";".join(f"kafka://{server.strip()}" for server in settings.bootstrap.split(","))
    return {"broker": urls, "broker_credentials": credentials}
