"""Where notifications go: an HTTPS webhook, an SMTP server, or a local outbox directory; and the routing table
that says which (a file, or the single-address settings as the simplest table)."""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import ValidationError

from schemas import DeliveryChannel, Team
from services.common.errors import ConfigurationError, CpiError
from services.common.files import write_private
from services.common.settings import NotifierSettings
from services.notifier.domain import (
    SIGNATURE_HEADER,
    EmailChannel,
    Notification,
    RoutingTable,
    WebhookChannel,
    load_routing_table,
    sign_webhook,
)


class DeliveryError(CpiError):
    """A notification could not be delivered this time."""


class Transport(Protocol):
    channel: DeliveryChannel

    def deliver(self, note: Notification) -> None: ...


def _recipient(note: Notification) -> str:
    if not isinstance(note.channel, EmailChannel):
        raise DeliveryError(f"a {note.channel.kind} channel cannot be mailed")
    return note.channel.email


def _email(note: Notification, sender: str) -> EmailMessage:
    """A plain-text message whose Message-ID is the notification's own, the same on every attempt, so a mail
    system (and the team) can tell a retried message from a second one."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = _recipient(note)
    message["Subject"] = note.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{note.notification_id}@cpi.local>"
    message.set_content(note.body)
    return message


class SmtpTransport:
    channel = DeliveryChannel.SMTP

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings

    def deliver(self, note: Notification) -> None:
        s = self._settings
        message = _email(note, s.mail_from)
        try:
            with smtplib.SMTP(s.smtp_host or "localhost", s.smtp_port, timeout=30) as smtp:
                if s.smtp_starttls:
                    # Required when configured: a server that does not offer it, or whose certificate does not
                    # verify (against CPI_SMTP_CAFILE, else the system's CAs), gets nothing.
                    smtp.starttls(context=ssl.create_default_context(cafile=s.smtp_cafile))
                if s.smtp_username and s.smtp_password:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP delivery failed: {type(exc).__name__}") from None


class OutboxTransport:
    """Local runs without a mail server: each message is an .eml file a person can open."""

    channel = DeliveryChannel.OUTBOX

    def __init__(self, directory: Path, sender: str) -> None:
        self._directory = directory
        self._sender = sender

    def deliver(self, note: Notification) -> None:
        path = self._directory / f"{note.notification_id}.eml"
        write_private(path, bytes(_email(note, self._sender)))


class WebhookTransport:
    """POSTs the WebhookAlert to the channel's URL, signed with the channel's secrets."""

    channel = DeliveryChannel.WEBHOOK

    def deliver(self, note: Notification) -> None:
        hook = note.channel
        if not isinstance(hook, WebhookChannel):
            raise DeliveryError(f"an {hook.kind} channel has no webhook")
        body = note.alert.model_dump_json().encode()
        secrets = [secret.get_secret_value().encode() for secret in hook.signing_secrets]
        headers = {"Content-Type": "application/json", "Idempotency-Key": note.notification_id,
                   SIGNATURE_HEADER: sign_webhook(body, int(time.time()), secrets)}
        try:
            response = httpx.post(hook.webhook, content=body, timeout=30, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook delivery failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryError(f"webhook answered {response.status_code}")


def transports_from(settings: NotifierSettings) -> dict[str, Transport]:
    """Per kind of channel: webhooks; mail through SMTP if a host is set, else to the outbox."""
    mail: Transport = SmtpTransport(settings) if settings.smtp_host else OutboxTransport(settings.outbox,
                                                                                         settings.mail_from)
    return {EmailChannel.kind: mail, WebhookChannel.kind: WebhookTransport()}


# The single-address settings that a routing table replaces; both at once would leave one silently unused.
_SINGLE_ADDRESS_SETTINGS = ("crime_desk_email", "safeguarding_email", "crime_desk_webhook", "safeguarding_webhook",
                            "crime_desk_webhook_secrets", "safeguarding_webhook_secrets")
SINGLE_ADDRESS_VERSION = "single-address-settings"


def routing_from(settings: NotifierSettings, environ: Mapping[str, str] | None = None) -> RoutingTable:
    """The routing table CPI_ROUTING_TABLE names (webhook secrets from the environment), or, without one, the
    simplest table: the crime desk told of crime-desk decisions and the safeguarding team of safeguarding
    ones, each at its CPI_..._WEBHOOK if set, else at its CPI_..._EMAIL."""
    if settings.routing_table is not None:
        doubled = sorted(name for name in _SINGLE_ADDRESS_SETTINGS if name in settings.model_fields_set)
        if doubled:
            raise ConfigurationError(
                f"CPI_ROUTING_TABLE is set, so {', '.join('CPI_' + n.upper() for n in doubled)} would be ignored: "
                "give those teams' addresses in the table instead")
        return load_routing_table(settings.routing_table, os.environ if environ is None else environ,
                                  settings.mail_allowed_domains)
    teams, environ = [], {}
    for team, email, url, secrets in (
        (Team.CRIME_DESK, settings.crime_desk_email, settings.crime_desk_webhook, settings.crime_desk_webhook_secrets),
        (Team.SAFEGUARDING, settings.safeguarding_email, settings.safeguarding_webhook,
         settings.safeguarding_webhook_secrets),
    ):
        names = [f"CPI_{team.value.upper()}_WEBHOOK_SECRETS_{index + 1}" for index in range(len(secrets))]
        environ |= {name: secret.get_secret_value() for name, secret in zip(names, secrets, strict=True)}
        channel = {"webhook": url, "secrets": names} if url else {"email": email}
        teams.append({"name": team.value, "when": {"outcomes": [team.value]}, "channels": [channel]})
    table = {"version": SINGLE_ADDRESS_VERSION, "default_team": Team.SAFEGUARDING.value, "teams": teams}
    try:
        return RoutingTable.model_validate(table, context={"environ": environ,
                                                           "allowed_domains": settings.mail_allowed_domains})
    except ValidationError as error:
        raise ConfigurationError(f"the single-address settings: {error}") from None
