"""Messages per second to a local SMTP sink: connections reused (Wangjian's SmtpMailer) against
one connection per message, in the same run; then the whole path from the outbox on SQLite.

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
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
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


def run_sink(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


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


async def one_connection_each(mails: list[Outgoing], port: int, concurrency: int) -> None:
    """The naive design: connect, EHLO, send, QUIT for every message."""
    gate = asyncio.Semaphore(concurrency)

    async def send(mail: Outgoing) -> None:
        async with gate:
            await aiosmtplib.send(
                mail.data,
                sender=mail.sender,
                recipients=list(mail.recipients),
                hostname="127.0.0.1",
                port=port,
                start_tls=False,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pool", type=int, default=4)
    args = parser.parse_args()

    port = free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, ready), daemon=True)
    sink.start()
    if not ready.wait(30):
        raise SystemExit("the SMTP sink did not start")
    try:
        mails = sample_mails(args.messages)
        size = len(mails[0].data)
        print(
            f"SMTP sink: aiosmtpd on 127.0.0.1:{port} (separate process); {len(mails)} messages "
            f"of {size / 1024:.1f} KiB (Chinese, text + HTML)"
        )

        reused = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, pool_size=args.pool))
        asyncio.run(reused.deliver(mails[:50]))  # warm-up
        started = time.perf_counter()
        results = asyncio.run(reused.deliver(mails))
        reuse_seconds = time.perf_counter() - started
        assert all(r.status == "sent" for r in results), {r.reply for r in results}

        single = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, pool_size=1))
        started = time.perf_counter()
        asyncio.run(single.deliver(mails))
        single_seconds = time.perf_counter() - started

        naive = mails[: max(200, args.messages // 4)]
        started = time.perf_counter()
        asyncio.run(one_connection_each(naive, port, args.pool))
        naive_seconds = time.perf_counter() - started

        started = time.perf_counter()
        asyncio.run(one_connection_each(naive, port, 1))
        naive_serial_seconds = time.perf_counter() - started

        print(f"reused connections, pool of {args.pool}:  {rate(len(mails), reuse_seconds)}")
        print(f"reused connection, pool of 1:   {rate(len(mails), single_seconds)}")
        print(f"one connection per message, {args.pool} at once: {rate(len(naive), naive_seconds)}")
        print(f"one connection per message, serial:  {rate(len(naive), naive_serial_seconds)}")
        speedup = (len(mails) / reuse_seconds) / (len(naive) / naive_seconds)
        print(f"reuse vs one connection per message (same concurrency): {speedup:.1f}x")

        e2e = min(args.messages, 1000)
        sent, seconds = end_to_end(port, e2e)
        print(
            f"end to end, SQLite outbox -> compose, claim, render, send, mark: {rate(sent, seconds)}"
        )

        reuse_rate = len(mails) / reuse_seconds
        verdict = "PASS" if reuse_rate >= BAR else "FAIL"
        print(f"bar: >= {BAR:.0f} msg/s with reuse -> {verdict} ({reuse_rate:.0f} msg/s)")
    finally:
        sink.terminate()
        sink.join(5)


if __name__ == "__main__":
    main()
