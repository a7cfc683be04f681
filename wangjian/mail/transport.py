"""The edge where finished e-mails leave: an SMTP server, or a mailbox folder of `.eml` files.

A `Mailer` takes a batch of `EmailMessage`s and says what became of each: `sent` (the server
answered 250), `retry` (a transient failure: connection refused, timeout, a 4xx reply) or
`failed` (a permanent one: a 5xx reply to this message, a bad address). It never raises for one
message's trouble, so one bad message cannot hold up the others.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib
from aiosmtplib import (
    SMTPDataError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)

from wangjian.settings import SmtpSettings

Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class Delivery:
    """What became of one e-mail, with the server's reply (or the error) in words."""

    status: Outcome
    reply: str


class Mailer(Protocol):
    """Hands a batch of e-mails over; one `Delivery` per e-mail, in the same order."""

    async def deliver(self, mails: Sequence[EmailMessage]) -> list[Delivery]: ...


def classify(exc: BaseException) -> Delivery:
    """Sort a sending error into retry (transient) or failed (permanent, this message's fault)."""
    if isinstance(exc, SMTPRecipientsRefused):
        reply = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        permanent = all(r.code >= 500 for r in exc.recipients)
        return Delivery("failed" if permanent else "retry", reply)
    if isinstance(exc, SMTPSenderRefused | SMTPRecipientRefused | SMTPDataError):
        return Delivery("failed" if exc.code >= 500 else "retry", f"{exc.code} {exc.message}")
    if isinstance(exc, SMTPResponseException):
        # Replies to the greeting, EHLO or AUTH are about the connection, not this message:
        # failing the message for them would lose mail to a misconfiguration or an outage.
        return Delivery("retry", f"{exc.code} {exc.message}")
    if isinstance(exc, ValueError):
        # aiosmtplib refuses an address it cannot put on the wire safely.
        return Delivery("failed", f"bad address: {exc}")
    if isinstance(exc, SMTPException | OSError | TimeoutError):
        return Delivery("retry", f"{type(exc).__name__}: {exc}".rstrip(": "))
    raise exc


class SmtpMailer:
    """Sends over SMTP with aiosmtplib: a few connections per batch, each reused for many mails."""

    def __init__(self, settings: SmtpSettings, *, envelope_from: str | None = None) -> None:
        if not settings.host:
            raise ValueError("SmtpMailer needs WANGJIAN_SMTP_HOST")
        self.settings = settings
        self.envelope_from = envelope_from
        # EHLO name computed once: aiosmtplib would otherwise ask DNS for the FQDN per connection.
        self.local_hostname = socket.gethostname() or "localhost"

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            use_tls=s.tls,
            start_tls=s.starttls,
            timeout=s.timeout_seconds,
            local_hostname=self.local_hostname,
        )

    async def deliver(self, mails: Sequence[EmailMessage]) -> list[Delivery]:
        results: list[Delivery | None] = [None] * len(mails)
        queue = deque(enumerate(mails))
        workers = min(self.settings.pool_size, len(mails))
        await asyncio.gather(*(self._work(queue, results) for _ in range(workers)))
        return [r or Delivery("retry", "not attempted") for r in results]

    async def _work(
        self, queue: deque[tuple[int, EmailMessage]], results: list[Delivery | None]
    ) -> None:
        """One pooled connection: take mails off the shared queue until it is empty."""
        client: aiosmtplib.SMTP | None = None
        try:
            while queue:
                index, mail = queue.popleft()
                client, results[index] = await self._send_one(client, mail)
        finally:
            if client is not None:
                await self._close(client)

    async def _send_one(
        self, client: aiosmtplib.SMTP | None, mail: EmailMessage
    ) -> tuple[aiosmtplib.SMTP | None, Delivery]:
        try:
            # One deadline for the whole exchange (connecting included), so a server that
            # accepts the connection and then stalls cannot hold a batch past its lease.
            async with asyncio.timeout(self.settings.timeout_seconds):
                if client is None or not client.is_connected:
                    client = self._client()
                    await client.connect()
                refused, reply = await client.send_message(mail, sender=self.envelope_from)
        except Exception as exc:
            delivery = classify(exc)
            if client is not None:
                # The connection's state after an error is unknown: start the next mail afresh.
                client.close()
            return None, delivery
        if refused:
            reply += " (refused: " + "; ".join(f"{a}: {r}" for a, r in refused.items()) + ")"
        return client, Delivery("sent", reply)

    async def _close(self, client: aiosmtplib.SMTP) -> None:
        try:
            async with asyncio.timeout(min(5.0, self.settings.timeout_seconds)):
                await client.quit()
        except (SMTPException, OSError, TimeoutError):
            client.close()


_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9@._-]")


def mailbox_file_name(message_id: str) -> str:
    """The `.eml` name for a Message-ID: the same message always lands in the same file."""
    return _UNSAFE_FILE_CHARS.sub("_", message_id.strip().strip("<>")) + ".eml"


class MailboxMailer:
    """Writes each e-mail to `<folder>/<message-id>.eml` (the embedded default: no server)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def deliver(self, mails: Sequence[EmailMessage]) -> list[Delivery]:
        return [self._write(mail) for mail in mails]

    def _write(self, mail: EmailMessage) -> Delivery:
        message_id = str(mail.get("Message-ID", ""))
        if not message_id:
            return Delivery("failed", "no Message-ID header")
        path = self.folder / mailbox_file_name(message_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(mail.as_bytes(policy=SMTP))
            # A resend replaces the file in one step: a reader never sees half a message.
            os.replace(partial, path)
        except OSError as exc:
            return Delivery("retry", f"cannot write {path}: {exc.strerror or exc}")
        return Delivery("sent", f"written to {path}")
