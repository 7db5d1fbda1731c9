"""Settings, one pydantic-settings class per service, all read from `CPI_` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    """What every process needs: where Kafka is, where data lives, how to log."""

    # Inputs hidden in errors: a refused setting must not print a password next to it.
    model_config = SettingsConfigDict(env_prefix="CPI_", extra="ignore", frozen=True, hide_input_in_errors=True)

    kafka_bootstrap: str | None = Field(
        default=None, description="An existing cluster; unset means the local broker `cpi kafka start` runs."
    )
    local_kafka_port: int = Field(default=9092, description="The local broker's listener, when no cluster is set.")
    local_controller_port: int = 9093
    local_kafka_security: Literal["secured", "open"] = Field(
        default="secured", description="The local broker: TLS + SCRAM + ACLs, or `open` (PLAINTEXT) for experiments."
    )
    kafka_env_dir: Path | None = Field(
        default=None, description="admin.env and principals/*.env of the cluster CPI_KAFKA_BOOTSTRAP names."
    )
    # How every Kafka client authenticates (services.common.kafka.clients builds them all from these).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(default=None, description="PEM CA bundle; unset: the system's.")
    kafka_ssl_certfile: Path | None = Field(default=None, description="PEM client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = None
    topic_prefix: str = Field(default="", description="Prepended to every topic name (tests, shared clusters).")
    replication_factor: int = Field(default=1, ge=1, description="3 in clusters.")
    min_insync_replicas: int = Field(default=1, ge=1, description="2 in clusters.")
    data_dir: Path = Path(".cpi")
    keys_dir: Path | None = Field(
        default=None, description="The folder of key files, one per purpose (`cpi keys show`); default <data_dir>/keys."
    )
    key_files: dict[str, Path] = Field(
        default={}, description="Per-key file overrides by key name, e.g. {\"transport-public\": \"/run/x.json\"}."
    )
    create_missing_keys: bool = Field(
        default=True, description="Create a missing key on first local run; false in deployments, which mount keys."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable lines when stderr is a terminal, JSON otherwise (for collectors)."
    )
    http_host: str = "127.0.0.1"
    worker_ports: dict[str, int] = Field(
        default={"intake": 9101, "sanitiser": 9102, "router": 9103, "notifier": 9104},
        description="Where each worker serves /metrics, /healthz and /readyz (JSON in CPI_WORKER_PORTS).",
    )

    @model_validator(mode="after")
    def _kafka_security_coheres(self) -> PlatformSettings:
        """Refuse combinations that would quietly connect less securely than the operator asked."""
        protocol = self.kafka_security_protocol
        sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"CPI_KAFKA_SECURITY_PROTOCOL={protocol} needs CPI_KAFKA_SASL_USERNAME and "
                             "CPI_KAFKA_SASL_PASSWORD")
        if not sasl and (self.kafka_sasl_username or self.kafka_sasl_password):
            raise ValueError(f"CPI_KAFKA_SASL_USERNAME/PASSWORD are set but CPI_KAFKA_SECURITY_PROTOCOL={protocol} "
                             "does not authenticate with SASL: use SASL_SSL")
        if sasl and self.kafka_sasl_mechanism == "PLAIN" and not tls:
            raise ValueError("CPI_KAFKA_SASL_MECHANISM=PLAIN sends the password in clear: it needs "
                             "CPI_KAFKA_SECURITY_PROTOCOL=SASL_SSL")
        if not tls and (self.kafka_ssl_cafile or self.kafka_ssl_certfile or self.kafka_ssl_keyfile):
            raise ValueError(f"CPI_KAFKA_SSL_* files are set but CPI_KAFKA_SECURITY_PROTOCOL={protocol} does not "
                             "use TLS: use SSL or SASL_SSL")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("CPI_KAFKA_SSL_CERTFILE and CPI_KAFKA_SSL_KEYFILE go together (mutual TLS)")
        return self

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.local_kafka_port}"

    def key_file(self, name: str, default_filename: str) -> Path:
        """Where key `name` is kept: its override, else `default_filename` in the keys folder."""
        return self.key_files.get(name) or (self.keys_dir or self.data_dir / "keys") / default_filename

    def topic(self, name: str) -> str:
        return self.topic_prefix + name


class WorkerSettings(PlatformSettings):
    """A faust worker: its group, and the port of its /metrics, /healthz and /readyz."""

    worker_port: int | None = Field(default=None, description="This worker's port; default from worker_ports.")
    # One ListOffsets request per interval for the worker's own partitions: cheap, and the stage latency's
    # resolution (services/common/kafka/progress.py).
    progress_interval_seconds: float = Field(
        default=5.0, gt=0.0, le=300.0,
        description="How often a worker reads its input partitions' end offsets, for consumer lag and stage latency.")
    # How soon a dead worker's partitions move on: its group holds them until the session times out (faust's
    # default, 60 s, stalled a stage a minute per kill). The broker allows 6 s at least by default.
    session_timeout_seconds: float = Field(
        default=10.0, ge=6.0, le=300.0, description="Consumer group session timeout.")
    heartbeat_interval_seconds: float = Field(
        default=1.0, gt=0.0, le=60.0, description="Consumer heartbeats; at most a third of the session timeout.")
    group_instance_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Static group membership: a restarted worker with the same id takes its partitions back "
                    "at once, without a rebalance. Unique per replica (in Kubernetes, the pod's name).")

    # Batches (see services.common.kafka.stage): one acknowledgement round trip per batch, not per record.
    batch_max_records: int = Field(
        default=64, ge=1, le=10_000, description="A stage takes at most this many inputs per batch (1: one by one).")
    batch_max_wait_ms: float = Field(
        default=5.0, gt=0, le=10_000, description="...or what arrived within this long of the batch's first.")

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> WorkerSettings:
        if self.heartbeat_interval_seconds * 3 > self.session_timeout_seconds:
            raise ValueError("heartbeat_interval_seconds must be at most a third of session_timeout_seconds")
        return self


class IntakeSettings(WorkerSettings):
    api_port: int = 8080
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=60, ge=1, description="Per real client address, and per partner.")
    csrf_secret: SecretStr | None = None
    edge_metrics_host: str | None = Field(default=None, description="The edge's /metrics listener; default http_host.")
    edge_metrics_port: int = Field(default=9100, description="Internal only: never the form's port.")
    trusted_proxies: list[str] = Field(
        default=[], description="Addresses/CIDRs whose X-Forwarded-For is believed (JSON list); none by default.",
    )
    edge_header_timeout_seconds: float = Field(default=10.0, gt=0, description="Time to send a request's headers.")
    edge_body_timeout_seconds: float = Field(default=30.0, gt=0, description="Time to send a request's body.")
    edge_max_concurrency: int = Field(default=512, ge=1, description="Connections and requests at once; then 503.")
    api_keys_file: Path | None = Field(
        default=None, description="JSON {partner id: SHA-256 hex of its API key}; unset, the API takes no partner.",
    )
    api_key: SecretStr | None = Field(default=None, description="The partner API key `cpi submit` sends.")


def _default_hold_threshold() -> float:
    # Imported when a sanitiser's settings are made, not when any process imports settings: the residual
    # check brings the scrubber with it, which the edge, router and notifier have no business loading.
    from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD

    return DEFAULT_HOLD_THRESHOLD


class SanitiserSettings(WorkerSettings):
    sealed_store_url: str | None = Field(
        default=None, description="sqlite:///path or postgresql://...; default <data_dir>/sealed.db"
    )
    retention_years: int = Field(default=6, ge=1, le=100, description="MoPI-style review period for sealed records.")
    # At most 1.0 (the highest score), so no setting can switch holding off altogether.
    hold_threshold: float = Field(
        default_factory=_default_hold_threshold, gt=0.0, le=1.0,
        description="Residual-risk score at which intel is held for the Intelligence Unit instead of released.",
    )

    # Mixing (see services.common.kafka.stage.Mixing): intel is released in shuffled batches of at least
    # this many, or after this long, so the order reports arrive in does not survive the sanitiser. The
    # information is non-urgent by design (urgent reports are told to call 999), so minutes are fine.
    # 64: a bigger mix hides each intel among more, and under a backlog it is also the sanitiser's batch (one
    # round trip per release); a quiet day is released by age either way.
    release_min_records: int = Field(
        default=64, ge=1, le=10_000,
        description="Release sanitised intel once this many are waiting (1 releases each at once: no mixing).",
    )
    release_max_wait_seconds: float = Field(
        default=60.0, gt=0, le=3600,
        description="...or once the oldest has waited this long, whichever comes first.",
    )

    @property
    def sealed_store(self) -> str:
        return self.sealed_store_url or f"sqlite:///{self.data_dir / 'sealed.db'}"


class RouterSettings(WorkerSettings):
    rules_path: Path | None = Field(default=None, description="Defaults to the rules shipped with the router.")
    model_path: Path | None = Field(default=None, description="The second opinion; defaults to the shipped one.")
    second_opinion: bool = Field(default=True, description="Score each decision with the model and flag it for review.")
    source_evaluation: Literal[1, 2, 3] = 2


class NotifierSettings(WorkerSettings):
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Required when true: no STARTTLS, or a certificate "
                                "that does not verify, and nothing is sent.")
    smtp_cafile: Path | None = Field(default=None, description="PEM CA bundle for the SMTP server's certificate.")
    routing_table: Path | None = Field(
        default=None, description="The alert routing table (docs/alert-routing.md); unset, the single-address "
        "settings below are the simplest table.")
    mail_from: str = "cpi-notifier@localhost"
    crime_desk_email: str = "crime-desk@localhost"
    safeguarding_email: str = "safeguarding@localhost"
    # A mistyped address must not send intelligence outside the force: every recipient's domain is on this list
    # (JSON list; a domain also admits its subdomains). Empty admits any (the local default's localhost).
    mail_allowed_domains: list[str] = Field(default=[], max_length=100)
    crime_desk_webhook: str | None = None
    safeguarding_webhook: str | None = None
    # Each webhook's signing secrets (JSON list): one, or two while the team rotates (both sign every request).
    crime_desk_webhook_secrets: list[SecretStr] = Field(default=[], max_length=2)
    safeguarding_webhook_secrets: list[SecretStr] = Field(default=[], max_length=2)
    outbox_dir: Path | None = Field(default=None, description="Where mail goes when no SMTP host is set.")
    max_attempts: int = Field(default=8, ge=1, le=100, description="Delivery attempts before dead-lettering.")
    retry_after_seconds: float = Field(
        default=10.0, gt=0, description="Wait before the first retry; doubles each time, at most 15 minutes."
    )
    delivery_ledger_url: str | None = Field(
        default=None, description="sqlite:///path (one replica) or postgresql://... (shared by several replicas); "
        "default <data_dir>/notifier/ledger.db")
    delivery_concurrency: int = Field(
        default=8, ge=1, le=64, description="Decisions of a batch whose notifications are sent at once (their "
        "sends and ledger writes overlap); revisions of one intel are still told in order.")
    # A claim must outlive the longest send (the transports time out after 30 s), or a second replica may send too.
    delivery_lease_seconds: float = Field(
        default=120.0, ge=1.0, le=3600.0, description="How long a claim to send a notification holds.")

    @model_validator(mode="after")
    def _recipients_within_the_allowed_domains(self) -> NotifierSettings:
        allowed = [domain.strip().lower().strip(".") for domain in self.mail_allowed_domains]
        if not allowed or self.routing_table is not None:  # the table's addresses are checked where it is read
            return self
        for name, address in (("crime_desk_email", self.crime_desk_email),
                              ("safeguarding_email", self.safeguarding_email)):
            domain = address.rpartition("@")[2].strip().lower()
            if not any(domain == ok or domain.endswith("." + ok) for ok in allowed):
                raise ValueError(f"{name} is not in CPI_MAIL_ALLOWED_DOMAINS: mail to {domain!r} would leave "
                                 "the domains intelligence may go to")
        return self

    @model_validator(mode="after")
    def _webhooks_are_signed_and_private(self) -> NotifierSettings:
        for team, url, secrets in (("crime_desk", self.crime_desk_webhook, self.crime_desk_webhook_secrets),
                                   ("safeguarding", self.safeguarding_webhook, self.safeguarding_webhook_secrets)):
            if url is None:
                continue
            parsed = urlsplit(url)
            loopback = parsed.hostname in {"127.0.0.1", "::1", "localhost"}
            if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
                raise ValueError(f"the {team} webhook must be https:// (plain http only to this machine)")
            if not secrets or any(len(secret.get_secret_value()) < 32 for secret in secrets):
                raise ValueError(f"the {team} webhook needs CPI_{team.upper()}_WEBHOOK_SECRETS: one or two "
                                 "secrets of at least 32 characters, so its receiver can tell a real alert")
        return self

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def delivery_ledger(self) -> str:
        return self.delivery_ledger_url or f"sqlite:///{self.data_dir / 'notifier' / 'ledger.db'}"
