"""Putting an e-mail together with the `email` package: safe headers, both parts, attachments.

Everything that reaches a header from input (subjects built from shop names, people's names)
passes `clean_header` first: CR, LF and the other control characters can never start a header
of their own. The Message-ID is derived from the message's key, so a resend is the same mail.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wangjian.campaign import CampaignConfig
    from wangjian.settings import Settings

# C0 and C1 controls, line and paragraph separators, zero-width and bidirectional overrides:
# none belongs in a header, and some would let input forge headers or disguise text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+")
_SPACES = re.compile(r"\s{2,}")
# Deliberately strict (ASCII, dotted domain): an address we cannot vouch for is not sent to.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

SUBJECT_LIMIT = 200


class BadAddress(ValueError):
    """An e-mail address that is malformed or could smuggle in a header."""


def clean_header(text: str, *, limit: int = SUBJECT_LIMIT) -> str:
    """Make input safe for one header line: controls become spaces, runs of space collapse."""
    flat = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def checked_address(address: str) -> str:
    """The address itself, or `BadAddress` when it is not one we are willing to send to."""
    if not _ADDRESS.match(address):
        raise BadAddress(f"not a valid e-mail address: {address!r}")
    return address


def mailbox(address: str, name: str | None = None) -> Address:
    """A header address with an optional display name (encoded per RFC 2047 when not ASCII)."""
    local, domain = checked_address(address).split("@", 1)
    return Address(display_name=clean_header(name or "", limit=120), username=local, domain=domain)


def parse_sender(value: str, default_name: str | None = None) -> Address:
    """`WANGJIAN_MAIL_FROM` may be a bare address or `Name <address>`."""
    name, address = parseaddr(value)
    return mailbox(address, name or default_name)


def sender_address(settings: Settings, config: CampaignConfig) -> Address:
    """From: `WANGJIAN_MAIL_FROM`, or else the joint-meeting office's own address."""
    office = config.campaign.office
    if settings.mail_from:
        return parse_sender(settings.mail_from, default_name=office.name)
    return mailbox(office.email, office.name)


def message_id_for(key: str, domain: str) -> str:
    """The Message-ID of a message key: the same key always gives the same id."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def build_email(
    *,
    message_id: str,
    sender: Address,
    to: Address,
    cc: Sequence[Address],
    subject: str,
    text: str,
    html: str,
    date: datetime,
    language: str,
    attachments: Sequence[Attachment] = (),
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart e-mail: text and HTML alternatives, then any attachments."""
    mail = EmailMessage()
    mail["Message-ID"] = message_id
    mail["Date"] = format_datetime(date)
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = list(cc)
    mail["Reply-To"] = sender
    mail["Subject"] = clean_header(subject)
    # RFC 3834: tells autoresponders not to answer, and mail filters what this is.
    mail["Auto-Submitted"] = "auto-generated"
    for name, value in (extra_headers or {}).items():
        mail[name] = clean_header(value)
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    for attachment in attachments:
        mail.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=clean_header(attachment.filename, limit=120),
        )
    # Set last: making the message multipart moves Content-* headers into the first part.
    mail["Content-Language"] = language
    return mail
