"""Where notifications go: an HTTPS webhook, an SMTP server, or a local outbox directory."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import SecretStr

from schemas import DeliveryChannel, Team
from services.common.errors import CpiError
from services.common.files import write_private
from services.common.settings import NotifierSettings
from services.notifier.domain import SIGNATURE_HEADER, Notification, sign_webhook


class DeliveryError(CpiError):
    """A notification could not be delivered this time."""


class Transport(Protocol):
    channel: DeliveryChannel

    def deliver(self, note: Notification) -> None: ...


def _email(note: Notification, sender: str, recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = note.subject
    message["Message-ID"] = f"<{note.notification_id}@cpi.local>"
    message.set_content(note.body)
    return message


class SmtpTransport:
    channel = DeliveryChannel.SMTP

    def __init__(self, settings: NotifierSettings, recipients: dict[Team, str]) -> None:
        self._settings = settings
        self._recipients = recipients

    def deliver(self, note: Notification) -> None:
        s = self._settings
        try:
            with smtplib.SMTP(s.smtp_host or "localhost", s.smtp_port, timeout=30) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_username and s.smtp_password:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                smtp.send_message(_email(note, s.mail_from, self._recipients[note.team]))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP delivery failed: {type(exc).__name__}") from None


class OutboxTransport:
    """Local runs without a mail server: each message is an .eml file a person can open."""

    channel = DeliveryChannel.OUTBOX

    def __init__(self, directory: Path, sender: str, recipients: dict[Team, str]) -> None:
        self._directory = directory
        self._sender = sender
        self._recipients = recipients

    def deliver(self, note: Notification) -> None:
        path = self._directory / f"{note.notification_id}.eml"
        write_private(path, bytes(_email(note, self._sender, self._recipients[note.team])))


class WebhookTransport:
    channel = DeliveryChannel.WEBHOOK

    def __init__(self, url: str, secrets: Sequence[SecretStr]) -> None:
        self._url = url
        self._secrets = [secret.get_secret_value().encode() for secret in secrets]

    def deliver(self, note: Notification) -> None:
        body = note.alert.model_dump_json().encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": note.notification_id,
                   SIGNATURE_HEADER: sign_webhook(body, int(time.time()), self._secrets)}
        try:
            response = httpx.post(self._url, content=body, timeout=30, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook delivery failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryError(f"webhook answered {response.status_code}")


def transports_from(settings: NotifierSettings) -> dict[Team, Transport]:
    """Per team: its webhook if configured, else mail through SMTP if a host is set, else the outbox."""
    recipients = {Team.CRIME_DESK: settings.crime_desk_email, Team.SAFEGUARDING: settings.safeguarding_email}
    mail: Transport = (
        SmtpTransport(settings, recipients) if settings.smtp_host
        else OutboxTransport(settings.outbox, settings.mail_from, recipients)
    )
    hooks = {Team.CRIME_DESK: (settings.crime_desk_webhook, settings.crime_desk_webhook_secrets),
             Team.SAFEGUARDING: (settings.safeguarding_webhook, settings.safeguarding_webhook_secrets)}
    return {team: WebhookTransport(url, secrets) if url else mail for team, (url, secrets) in hooks.items()}
