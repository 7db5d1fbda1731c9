"""structlog JSON logging for every process, with provenance removed before anything is written."""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Keys that name or describe who shared information. Any log event carrying one of them,
# at any depth, has it replaced: provenance never reaches a log line, whoever logs it.
PROVENANCE_KEYS = frozenset(
    {
        "source",
        "sealed_submission",
        "source_name",
        "source_email",
        "source_phone",
        "source_role",
        "source_organisation",
        "organisation",
        "organisation_type",
        "email",
        "phone",
        "recontact_ok",
        "client",
        "client_ip",
        "remote_addr",
        "user_agent",
    }
)
REMOVED = "[provenance removed]"


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REMOVED if k in PROVENANCE_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def drop_provenance(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace every provenance key, however deeply nested."""
    for key in list(event_dict):
        event_dict[key] = REMOVED if key in PROVENANCE_KEYS else _scrub(event_dict[key])
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_provenance,
    ]


# Libraries whose INFO lines (faust's start-up tables, each HTTP request, uvicorn's banner) crowd a person's
# terminal: there they speak from WARNING up, unless debug is asked for. Collectors reading JSON still get them.
_CHATTY_ON_A_TERMINAL = ("faust", "mode", "httpx", "httpcore", "uvicorn.error", "aiohttp")


def resolved_format(fmt: str) -> str:
    """`auto` is `console` when stderr is a terminal (a person reading) and `json` otherwise (a collector)."""
    if fmt != "auto":
        return fmt
    isatty = getattr(sys.stderr, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def logging_config(level: str = "info", fmt: str = "auto") -> dict[str, Any]:
    """A logging.dictConfig that sends stdlib loggers (faust, aiokafka, uvicorn) through structlog."""
    fmt = resolved_format(fmt)
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    chatty = "NOTSET" if fmt == "json" or level == "debug" else "WARNING"  # NOTSET: the root's level
    quiet = {name: {"level": chatty} for name in _CHATTY_ON_A_TERMINAL}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "structlog", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # Access logs carry client addresses and paths: never written.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "aiokafka": {"level": "WARNING"},
            "kafka": {"level": "WARNING"},
            **quiet,
        },
    }


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger once, for the whole process."""
    logging.config.dictConfig(logging_config(level, fmt))
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
