"""Messages per second to a local SMTP sink: connections reused (Wangjian's SmtpMailer) against
one connection per message, in the same run, over plain SMTP and over STARTTLS; then the whole
path from the outbox on SQLite.

    uv run python bench/mail_bench.py [--messages 2000]

The sink (aiosmtpd, counting what it accepts) runs in a process of its own so that client and
server do not share one interpreter lock. Bar: >= 500 messages/s with reuse.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import socket
import ssl
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402

from wangjian.mail.envelope import build_email, mailbox, message_id_for  # noqa: E402
from wangjian.mail.transport import Outgoing, SmtpMailer  # noqa: E402
from wangjian.settings import SmtpSettings  # noqa: E402

BAR = 500.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_sink(port: int, ready: Any, tls: tuple[str, str] | None) -> None:
    """The sink: accepts every message (STARTTLS required when given a certificate and key)."""
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 OK"

    kwargs: dict[str, Any] = {}
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(Count(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key."""
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
    cert, private = folder / "sink.crt", folder / "sink.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, private


def sample_mails(count: int) -> list[Outgoing]:
    """Realistic referral notices: Chinese subject and body, text and HTML parts (~7 KB), built
    and flattened as the sender does when it renders a batch (outside the timed transport)."""
    body = (
        "一、发现的问题:网店销售假冒注册商标的运动鞋。二、为何移送贵单位:依职责分工。" * 20
    ) + "\n"
    sender = mailbox("office@wangjian-district.example.org", "区网络市场监管局际联席会议办公室")
    to = mailbox("samr.contact@wangjian-district.example.org", "区市场监督管理局 王敏")
    when = datetime(2021, 10, 25, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    return [
        Outgoing.of(
            build_email(
                message_id=message_id_for(f"bench:{n}", "wangjian-district.example.org"),
                sender=sender,
                to=to,
                cc=[],
                subject=f"【网剑行动】线索移送函:潮鞋专营店{n}(移送编号{n})",
                text=body,
                html=f"<p>{body}</p>",
                date=when,
                language="zh-CN",
            ),
            sender=sender.addr_spec,
            recipients=[to.addr_spec],
        )
        for n in range(count)
    ]


async def one_connection_each(
    mails: list[Outgoing], port: int, concurrency: int, ca_file: Path | None
) -> None:
    """The naive design: connect (and STARTTLS), EHLO, send, QUIT for every message."""
    gate = asyncio.Semaphore(concurrency)

    async def send(mail: Outgoing) -> None:
        async with gate:
            await aiosmtplib.send(
                mail.data,
                sender=mail.sender,
                recipients=list(mail.recipients),
                hostname="127.0.0.1",
                port=port,
                start_tls=ca_file is not None,
                cert_bundle=str(ca_file) if ca_file else None,
                local_hostname="bench",
            )

    await asyncio.gather(*(send(m) for m in mails))


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} msg/s  ({count} in {seconds:.2f} s)"


def end_to_end(port: int, count: int) -> tuple[int, float]:
    """Queue `count` referral notices in a SQLite ledger and drain them through SmtpMailer."""
    from wangjian.bootstrap import build_app
    from wangjian.ledger.db import transaction
    from wangjian.ledger.models import Lead, Referral
    from wangjian.ledger.outbox import notice_key, queue_notices
    from wangjian.ledger.sending import drain_outbox
    from wangjian.ledger.setup import initialise_ledger
    from wangjian.settings import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="mail-bench-"))
    try:
        settings = load_settings(
            database_url=f"sqlite:///{workdir / 'ledger.db'}",
            mailbox_dir=workdir / "mailbox",
            smtp=SmtpSettings(host="127.0.0.1", port=port),
            mail_digest_cap=1,  # one message per referral: the worst case for the sender
            mail_batch_size=200,
        )
        app = build_app(settings)
        initialise_ledger(app)
        as_of = app.as_of("2021-10-25")
        policy = app.config.policy("referral")
        with transaction(app.sessions) as session:
            leads = [
                Lead(
                    source="bench",
                    source_lead_id=str(n),
                    category="trademark",
                    summary="网店销售假冒注册商标的运动鞋",
                    shop_name=f"潮鞋专营店{n}",
                    region_code="140105",
                    found_on=as_of.date(),
                    status="referred",
                    received_at=as_of,
                )
                for n in range(count)
            ]
            session.add_all(leads)
            session.flush()
            referrals = [
                Referral(
                    lead_id=lead.id,
                    agency_code="samr",
                    kind="referral",
                    category="trademark",
                    reason="依职责分工",
                    rule="category",
                    policy=policy.model_dump(mode="json"),
                    received_at=as_of,
                    ack_due_on=as_of.date(),
                    due_on=as_of.date(),
                    original_due_on=as_of.date(),
                )
                for lead in leads
            ]
            session.add_all(referrals)
            session.flush()
            recipient = "samr.contact@wangjian-district.example.org"
            queue_notices(
                session,
                [
                    {
                        "key": notice_key(
                            recipient=recipient,
                            subject_type="referral",
                            subject_id=r.id,
                            kind="referral",
                        ),
                        "kind": "referral",
                        "party": "samr",
                        "audience": "contact",
                        "recipient": recipient,
                        "cc": [],
                        "subject_type": "referral",
                        "subject_id": r.id,
                        "group_key": "dispatch:bench",
                        "context": {},
                        "status": "queued",
                    }
                    for r in referrals
                ],
            )
        started = time.perf_counter()
        report = drain_outbox(app=app, mailer=app.mailer, as_of=as_of)
        elapsed = time.perf_counter() - started
        app.dispose()
        return report.sent, elapsed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(mails: list[Outgoing], *, pool: int, ca_file: Path | None, label: str) -> float:
    """One sink, the same messages sent four ways; returns the reused pool's rate."""
    folder = Path(tempfile.mkdtemp(prefix="mail-bench-"))
    tls = None
    if ca_file is not None:
        cert, key = self_signed_certificate(folder)
        ca_file, tls = cert, (str(cert), str(key))
    port = free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, ready, tls), daemon=True)
    sink.start()
    if not ready.wait(30):
        raise SystemExit("the SMTP sink did not start")
    try:

        def settings(size: int) -> SmtpSettings:
            return SmtpSettings(
                host="127.0.0.1",
                port=port,
                pool_size=size,
                starttls=tls is not None,
                ca_file=ca_file,
            )

        reused = SmtpMailer(settings(pool))
        asyncio.run(reused.deliver(mails[:50]))  # warm-up
        results: list[Any] = []
        # A TLS handshake per message is slow: fewer messages suffice to measure its rate.
        few = mails if tls is None else mails[:300]
        seconds = {
            f"reused connections, pool of {pool}": (
                mails,
                timed(lambda: results.extend(asyncio.run(reused.deliver(mails)))),
            ),
            "reused connection, pool of 1": (
                mails,
                timed(lambda: asyncio.run(SmtpMailer(settings(1)).deliver(mails))),
            ),
            f"one connection per message, {pool} at once": (
                few,
                timed(lambda: asyncio.run(one_connection_each(few, port, pool, ca_file))),
            ),
            "one connection per message, serial": (
                few,
                timed(lambda: asyncio.run(one_connection_each(few, port, 1, ca_file))),
            ),
        }
        assert all(r.status == "sent" for r in results), {r.reply for r in results}
        print(f"\n{label}")
        for name, (batch, elapsed) in seconds.items():
            print(f"  {name:<40} {rate(len(batch), elapsed)}")
        reuse, _, naive, _ = (len(batch) / t for batch, t in seconds.values())
        print(f"  reuse vs one connection per message, same concurrency: {reuse / naive:.1f}x")
        return reuse
    finally:
        sink.terminate()
        sink.join(5)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pool", type=int, default=4)
    args = parser.parse_args()

    mails = sample_mails(args.messages)
    print(
        f"{len(mails)} messages of {len(mails[0].data) / 1024:.1f} KiB (Chinese, text + HTML) to "
        "an aiosmtpd sink on 127.0.0.1 in a process of its own"
    )
    plain = measure(mails, pool=args.pool, ca_file=None, label="plain SMTP")
    measure(
        mails,
        pool=args.pool,
        ca_file=Path("tls"),
        label="STARTTLS (a TLS handshake per connection)",
    )

    port = free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, ready, None), daemon=True)
    sink.start()
    ready.wait(30)
    try:
        sent, seconds = end_to_end(port, min(args.messages, 1000))
    finally:
        sink.terminate()
        sink.join(5)
    print(
        f"\nend to end: SQLite outbox -> compose, claim, render, send, mark: {rate(sent, seconds)}"
    )
    verdict = "PASS" if plain >= BAR else "FAIL"
    print(f"bar: >= {BAR:.0f} msg/s with reuse (plain SMTP) -> {verdict} ({plain:.0f} msg/s)")


if __name__ == "__main__":
    main()
