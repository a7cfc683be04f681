"""The edge where finished e-mails leave: an SMTP server, or a mailbox folder of `.eml` files.

A `Mailer` takes a batch of `Outgoing` mails — each already flattened to the bytes that go on
the wire, with its envelope — and says what became of each: `sent` (the server answered 250),
`retry` (a transient failure: connection refused, timeout, a 4xx reply) or `failed` (a permanent
one: a 5xx reply to this message, a bad address). It never raises for one message's trouble, so
one bad message cannot hold up the others.
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


# 7-bit clean output (encoded headers, base64 or quoted-printable bodies): the same bytes suit
# every server, with or without 8BITMIME, so a mail is flattened once, when it is built.
WIRE_POLICY = SMTP.clone(cte_type="7bit")


@dataclass(frozen=True)
class Outgoing:
    """One e-mail ready to hand over: its bytes and its envelope (sender, every recipient)."""

    message: EmailMessage
    data: bytes
    sender: str
    recipients: tuple[str, ...]

    @classmethod
    def of(cls, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> Outgoing:
        return cls(message, message.as_bytes(policy=WIRE_POLICY), sender, tuple(recipients))

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", "")).strip()


@dataclass(frozen=True)
class Delivery:
    """What became of one e-mail, with the server's reply (or the error) in words."""

    status: Outcome
    reply: str


class Mailer(Protocol):
    """Hands a batch of e-mails over; one `Delivery` per e-mail, in the same order."""

    async def deliver(self, mails: Sequence[Outgoing]) -> list[Delivery]: ...


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

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.host:
            raise ValueError("SmtpMailer needs WANGJIAN_SMTP_HOST")
        self.settings = settings
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
            cert_bundle=str(s.ca_file) if s.ca_file else None,
            timeout=s.timeout_seconds,
            local_hostname=self.local_hostname,
        )

    async def deliver(self, mails: Sequence[Outgoing]) -> list[Delivery]:
        results: list[Delivery | None] = [None] * len(mails)
        queue = deque(enumerate(mails))
        workers = min(self.settings.pool_size, len(mails))
        await asyncio.gather(*(self._work(queue, results) for _ in range(workers)))
        return [r or Delivery("retry", "not attempted") for r in results]

    async def _work(
        self, queue: deque[tuple[int, Outgoing]], results: list[Delivery | None]
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
        self, client: aiosmtplib.SMTP | None, mail: Outgoing
    ) -> tuple[aiosmtplib.SMTP | None, Delivery]:
        try:
            # One deadline for the whole exchange (connecting included), so a server that
            # accepts the connection and then stalls cannot hold a batch past its lease.
            async with asyncio.timeout(self.settings.timeout_seconds):
                if client is None or not client.is_connected:
                    client = self._client()
                    await client.connect()
                refused, reply = await client.sendmail(mail.sender, mail.recipients, mail.data)
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

    async def deliver(self, mails: Sequence[Outgoing]) -> list[Delivery]:
        return [self._write(mail) for mail in mails]

    def _write(self, mail: Outgoing) -> Delivery:
        if not mail.message_id:
            return Delivery("failed", "no Message-ID header")
        path = self.folder / mailbox_file_name(mail.message_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(mail.data)
            # A resend replaces the file in one step: a reader never sees half a message.
            os.replace(partial, path)
        except OSError as exc:
            return Delivery("retry", f"cannot write {path}: {exc.strerror or exc}")
        return Delivery("sent", f"written to {path}")
