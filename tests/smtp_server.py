"""A real SMTP server for the tests: aiosmtpd on a free localhost port, recording every message
it accepts, and told on demand to go down, come back up, or answer 4xx/5xx."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import compat32, default
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from wangjian.settings import SmtpSettings


def free_port() -> int:
    # aiosmtpd's Controller cannot take port 0, so ask the OS for a free port first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorder:
    """The server's handler: what arrived, and which replies to give instead of accepting."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.data_replies: deque[str] = deque()  # given to the next DATA commands, in order
        self.refused: dict[str, str] = {}  # recipient address → reply to its RCPT
        self.sessions = 0
        self.delay = 0.0  # seconds spent on each DATA (to make concurrent senders overlap)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.refused.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.data_replies:
                return self.data_replies.popleft()
        raw = envelope.original_content or envelope.content
        mail = message_from_bytes(raw, policy=default)
        with self.lock:
            self.received.append(mail)  # type: ignore[arg-type]
            self.raw.append(raw)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK: queued"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate (which is also its own CA) and key for 127.0.0.1, written to `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpServer:
    """`with SmtpServer() as server:` — up on a free port; `down()` and `up()` on the same port."""

    def __init__(
        self, *, login: tuple[str, str] | None = None, starttls_in: Path | None = None
    ) -> None:
        self.port = free_port()
        self.handler = Recorder()
        self.login = login
        self.controller: Controller | None = None
        # With a folder: a self-signed certificate for 127.0.0.1 is made there, and the server
        # refuses to go on without STARTTLS.
        self.ca_file: Path | None = None
        self.tls_context: ssl.SSLContext | None = None
        if starttls_in is not None:
            self.ca_file, key = self_signed_certificate(starttls_in)
            self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_context.load_cert_chain(self.ca_file, key)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.login
        )
        return AuthResult(success=ok, handled=False)

    def up(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.login:
            kwargs.update(
                authenticator=self._authenticate,
                auth_require_tls=self.tls_context is not None,
                auth_required=True,
            )
        if self.tls_context:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpServer:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def settings(self, **overrides: Any) -> SmtpSettings:
        """Settings pointing at this server, with short timeouts for the tests."""
        values: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "timeout_seconds": 5.0}
        values.update(overrides)
        return SmtpSettings(**values)

    @property
    def received(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.received)

    def header(self, index: int, name: str) -> str:
        """A header of the index-th message as RFC 2047 decodes it (adjacent encoded words
        joined: the `email` package's address parser puts a space between them)."""
        with self.handler.lock:
            raw = self.handler.raw[index]
        value = message_from_bytes(raw, policy=compat32)[name]
        return str(make_header(decode_header(value)))

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        return Counter(str(m["Message-ID"]).strip() for m in self.received)
