"""A real SMTP server (aiosmtpd) for tests: it keeps every message it receives, and whether it came over TLS."""

from __future__ import annotations

import email
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from services.common.kafka.broker import free_port


@dataclass
class Inbox:
    """What the server received: each envelope (rcpt_tos, content) and whether its session was inside TLS."""

    messages: list[Any] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        self.over_tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        """The messages sent to `address`, parsed."""
        return [email.message_from_bytes(env.content) for env in self.messages if address in env.rcpt_tos]


@contextmanager
def smtp_server(tls_context: ssl.SSLContext | None = None) -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on loopback (its port and inbox); with `tls_context` it requires STARTTLS."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=tls_context,
                            require_starttls=tls_context is not None)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
