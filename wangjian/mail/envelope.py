"""Putting an e-mail together with the `email` package: safe headers, both parts, attachments.

Everything that reaches a header from input (subjects built from shop names, people's names)
passes `clean_header` first: CR, LF and the other control characters can never start a header
of their own. The Message-ID is derived from the message's key, so a resend is the same mail.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, parseaddr, quote
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
# Bodies are chosen 7-bit clean (quoted-printable or base64) so one flattening suits any server.
BUILD_POLICY = default.clone(cte_type="7bit")


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
    mail = EmailMessage(policy=BUILD_POLICY)
    headers = [
        ("Message-ID", message_id),
        ("Date", format_datetime(date)),
        ("From", encode_addresses("From", [sender])),
        ("To", encode_addresses("To", [to])),
        ("Cc", encode_addresses("Cc", cc) if cc else None),
        ("Reply-To", encode_addresses("Reply-To", [sender])),
        ("Subject", encode_text("Subject", clean_header(subject))),
        # RFC 3834: tells autoresponders not to answer, and mail filters what this is.
        ("Auto-Submitted", "auto-generated"),
        *(
            (name, encode_text(name, clean_header(value)))
            for name, value in (extra_headers or {}).items()
        ),
    ]
    for name, value in headers:
        if value is not None:
            mail.set_raw(name, value)
    mail.set_raw("MIME-Version", "1.0")
    # Boundaries chosen here (from the Message-ID, with "=_", which base64 bodies cannot
    # contain): left to the generator, each would cost a regex compiled per mail.
    token = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
    alternatives = [_text("plain", text), _text("html", html)]
    if attachments:
        inner = _multipart(
            EmailMessage(policy=BUILD_POLICY), "alternative", f"=_alt_{token}", alternatives
        )
        _multipart(mail, "mixed", f"=_mix_{token}", [inner, *map(_attachment, attachments)])
    else:
        _multipart(mail, "alternative", f"=_alt_{token}", alternatives)
    mail.set_raw("Content-Language", language)
    return mail


# The MIME parts are assembled from raw headers: the content manager would parse and re-fold
# every Content-* header, which is most of the cost of building a message.


def _text(subtype: str, content: str) -> EmailMessage:
    part = EmailMessage(policy=BUILD_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", "base64")
    part.set_payload(base64.encodebytes(content.encode("utf-8")).decode("ascii"))
    return part


def _multipart(
    container: EmailMessage, subtype: str, boundary: str, parts: list[EmailMessage]
) -> EmailMessage:
    container.set_raw("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')
    container.set_payload(parts)  # type: ignore[arg-type]
    return container


def _attachment(attachment: Attachment) -> EmailMessage:
    part = EmailMessage(policy=BUILD_POLICY)
    part.set_content(
        attachment.content,
        maintype=attachment.maintype,
        subtype=attachment.subtype,
        filename=clean_header(attachment.filename, limit=120),
    )
    return part


# Headers are encoded here, once, with the classic `email.header.Header` (RFC 2047 encoded words,
# folded at 76 columns) and stored with `set_raw`: the modern policy would re-parse and re-fold
# them on every flattening, which costs milliseconds per message for Chinese names and subjects.
# Nothing reaches these functions unchecked: text passed `clean_header`, addresses `mailbox`.


def encode_text(name: str, value: str) -> str:
    """An unstructured header value for the wire: encoded words when it is not ASCII."""
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep="\n")


def encode_addresses(name: str, addresses: Sequence[Address]) -> str:
    """An address list for the wire: display names encoded (or quoted), addresses as they are."""
    header = Header(header_name=name)
    for index, address in enumerate(addresses):
        if index:
            header.append(", ", "us-ascii")
        display = address.display_name
        if display and display.isascii():
            header.append(f'"{quote(display)}" <{address.addr_spec}>', "us-ascii")
        elif display:
            header.append(display, "utf-8")
            header.append(f" <{address.addr_spec}>", "us-ascii")
        else:
            header.append(address.addr_spec, "us-ascii")
    return header.encode(linesep="\n")
