"""What the e-mails say and how they are built: both parts, Chinese intact, why and the signed
link in every message, HTML escaping, header injection, locales, agency overrides, mailbox."""

from __future__ import annotations

import asyncio
from datetime import date
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select, update

from wangjian.access import read_link_token
from wangjian.bootstrap import App, build_app
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Message, Notice, Party
from wangjian.ledger.sending import drain_outbox, message_key
from wangjian.ledger.setup import initialise_ledger
from wangjian.mail import MailboxMailer, Outgoing, build_mailer
from wangjian.mail.envelope import clean_header, message_id_for
from wangjian.mail.transport import mailbox_file_name

from .conftest import make_settings
from .mail_data import (
    AS_OF,
    add_clock,
    add_obligation,
    add_referrals,
    queue_ladder_notice,
    queue_referral_notices,
)


def read_mailbox(folder: Path) -> dict[str, EmailMessage]:
    """The .eml files of a mailbox folder, parsed, by file name."""
    return {
        f.name: message_from_bytes(f.read_bytes(), policy=default)  # type: ignore[misc]
        for f in sorted(folder.glob("*.eml"))
    }


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None, "both a text and an HTML part"
    return text.get_content(), html.get_content()  # type: ignore[attr-defined]


def send_all(app: App) -> None:
    drain_outbox(app=app, mailer=build_mailer(app.settings, app.config), as_of=app.as_of(AS_OF))


# --- pure helpers ------------------------------------------------------------------------------


def test_clean_header_removes_line_breaks_and_other_controls() -> None:
    hostile = "店铺\r\nBcc: victim@evil.example\x00\u202e\tX"
    cleaned = clean_header(hostile)
    assert "\r" not in cleaned and "\n" not in cleaned and "\x00" not in cleaned
    assert "\u202e" not in cleaned
    assert cleaned == "店铺 Bcc: victim@evil.example X"


def test_message_id_is_derived_from_the_key_alone() -> None:
    key = message_key(["b|referral:2|x@example.org", "a|referral:1|x@example.org"])
    assert key == message_key(["a|referral:1|x@example.org", "b|referral:2|x@example.org"])
    first = message_id_for(key, "example.org")
    assert first == message_id_for(key, "example.org")
    assert first != message_id_for(message_key(["a|referral:1|x@example.org"]), "example.org")
    assert first.startswith("<") and first.endswith("@example.org>")


# --- one referral notice, end to end into the mailbox -------------------------------------------


def test_referral_notice_has_both_parts_chinese_subject_why_and_a_signed_link(
    sqlite_app: App,
) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral = add_referrals(
            session, app, agency="customs", category="counterfeit_import", as_of=app.as_of(AS_OF)
        )[0]
        queue_referral_notices(session, [referral])
    send_all(app)

    (name, mail), *rest = read_mailbox(app.settings.mailbox_dir).items()
    assert rest == []
    raw = (app.settings.mailbox_dir / name).read_bytes()
    subject_line = next(line for line in raw.split(b"\r\n") if line.lower().startswith(b"subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line.lower(), "RFC 2047"
    assert mail["Subject"].startswith("【2021网络市场监管专项行动(网剑行动)】线索移送函")
    assert mail["To"].addresses[0].addr_spec == "customs.contact@wangjian-district.example.org"
    assert mail["To"].addresses[0].display_name == "XX海关(驻区协作) 林晓"
    assert mail["From"].addresses[0].addr_spec == "office@wangjian-district.example.org"
    assert mail["Auto-Submitted"] == "auto-generated"
    with app.sessions() as session:
        message = session.scalars(select(Message)).one()
    assert mail["Message-ID"].strip() == message.message_id_header
    assert name == mailbox_file_name(message.message_id_header)

    text, html = parts(mail)
    for body in (text, html):
        assert "您收到此函,是因为" in body  # why this recipient
        assert "移送XX海关(驻区协作)办理" in body
        assert "《中华人民共和国海关法》" in body  # legal basis
        assert "2021年11月15日" in body  # by when …
        assert "其间不计" in body  # … and how the date was computed
    link = next(w for w in text.split() if "/a/" in w and "/referrals/" in w)
    token = link.split("/a/")[1].split("/")[0]
    claims = read_link_token(
        app.settings.portal.secret_key.get_secret_value(), token, max_age_seconds=3600
    )
    assert (claims.party, claims.version) == ("customs", 1)
    assert link.endswith(f"/referrals/{referral.id}")


def test_lead_text_is_escaped_in_the_html_part(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referrals = add_referrals(
            session,
            app,
            as_of=app.as_of(AS_OF),
            summary='<script>alert("x")</script> 假冒商标 & <b>加粗</b>',
        )
        queue_referral_notices(session, referrals)
    send_all(app)
    (mail,) = read_mailbox(app.settings.mailbox_dir).values()
    text, html = parts(mail)
    assert "<script>" not in html and "<b>加粗" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 假冒商标 &amp; &lt;b&gt;" in html
    assert '<script>alert("x")</script> 假冒商标 & <b>加粗</b>' in text  # plain text as typed


def test_a_hostile_shop_name_or_contact_name_cannot_add_headers(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referrals = add_referrals(
            session,
            app,
            as_of=app.as_of(AS_OF),
            shop_name="好店\r\nBcc: victim@evil.example\r\nX-Evil: yes",
        )
        queue_referral_notices(session, referrals)
        session.execute(
            update(Party)
            .where(Party.code == "samr")
            .values(contact_name="王敏\r\nCc: spy@evil.example")
        )
    send_all(app)
    (name, mail), *_ = read_mailbox(app.settings.mailbox_dir).items()
    raw = (app.settings.mailbox_dir / name).read_bytes()
    assert b"\nBcc:" not in raw and b"\nX-Evil:" not in raw and b"spy@evil.example>" not in raw
    assert mail["Bcc"] is None and mail["X-Evil"] is None and mail["Cc"] is None
    assert "好店 Bcc: victim@evil.example X-Evil: yes" in mail["Subject"]
    assert [a.addr_spec for a in mail["To"].addresses] == [
        "samr.contact@wangjian-district.example.org"
    ]


# --- every kind of message -----------------------------------------------------------------------


def queue_one_of_each(app: App) -> int:
    """A notice of every kind the sender knows, each in a group of its own; returns how many."""
    as_of = app.as_of(AS_OF)
    with transaction(app.sessions) as session:
        single = add_referrals(
            session, app, agency="post", category="prohibited_parcel", as_of=as_of
        )
        queue_referral_notices(session, single, group_key="dispatch:1")
        several = add_referrals(session, app, count=3, as_of=as_of, first=10)
        queue_referral_notices(session, several, group_key="dispatch:2")
        chased = add_referrals(session, app, count=5, as_of=as_of, first=20)
        for referral, (step, audience, cc) in zip(
            chased,
            (
                ("reminder", "contact", ()),
                ("due_today", "contact", ()),
                ("overdue", "contact", ("office",)),
                ("leader", "leader", ("office", "contact")),
                ("supervision", "leading_group", ("office", "leader", "contact")),
            ),
            strict=True,
        ):
            clock = add_clock(
                session,
                app,
                subject_type="referral",
                subject_id=referral.id,
                kind="referral_outcome",
                party="samr",
                due_on=date(2021, 10, 20),
            )
            queue_ladder_notice(
                session,
                clock,
                step=step,
                audience=audience,
                cc_audiences=cc,
                app=app,
                group_key=f"sweep:{step}",
            )
        for kind, title, due in (
            ("implementation_plan", "具体实施方案", date(2021, 10, 20)),
            ("monthly_report", "月度工作进展", date(2021, 10, 22)),
            ("deliverable", "阶段性典型案例", date(2021, 11, 19)),
            ("summary_package", "专项行动总结材料", date(2021, 12, 9)),
        ):
            _obligation, clock = add_obligation(
                session, app, kind=kind, agency="police", due_on=due, code=kind, title=title
            )
            queue_ladder_notice(session, clock, step="reminder", app=app, group_key=f"sweep:{kind}")
        _obligation, clock = add_obligation(
            session,
            app,
            kind="implementation_plan",
            agency="tax",
            due_on=date(2021, 10, 20),
            code="plan",
            title="具体实施方案",
        )
        # A kind with no template of its own yet falls back to the generic notice.
        queue_ladder_notice(session, clock, step="plan_issued", app=app, group_key="mobilisation")
    return 12


@pytest.mark.parametrize(
    ("locale", "why", "subject_mark"), [("zh", "您收到此", "【"), ("en", "You receive", "[")]
)
def test_every_message_says_why_and_carries_the_answer_link(
    tmp_path: Path, sqlite_template: Path, locale: str, why: str, subject_mark: str
) -> None:
    target = tmp_path / "ledger.db"
    target.write_bytes(sqlite_template.read_bytes())
    app = build_app(make_settings(tmp_path, f"sqlite:///{target}", locale=locale))
    initialise_ledger(app)
    expected = queue_one_of_each(app)
    send_all(app)
    with app.sessions() as session:
        statuses = session.scalars(select(Message.status)).all()
    with app.sessions() as session:
        errors = session.execute(select(Message.kind, Message.last_error)).all()
    assert statuses == ["sent"] * expected, errors
    mails = read_mailbox(app.settings.mailbox_dir)
    assert len(mails) == expected
    for mail in mails.values():
        text, html = parts(mail)
        assert mail["Subject"].startswith(subject_mark)
        assert "\n" not in mail["Subject"]
        for body in (text, html):
            assert why in body, mail["Subject"]
            assert "/a/" in body, mail["Subject"]
    subjects = " ".join(m["Subject"] for m in mails.values())
    if locale == "zh":
        for word in (
            "线索移送函:",
            "线索移送函(汇总)",
            "到期提醒",
            "今日到期",
            "逾期通知",
            "逾期事项报告",
            "提请挂牌督办",
            "月度工作进展",
            "总结材料",
            "通知:",
        ):
            assert word in subjects
    app.dispose()


def test_a_digest_carries_the_referrals_as_an_xlsx_attachment(sqlite_app: App) -> None:
    from io import BytesIO

    from openpyxl import load_workbook

    app = sqlite_app
    with transaction(app.sessions) as session:
        referrals = add_referrals(session, app, count=4, as_of=app.as_of(AS_OF))
        queue_referral_notices(session, referrals)
    send_all(app)
    (mail,) = read_mailbox(app.settings.mailbox_dir).values()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == "移送线索清单_samr_20211025.xlsx"
    sheet = load_workbook(BytesIO(attachment.get_content())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("移送编号", "线索来源", "线索编号")
    assert [r[0] for r in rows[1:]] == [r.id for r in referrals]
    assert rows[1][5] == "潮鞋专营店1"


# --- templates the office edits -----------------------------------------------------------------


def test_an_agency_specific_template_is_looked_up_before_the_default(
    tmp_path: Path, sqlite_template: Path
) -> None:
    office = tmp_path / "office-templates" / "agencies" / "customs"
    office.mkdir(parents=True)
    (office / "referral.txt").write_text(
        "{% block subject %}海关专用移送函 {{ items[0].referral.id }}{% endblock %}"
        "{% block why %}海关联络人专用说明{% endblock %}{% block body %}正文{% endblock %}",
        encoding="utf-8",
    )
    (office / "referral.html").write_text(
        "{% block why %}<p>海关联络人专用说明</p>{% endblock %}{% block body %}正文{% endblock %}",
        encoding="utf-8",
    )
    target = tmp_path / "ledger.db"
    target.write_bytes(sqlite_template.read_bytes())
    app = build_app(
        make_settings(tmp_path, f"sqlite:///{target}", templates_dir=tmp_path / "office-templates")
    )
    initialise_ledger(app)
    with transaction(app.sessions) as session:
        customs = add_referrals(
            session, app, agency="customs", category="counterfeit_import", as_of=app.as_of(AS_OF)
        )
        samr = add_referrals(session, app, as_of=app.as_of(AS_OF), first=2)
        queue_referral_notices(session, customs + samr)
    send_all(app)
    by_recipient = {
        m["To"].addresses[0].username: m for m in read_mailbox(app.settings.mailbox_dir).values()
    }
    assert by_recipient["customs.contact"]["Subject"] == f"海关专用移送函 {customs[0].id}"
    assert "海关联络人专用说明" in parts(by_recipient["customs.contact"])[0]
    assert by_recipient["samr.contact"]["Subject"].startswith("【2021网络市场监管专项行动")
    app.dispose()


def test_a_broken_template_fails_its_message_and_no_other(
    tmp_path: Path, sqlite_template: Path
) -> None:
    office = tmp_path / "office-templates" / "agencies" / "customs"
    office.mkdir(parents=True)
    (office / "referral.txt").write_text(
        "{% block subject %}{{ items[0].no_such_field }}{% endblock %}"
        "{% block why %}x{% endblock %}{% block body %}x{% endblock %}",
        encoding="utf-8",
    )
    target = tmp_path / "ledger.db"
    target.write_bytes(sqlite_template.read_bytes())
    app = build_app(
        make_settings(tmp_path, f"sqlite:///{target}", templates_dir=tmp_path / "office-templates")
    )
    initialise_ledger(app)
    with transaction(app.sessions) as session:
        customs = add_referrals(
            session, app, agency="customs", category="counterfeit_import", as_of=app.as_of(AS_OF)
        )
        samr = add_referrals(session, app, as_of=app.as_of(AS_OF), first=2)
        queue_referral_notices(session, customs + samr)
    send_all(app)
    with app.sessions() as session:
        rows = {m.party: m for m in session.scalars(select(Message))}
    assert rows["samr"].status == "sent"
    assert rows["customs"].status == "failed"
    assert "no_such_field" in (rows["customs"].last_error or "")
    assert len(read_mailbox(app.settings.mailbox_dir)) == 1
    app.dispose()


# --- the mailbox folder ----------------------------------------------------------------------------


def test_the_mailbox_mailer_overwrites_a_resent_message_instead_of_duplicating(
    tmp_path: Path,
) -> None:
    def mail(subject: str) -> Outgoing:
        message = EmailMessage()
        message["Message-ID"] = "<abc123@wangjian-district.example.org>"
        message["Subject"] = subject
        message.set_content("一")
        return Outgoing.of(message, sender="a@example.org", recipients=["b@example.org"])

    mailer = MailboxMailer(tmp_path / "box")
    (first,) = asyncio.run(mailer.deliver([mail("第一次")]))
    (second,) = asyncio.run(mailer.deliver([mail("第二次")]))
    assert first.status == second.status == "sent"
    files = list((tmp_path / "box").iterdir())
    assert [f.name for f in files] == ["abc123@wangjian-district.example.org.eml"]
    assert message_from_bytes(files[0].read_bytes(), policy=default)["Subject"] == "第二次"


def test_a_bad_recipient_address_fails_that_message_at_once(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        good = add_referrals(session, app, as_of=app.as_of(AS_OF))
        bad = add_referrals(
            session, app, agency="customs", category="counterfeit_import", as_of=app.as_of(AS_OF)
        )
        queue_referral_notices(session, good + bad)
        session.execute(
            update(Notice)
            .where(Notice.party == "customs")
            .values(recipient="customs.contact@example.org\r\nBcc: spy@evil.example")
        )
    send_all(app)
    with app.sessions() as session:
        rows = {m.party: m for m in session.scalars(select(Message))}
    assert rows["samr"].status == "sent"
    assert rows["customs"].status == "failed" and rows["customs"].attempts == 1
    assert "not a valid e-mail address" in (rows["customs"].last_error or "")
    assert len(read_mailbox(app.settings.mailbox_dir)) == 1


def test_the_sender_is_wangjian_mail_from_or_else_the_office(
    tmp_path: Path, sqlite_template: Path
) -> None:
    target = tmp_path / "ledger.db"
    target.write_bytes(sqlite_template.read_bytes())
    app = build_app(
        make_settings(tmp_path, f"sqlite:///{target}", mail_from="网剑通知 <notices@example.org>")
    )
    initialise_ledger(app)
    with transaction(app.sessions) as session:
        queue_referral_notices(session, add_referrals(session, app, as_of=app.as_of(AS_OF)))
    send_all(app)
    (mail,) = read_mailbox(app.settings.mailbox_dir).values()
    assert mail["From"].addresses[0].addr_spec == "notices@example.org"
    assert mail["From"].addresses[0].display_name == "网剑通知"
    with app.sessions() as session:
        message = session.scalars(select(Message)).one()
    assert message.message_id_header.endswith("@example.org>")
    app.dispose()
