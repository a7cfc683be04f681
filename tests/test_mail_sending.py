"""Sending over a real SMTP server (aiosmtpd), each message exactly once: outages, 4xx, 5xx, a
crash between the server's 250 and the mark, two senders at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Sequence
from datetime import date, timedelta
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from wangjian.bootstrap import App
from wangjian.ledger.clocks import meet_clock
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Event, Message, Notice
from wangjian.ledger.sending import (
    compose_outbox_messages,
    drain_outbox,
    retry_delay,
    send_batch,
)
from wangjian.mail import Delivery, Outgoing, SmtpMailer

from .mail_data import (
    AS_OF,
    add_clock,
    add_referrals,
    queue_ladder_notice,
    queue_referral_notices,
)
from .smtp_server import SmtpServer

pytestmark = pytest.mark.smtp

AGENCIES = ("samr", "customs", "post", "police", "ip")
CATEGORY = {
    "samr": "trademark",
    "customs": "counterfeit_import",
    "post": "prohibited_parcel",
    "police": "fraud",
    "ip": "patent_counterfeit",
}


def queue_dispatch(app: App, *, per_agency: int = 1, agencies: Sequence[str] = AGENCIES) -> None:
    """Referrals to several agencies from one dispatch, with their notices queued."""
    with transaction(app.sessions) as session:
        for agency in agencies:
            referrals = add_referrals(
                session,
                app,
                count=per_agency,
                agency=agency,
                category=CATEGORY[agency],
                as_of=app.as_of(AS_OF),
            )
            queue_referral_notices(session, referrals)


def messages(app: App) -> list[Message]:
    with app.sessions() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_messages_arrive_and_parse_back_with_headers_parts_attachment_and_chinese(
    app: App, smtp_server: SmtpServer
) -> None:
    queue_dispatch(app, per_agency=3, agencies=("samr",))
    queue_dispatch(app, per_agency=1, agencies=("customs",))
    mailer = SmtpMailer(smtp_server.settings())
    report = drain_outbox(app=app, mailer=mailer, as_of=app.as_of(AS_OF))
    assert (report.sent, report.retrying, report.failed) == (2, 0, 0)

    by_to = {m["To"].addresses[0].username: m for m in smtp_server.received}
    digest: EmailMessage = by_to["samr.contact"]
    assert digest["Subject"] == (
        "【2021网络市场监管专项行动(网剑行动)】线索移送函(汇总):移送区市场监督管理局线索3条"
    )
    index = smtp_server.received.index(digest)
    assert smtp_server.header(index, "From") == (
        "区网络市场监管局际联席会议办公室 <office@wangjian-district.example.org>"
    )
    assert smtp_server.header(index, "To") == (
        "区市场监督管理局 王敏 <samr.contact@wangjian-district.example.org>"
    )
    assert digest["Content-Language"] == "zh-CN"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "潮鞋专营店3" in text and "潮鞋专营店3" in html
    assert "《中华人民共和国商标法》第五十七条" in text
    (attachment,) = list(digest.iter_attachments())
    rows = list(load_workbook(BytesIO(attachment.get_content())).active.iter_rows(values_only=True))
    assert len(rows) == 1 + 3 and rows[1][6] == "某某商贸有限公司1"
    assert smtp_server.handler.envelopes[0][0] == "office@wangjian-district.example.org"

    sent = messages(app)
    assert {m.status for m in sent} == {"sent"}
    assert {m.message_id_header for m in sent} == set(smtp_server.message_ids())
    with app.sessions() as session:
        assert set(session.scalars(select(Notice.status))) == {"sent"}
        actions = session.scalars(select(Event.action).where(Event.subject_type == "message"))
        assert sorted(actions) == ["message_sent", "message_sent"]


def test_connections_are_reused_across_a_batch(sqlite_app: App, smtp_server: SmtpServer) -> None:
    queue_dispatch(sqlite_app)  # five agencies: five messages
    mailer = SmtpMailer(smtp_server.settings(pool_size=2))
    drain_outbox(app=sqlite_app, mailer=mailer, as_of=sqlite_app.as_of(AS_OF))
    assert len(smtp_server.received) == 5
    assert smtp_server.handler.sessions == 2  # the pool's two connections carried all five


def test_a_large_dispatch_is_split_into_digests_by_the_cap(
    app: App, smtp_server: SmtpServer
) -> None:
    app.settings.mail_digest_cap = 4
    queue_dispatch(app, per_agency=10, agencies=("samr",))
    drain_outbox(app=app, mailer=SmtpMailer(smtp_server.settings()), as_of=app.as_of(AS_OF))
    received = sorted(smtp_server.received, key=lambda m: m["Subject"].rsplit("第", 1)[1])
    assert [m["Subject"].split("(汇总):")[1] for m in received] == [
        "移送区市场监督管理局线索4条(第1/3封)",
        "移送区市场监督管理局线索4条(第2/3封)",
        "移送区市场监督管理局线索2条(第3/3封)",
    ]
    listed = []
    for mail in received:
        (attachment,) = list(mail.iter_attachments())
        assert attachment.get_filename().endswith(f"-{3}.xlsx")
        sheet = load_workbook(BytesIO(attachment.get_content())).active
        listed += [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(listed) == list(range(1, 11))  # every referral, each in one digest


def test_composing_again_makes_no_new_messages(app: App) -> None:
    queue_dispatch(app, per_agency=2)
    as_of = app.as_of(AS_OF)
    assert compose_outbox_messages(app=app, as_of=as_of) == len(AGENCIES)
    assert compose_outbox_messages(app=app, as_of=as_of) == 0
    with app.sessions() as session:
        linked = session.scalars(select(Notice.message_id)).all()
    assert None not in linked and len(set(linked)) == len(AGENCIES)


def test_server_down_for_a_while_then_up_everything_arrives_once(
    app: App, smtp_server: SmtpServer
) -> None:
    queue_dispatch(app)
    mailer = SmtpMailer(smtp_server.settings())
    as_of = app.as_of(AS_OF)
    smtp_server.down()
    first = drain_outbox(app=app, mailer=mailer, as_of=as_of)
    assert (first.sent, first.retrying) == (0, len(AGENCIES))
    assert {m.status for m in messages(app)} == {"retry"}
    assert all("Connect" in (m.last_error or "") for m in messages(app))
    # Still down an hour later: the backoff grows, nothing is lost.
    second = drain_outbox(app=app, mailer=mailer, as_of=as_of + timedelta(hours=1))
    assert second.retrying == len(AGENCIES)
    assert {m.attempts for m in messages(app)} == {2}
    # Too early for the next attempt: nothing is claimed.
    assert drain_outbox(app=app, mailer=mailer, as_of=as_of + timedelta(hours=1)).claimed == 0

    smtp_server.up()
    later = as_of + timedelta(hours=6)
    third = drain_outbox(app=app, mailer=mailer, as_of=later)
    assert third.sent == len(AGENCIES)
    assert drain_outbox(app=app, mailer=mailer, as_of=later + timedelta(days=1)).claimed == 0
    counts = smtp_server.message_ids()
    assert len(counts) == len(AGENCIES) and set(counts.values()) == {1}
    assert {(m.status, m.attempts, m.last_error) for m in messages(app)} == {("sent", 3, None)}


def test_a_4xx_reply_is_retried_and_then_succeeds(app: App, smtp_server: SmtpServer) -> None:
    queue_dispatch(app, agencies=("samr",))
    smtp_server.handler.data_replies.append("451 4.3.0 Temporary local problem, try later")
    mailer = SmtpMailer(smtp_server.settings())
    as_of = app.as_of(AS_OF)
    first = drain_outbox(app=app, mailer=mailer, as_of=as_of)
    (message,) = messages(app)
    assert (first.retrying, message.status) == (1, "retry")
    assert message.last_error == "451 4.3.0 Temporary local problem, try later"
    assert (
        as_of + timedelta(seconds=60) <= message.next_attempt_at <= as_of + timedelta(seconds=120)
    )
    second = drain_outbox(app=app, mailer=mailer, as_of=message.next_attempt_at)
    (message,) = messages(app)
    assert (second.sent, message.status, message.attempts) == (1, "sent", 2)
    assert list(smtp_server.message_ids().values()) == [1]


def test_a_5xx_reply_is_recorded_and_does_not_block_the_others(
    app: App, smtp_server: SmtpServer
) -> None:
    queue_dispatch(app)
    smtp_server.handler.refused["customs.contact@wangjian-district.example.org"] = (
        "550 5.1.1 <customs.contact@wangjian-district.example.org>: mailbox unavailable"
    )
    mailer = SmtpMailer(smtp_server.settings())
    as_of = app.as_of(AS_OF)
    report = drain_outbox(app=app, mailer=mailer, as_of=as_of)
    assert (report.sent, report.failed) == (len(AGENCIES) - 1, 1)
    (failure,) = report.failures
    assert failure["recipient"] == "customs.contact@wangjian-district.example.org"
    assert "550 5.1.1" in failure["reply"] and "mailbox unavailable" in failure["reply"]
    failed = [m for m in messages(app) if m.status == "failed"]
    assert [m.party for m in failed] == ["customs"]
    # Permanent: no later run tries it again.
    assert drain_outbox(app=app, mailer=mailer, as_of=as_of + timedelta(days=3)).claimed == 0
    assert [m.attempts for m in messages(app) if m.party == "customs"] == [1]
    with app.sessions() as session:
        statuses = session.execute(select(Notice.party, Notice.status)).all()
    assert {s for p, s in statuses if p == "customs"} == {"failed"}
    assert {s for p, s in statuses if p != "customs"} == {"sent"}


def test_transient_failures_give_up_after_the_configured_attempts(
    sqlite_app: App, smtp_server: SmtpServer
) -> None:
    sqlite_app.settings.smtp = smtp_server.settings(max_attempts=2)
    queue_dispatch(sqlite_app, agencies=("samr",))
    smtp_server.handler.data_replies.extend(["452 4.3.1 Insufficient system storage"] * 2)
    mailer = SmtpMailer(sqlite_app.settings.smtp)
    as_of = sqlite_app.as_of(AS_OF)
    drain_outbox(app=sqlite_app, mailer=mailer, as_of=as_of)
    report = drain_outbox(app=sqlite_app, mailer=mailer, as_of=as_of + timedelta(hours=1))
    (message,) = messages(sqlite_app)
    assert (report.failed, message.status, message.attempts) == (1, "failed", 2)
    assert message.last_error == "gave up after 2 attempts: 452 4.3.1 Insufficient system storage"


class Crash(BaseException):
    """The process dying: not an error the sender could catch and record."""


class CrashAfterSending:
    """A mailer that hands the mail to the server (which answers 250), then the process dies."""

    def __init__(self, inner: SmtpMailer) -> None:
        self.inner = inner

    async def deliver(self, mails: Sequence[Outgoing]) -> list[Delivery]:
        await self.inner.deliver(mails)
        raise Crash


def test_a_crash_between_sending_and_marking_resends_the_same_message_id(
    app: App, smtp_server: SmtpServer
) -> None:
    queue_dispatch(app, agencies=("samr",))
    as_of = app.as_of(AS_OF)
    compose_outbox_messages(app=app, as_of=as_of)
    mailer = SmtpMailer(smtp_server.settings())
    with pytest.raises(Crash):
        send_batch(app=app, mailer=CrashAfterSending(mailer), as_of=as_of, limit=10)
    (message,) = messages(app)
    assert message.status == "sending" and message.lease_until is not None
    assert len(smtp_server.received) == 1

    # While the dead sender's lease runs, nobody else takes the message.
    assert send_batch(app=app, mailer=mailer, as_of=as_of, limit=10).claimed == 0
    # Once it has run out, the same mail goes again — same Message-ID, same content.
    report = send_batch(
        app=app,
        mailer=mailer,
        as_of=as_of,
        limit=10,
        now=message.lease_until + timedelta(seconds=1),
    )
    assert (report.sent, report.resent) == (1, 1)
    first, second = smtp_server.received
    assert list(smtp_server.message_ids()) == [message.message_id_header]
    assert first["Subject"] == second["Subject"]

    def body(mail: EmailMessage) -> str:
        # Signed links carry the second they were signed at; everything else is the same.
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        return re.sub(r"/a/[^/]+/", "/a/<token>/", text)

    assert body(first) == body(second)
    (message,) = messages(app)
    assert (message.status, message.attempts) == ("sent", 2)
    with app.sessions() as session:
        event = session.scalars(select(Event).where(Event.action == "message_sent")).one()
    assert event.data["resent"] is True


def test_two_senders_at_once_never_send_the_same_message(app: App, smtp_server: SmtpServer) -> None:
    queue_dispatch(app, per_agency=1, agencies=AGENCIES)
    queue_dispatch_more = [("samr", 20), ("customs", 20), ("post", 20)]
    with transaction(app.sessions) as session:
        for n, (agency, count) in enumerate(queue_dispatch_more):
            referrals = add_referrals(
                session,
                app,
                count=count,
                agency=agency,
                category=CATEGORY[agency],
                as_of=app.as_of(AS_OF),
            )
            # One dispatch each: with a cap of one, every referral is a message of its own.
            queue_referral_notices(session, referrals, group_key=f"dispatch:{10 + n}")
    app.settings.mail_digest_cap = 1
    smtp_server.handler.delay = 0.01
    as_of = app.as_of(AS_OF)
    compose_outbox_messages(app=app, as_of=as_of)
    expected = len(messages(app))
    assert expected == len(AGENCIES) + 60

    reports = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            mailer = SmtpMailer(smtp_server.settings(pool_size=2))
            reports.append(drain_outbox(app=app, mailer=mailer, as_of=as_of, batch_size=4))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    counts = smtp_server.message_ids()
    assert len(counts) == expected and set(counts.values()) == {1}
    assert sum(r.sent for r in reports) == expected
    assert all(r.sent > 0 for r in reports), "both senders took part"
    assert {m.status for m in messages(app)} == {"sent"}


def test_a_reminder_whose_item_was_resolved_meanwhile_is_withdrawn(
    app: App, smtp_server: SmtpServer
) -> None:
    as_of = app.as_of(AS_OF)
    with transaction(app.sessions) as session:
        resolved, still_open = add_referrals(session, app, count=2, as_of=as_of)
        for referral in (resolved, still_open):
            clock = add_clock(
                session,
                app,
                subject_type="referral",
                subject_id=referral.id,
                kind="referral_outcome",
                party="samr",
                due_on=date(2021, 10, 20),
            )
            queue_ladder_notice(session, clock, step="overdue", app=app)
        leader_clock = add_clock(
            session,
            app,
            subject_type="referral",
            subject_id=add_referrals(session, app, as_of=as_of)[0].id,
            kind="referral_outcome",
            party="samr",
            due_on=date(2021, 10, 1),
        )
        queue_ladder_notice(session, leader_clock, step="leader", audience="leader", app=app)
    compose_outbox_messages(app=app, as_of=as_of)
    # The agency answers two items while their notices wait in the outbox.
    with transaction(app.sessions) as session:
        meet_clock(session, subject_type="referral", subject_id=resolved.id, at=as_of)
        meet_clock(session, subject_type="referral", subject_id=leader_clock.subject_id, at=as_of)
    report = drain_outbox(app=app, mailer=SmtpMailer(smtp_server.settings()), as_of=as_of)
    assert (report.sent, report.cancelled) == (1, 1)
    (mail,) = smtp_server.received
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"移送编号{still_open.id} " in text and f"移送编号{resolved.id} " not in text
    with app.sessions() as session:
        statuses = dict(session.execute(select(Notice.subject_id, Notice.status)).tuples().all())
        cancelled = session.scalars(select(Message).where(Message.status == "cancelled")).one()
    assert statuses == {
        resolved.id: "withdrawn",
        still_open.id: "sent",
        leader_clock.subject_id: "withdrawn",
    }
    assert cancelled.recipient == "samr.leader@wangjian-district.example.org"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_login_comes_from_the_settings(sqlite_app: App) -> None:
    with SmtpServer(login=("wangjian", "s3cret")) as server:
        queue_dispatch(sqlite_app, agencies=("samr",))
        wrong = SmtpMailer(server.settings(username="wangjian", password="wrong"))
        report = drain_outbox(app=sqlite_app, mailer=wrong, as_of=sqlite_app.as_of(AS_OF))
        assert report.retrying == 1 and server.received == []
        (message,) = messages(sqlite_app)
        assert "535" in (message.last_error or "")
        right = SmtpMailer(server.settings(username="wangjian", password="s3cret"))
        later = sqlite_app.as_of(AS_OF) + timedelta(hours=1)
        assert drain_outbox(app=sqlite_app, mailer=right, as_of=later).sent == 1
        assert len(server.received) == 1


def test_starttls_and_login_from_the_settings(sqlite_app: App, tmp_path: Path) -> None:
    with SmtpServer(login=("wangjian", "s3cret"), starttls_in=tmp_path / "tls") as server:
        queue_dispatch(sqlite_app, agencies=("samr",))
        as_of = sqlite_app.as_of(AS_OF)
        plain = SmtpMailer(server.settings(username="wangjian", password="s3cret"))
        assert drain_outbox(app=sqlite_app, mailer=plain, as_of=as_of).retrying == 1
        assert "STARTTLS" in (messages(sqlite_app)[0].last_error or "")
        secure = SmtpMailer(
            server.settings(
                starttls=True, ca_file=server.ca_file, username="wangjian", password="s3cret"
            )
        )
        later = as_of + timedelta(hours=1)
        assert drain_outbox(app=sqlite_app, mailer=secure, as_of=later).sent == 1
        assert len(server.received) == 1


def test_retry_delays_grow_exponentially_with_jitter_up_to_a_cap() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, initial=60, cap=3600, rng=rng).total_seconds() for n in range(1, 10)]
    for n, seconds in enumerate(delays, start=1):
        base = min(3600, 60 * 2 ** (n - 1))
        assert base <= seconds <= base + 60
    assert len({retry_delay(3, initial=60, cap=3600, rng=rng) for _ in range(5)}) > 1


def test_an_unreachable_server_is_a_transient_failure_for_every_message() -> None:
    from wangjian.settings import SmtpSettings

    from .smtp_server import free_port

    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=free_port(), timeout_seconds=2))
    mails = []
    for n in range(3):
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "a@example.org", "b@example.org", str(n)
        mail.set_content("x")
        mails.append(Outgoing.of(mail, sender="a@example.org", recipients=["b@example.org"]))
    deliveries = asyncio.run(mailer.deliver(mails))
    assert [d.status for d in deliveries] == ["retry"] * 3
