"""Kafka principals' client settings as env files: `admin.env` for the administrator and
`principals/<name>.env` for each service principal, in the `CPI_KAFKA_*` variables the settings read.

An operator runs `set -a; . .cpi/kafka/admin.env` and every `cpi` command (or Kafka tool) connects as the
administrator; `cpi up` starts each process with its own principal's file. The local broker writes them;
for a cluster, CPI_KAFKA_ENV_DIR names a folder of the same shape.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from services.common.errors import CpiError
from services.common.files import write_private
from services.common.settings import PlatformSettings

ADMIN_ENV = "admin.env"
PRINCIPALS_DIR = "principals"
# Every variable that says how a client connects; an env file fully decides them, whatever the
# surrounding environment holds (a worker must not inherit the administrator's password).
SECURITY_VARIABLES = (
    "CPI_KAFKA_BOOTSTRAP",
    "CPI_KAFKA_SECURITY_PROTOCOL",
    "CPI_KAFKA_SASL_MECHANISM",
    "CPI_KAFKA_SASL_USERNAME",
    "CPI_KAFKA_SASL_PASSWORD",
    "CPI_KAFKA_SSL_CAFILE",
    "CPI_KAFKA_SSL_CERTFILE",
    "CPI_KAFKA_SSL_KEYFILE",
)

S = TypeVar("S", bound=PlatformSettings)


class EnvFileError(CpiError):
    """An env file is missing or not of the form KEY=value."""


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """KEY=value lines, shell-quoted, private to the owner (`. file` in a shell reads them)."""
    write_private(path, "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()).encode())


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file written by `write_env_file` (comments and blank lines skipped)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError as exc:
        raise EnvFileError(f"{path} does not exist") from exc
    values = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line)
        key, equals, value = words[0].partition("=") if len(words) == 1 else ("", "", "")
        if not equals or not key:
            raise EnvFileError(f"{path}:{number} is not KEY=value")
        values[key] = value
    return values


def security_environment(base: Mapping[str, str], env_file: Mapping[str, str]) -> dict[str, str]:
    """`base` (a process environment) with its Kafka connection variables replaced by the file's."""
    return {**{k: v for k, v in base.items() if k not in SECURITY_VARIABLES}, **env_file}


def with_connection(settings: S, env_file: Mapping[str, str]) -> S:
    """`settings` with its Kafka connection exactly the env file's (unset variables unset); the rest kept."""
    fields: dict[str, object] = {name.removeprefix("CPI_").lower(): None for name in SECURITY_VARIABLES}
    fields["kafka_security_protocol"] = "PLAINTEXT"
    fields["kafka_sasl_mechanism"] = "SCRAM-SHA-512"
    fields |= {key.removeprefix("CPI_").lower(): value for key, value in env_file.items()
               if key in SECURITY_VARIABLES}
    # Validated again (not model_copy), so a bad file fails as a bad environment would.
    return type(settings).model_validate({**settings.model_dump(), **fields})


def env_dir(settings: PlatformSettings) -> Path:
    """Where the principals' env files are: CPI_KAFKA_ENV_DIR for a cluster, else the local broker's folder."""
    if settings.kafka_bootstrap and settings.kafka_env_dir is not None:
        return settings.kafka_env_dir
    return settings.data_dir / "kafka"


def principal_env_file(folder: Path, principal: str) -> Path:
    return folder / PRINCIPALS_DIR / f"{principal}.env"


def admin_settings(settings: PlatformSettings) -> PlatformSettings:
    """The administrator's settings: admin.env's connection when there is one, else `settings` as given
    (an operator who sourced admin.env, or an open broker)."""
    path = env_dir(settings) / ADMIN_ENV
    if not path.exists():
        return settings
    return with_connection(settings, read_env_file(path))
