"""Assistance requests to platforms (协查): a 24-hour clock in calendar hours, chased once per
step by the ordinary sweep, stopped by the platform's answer; their figures in the report."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import func, select

from wangjian.bootstrap import App
from wangjian.ledger.assist import (
    AlreadyRequested,
    AnswerFile,
    AssistNotFound,
    AssistRefused,
    answer_assistance,
    request_assistance,
)
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import AssistRequest, Message, Notice
from wangjian.ledger.sending import drain_outbox
from wangjian.ledger.sweep import sweep_deadlines
from wangjian.reporting.statistics import assist_statistics

from .factories import make_referral

TZ = ZoneInfo("Asia/Shanghai")
TAOBAO = ("assist@taobao-platform.example.org", "compliance@taobao-platform.example.org")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def ask(app: App, when: datetime, *, platform: str = "taobao", **values: Any) -> int:
    with transaction(app.sessions) as session:
        referral = make_referral(session, app, agency="samr", clock=False)
        made = request_assistance(
            session=session,
            app=app,
            platform_code=platform,
            referral_id=referral.id,
            asked=values.pop("asked", ["identity", "sales"]),
            detail=values.pop("detail", "请提供该店铺2021年9月以来的订单明细"),
            actor="office:test",
            at=when,
            **values,
        )
        return made.id


def sweep(app: App, when: datetime) -> dict[str, int]:
    """The steps the sweep sends at `when` for assistance requests, by step."""
    with transaction(app.sessions) as session:
        result = sweep_deadlines(session=session, app=app, as_of=when, subject_types=["assist"])
    return result.by_kind.get("assist_response", {})


def steps(app: App, assist_id: int) -> list[tuple[str, str, list[str]]]:
    with app.sessions() as session:
        notices = session.scalars(
            select(Notice)
            .where(Notice.subject_type == "assist", Notice.subject_id == assist_id)
            .order_by(Notice.id)
        )
        return [(n.step or n.kind, n.recipient, list(n.cc)) for n in notices]


@pytest.mark.parametrize(
    ("platform", "requested", "due", "reminder", "escalation"),
    [
        # Friday evening to Saturday evening: 24 calendar hours, the weekend counts.
        ("taobao", "2021-10-29 20:30", "2021-10-30 20:30", "2021-10-30 08:30", "2021-10-31 20:30"),
        # 48 hours from late Saturday night: across two midnights and the whole Sunday.
        ("douyin", "2021-10-30 23:45", "2021-11-01 23:45", "2021-11-01 11:45", "2021-11-02 23:45"),
    ],
)
def test_the_answer_clock_runs_in_calendar_hours_across_midnight_and_the_weekend(
    app: App, platform: str, requested: str, due: str, reminder: str, escalation: str
) -> None:
    assist_id = ask(app, at(requested), platform=platform)
    with app.sessions() as session:
        clock = clock_of(session, subject_type="assist", subject_id=assist_id)
        assert clock is not None and clock.ladder == "assist_request"
        assert clock.due_at == at(due) and clock.next_fire_at == at(reminder)
    minute = timedelta(minutes=1)
    # Each step fires at its hour and minute, not a day later and not at local midnight.
    assert sweep(app, at(reminder) - minute) == {}
    assert sweep(app, at(reminder)) == {"reminder": 1}
    assert sweep(app, at(due) - minute) == {}
    assert sweep(app, at(due)) == {"overdue": 1}
    assert sweep(app, at(escalation) - minute) == {}
    assert sweep(app, at(escalation)) == {"leader": 1}
    assert sweep(app, at(escalation) + timedelta(days=3)) == {}


def test_the_chase_and_the_escalation_reach_the_right_people_once_each(
    app: App, tmp_path: Path
) -> None:
    office = app.config.campaign.office.email
    assist_id = ask(app, at("2021-10-29 20:30"))
    # Two sweeps at each moment, and a late catch-up: every step is queued and sent once.
    for when in ("2021-10-30 09:00", "2021-10-30 09:00", "2021-10-30 21:00", "2021-10-31 21:00"):
        sweep(app, at(when))
        sweep(app, at(when))
        drain_outbox(app=app, mailer=app.mailer, as_of=at(when))
    sweep(app, at("2021-11-05 09:00"))
    assert steps(app, assist_id) == [
        ("assist_request", TAOBAO[0], []),
        ("reminder", TAOBAO[0], []),
        ("overdue", TAOBAO[0], [office]),
        ("leader", TAOBAO[1], [office, TAOBAO[0]]),
    ]
    with app.sessions() as session:
        actions = [e.action for e in history(session, subject_type="assist", subject_id=assist_id)]
        sent = session.scalar(select(func.count()).select_from(Message))
    assert actions == ["assist.requested", "deadline.overdue", "deadline.escalated"]
    assert sent == 4
    mails = {
        m["To"].addresses[0].addr_spec + " " + m["X-Wangjian-Kind"]: m
        for m in (
            email.message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in (tmp_path / "mailbox").glob("*.eml")
        )
    }
    letter = mails[f"{TAOBAO[0]} assist_request"]
    text = letter.get_body(("plain",)).get_content()
    # Why, what, on what basis, by when (to the minute), and how to answer.
    assert "协查函" in letter["Subject"] and "2021年10月30日 20:30" in letter["Subject"]
    assert "协助调查" in text and "经营者身份信息" in text and "交易记录" in text
    assert "《中华人民共和国电子商务法》第二十五条" in text
    assert "按自然小时连续计算" in text and "截止2021-10-30 20:30" in text
    assert f"/assists/{assist_id}" in text and "查无此经营者" in text
    escalation = mails[f"{TAOBAO[1]} leader"]
    assert "合规负责人" in escalation.get_body(("plain",)).get_content()
    assert "已超过答复期限约25小时" in escalation.get_body(("plain",)).get_content()
    overdue = mails[f"{TAOBAO[0]} overdue"]
    assert office in overdue["Cc"]


def test_an_answer_through_the_link_stops_the_clock_and_the_chase(app: App) -> None:
    assist_id = ask(app, at("2021-10-29 20:30"))
    sweep(app, at("2021-10-30 09:00"))  # the reminder is queued, not yet sent
    data = AnswerFile("2021/10/data.csv", "订单明细.csv", "a" * 64, 2048)
    with transaction(app.sessions) as session:
        with pytest.raises(AssistNotFound):
            answer_assistance(
                session=session,
                app=app,
                assist_id=assist_id,
                platform_code="jd",
                outcome="answered",
                file=data,
                actor="platform:jd",
                at=at("2021-10-30 10:00"),
            )
        with pytest.raises(AssistRefused, match="upload the data file"):
            answer_assistance(
                session=session,
                app=app,
                assist_id=assist_id,
                platform_code="taobao",
                outcome="answered",
                actor="platform:taobao",
                at=at("2021-10-30 10:00"),
            )
        answer_assistance(
            session=session,
            app=app,
            assist_id=assist_id,
            platform_code="taobao",
            outcome="answered",
            file=data,
            note="已调取",
            actor="platform:taobao",
            at=at("2021-10-30 10:00"),
        )
    with (
        transaction(app.sessions) as session,
        pytest.raises(AssistRefused, match="already closed"),
    ):
        answer_assistance(
            session=session,
            app=app,
            assist_id=assist_id,
            platform_code="taobao",
            outcome="no_such_operator",
            actor="platform:taobao",
            at=at("2021-10-30 11:00"),
        )
    report = drain_outbox(app=app, mailer=app.mailer, as_of=at("2021-10-30 10:05"))
    # The request went out; the reminder queued before the answer is withdrawn, not sent.
    assert (report.sent, report.cancelled) == (1, 1)
    assert sweep(app, at("2021-11-05 09:00")) == {}
    with app.sessions() as session:
        clock = clock_of(session, subject_type="assist", subject_id=assist_id)
        events = history(session, subject_type="assist", subject_id=assist_id)
    assert clock is not None and clock.status == "met"
    answered = events[-1]
    assert answered.action == "assist.answered" and answered.actor == "platform:taobao"
    assert answered.data["hours"] == 13.5 and answered.data["on_time"] is True


def test_the_same_request_is_made_once_and_a_bad_one_not_at_all(app: App) -> None:
    first = ask(app, at("2021-10-29 20:30"))
    with app.sessions() as session:
        referral_id = session.scalar(
            select(AssistRequest.referral_id).where(AssistRequest.id == first)
        )
    with transaction(app.sessions) as session, pytest.raises(AlreadyRequested) as again:
        request_assistance(
            session=session,
            app=app,
            platform_code="taobao",
            referral_id=referral_id,
            asked=["sales", "identity"],  # the same data, asked in another order
            detail=None,
            actor="office:test",
            at=at("2021-10-29 21:00"),
        )
    assert again.value.existing == first
    for values in ({"platform": "kuaishou"}, {"asked": ["horoscope"]}, {"asked": []}):
        with pytest.raises(AssistRefused):
            ask(app, at("2021-10-29 21:00"), **values)
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AssistRequest)) == 1
        assert session.scalar(select(func.count()).select_from(Notice)) == 1


def _frame(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["platform_code", "status", "requested_at", "answered_at"])
    for column in ("requested_at", "answered_at"):
        frame[column] = pd.to_datetime(frame[column]).dt.tz_localize(TZ).dt.tz_convert("UTC")
    frame["due_at"] = frame["requested_at"] + pd.Timedelta(hours=24)
    frame["id"] = range(1, len(frame) + 1)
    return frame


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # Answered in 2, 10, 30 and 50 hours: median 20, 90th percentile 44, half within 24 h.
        (
            [
                ("taobao", "answered", "2021-10-25 09:00", "2021-10-25 11:00"),
                ("taobao", "answered", "2021-10-25 09:00", "2021-10-25 19:00"),
                ("taobao", "no_such_operator", "2021-10-25 09:00", "2021-10-26 15:00"),
                ("taobao", "answered", "2021-10-25 09:00", "2021-10-27 11:00"),
            ],
            {"requests": 4, "answered": 4, "median": 20.0, "p90": 44.0, "share": 0.5},
        ),
        # One answered in an hour, one 24 hours unanswered (counts against), one too recent.
        (
            [
                ("jd", "answered", "2021-10-30 09:00", "2021-10-30 10:00"),
                ("jd", "open", "2021-10-29 09:00", None),
                ("jd", "open", "2021-10-31 08:00", None),
            ],
            {"requests": 3, "answered": 1, "median": 1.0, "p90": 1.0, "share": 0.5},
        ),
    ],
)
def test_assist_figures_median_90th_percentile_and_share_within_24_hours(
    default_config: Any, rows: list[tuple[str, str, str, str | None]], expected: dict[str, Any]
) -> None:
    headline, table = assist_statistics(_frame(rows), default_config, at("2021-10-31 09:00"))
    assert (
        headline["requests"],
        headline["answered"],
        headline["median_answer_hours"],
        headline["p90_answer_hours"],
        headline["within_24h_share"],
    ) == tuple(expected.values())
    platform = rows[0][0]
    assert headline["by_platform"][platform]["requests"] == expected["requests"]  # type: ignore[index]
    total = table[table["平台"] == "合计"].iloc[0]
    assert total["协查请求(件)"] == expected["requests"]
    assert total["24小时内答复率"] == f"{expected['share'] * 100:.1f}%"


def test_the_letters_render_in_english_too(tmp_path: Path, sqlite_template: Path) -> None:
    import shutil

    from wangjian.bootstrap import build_app, use_app
    from wangjian.ledger.listed import queue_listed_digest
    from wangjian.ledger.models import ListedOperator
    from wangjian.ledger.setup import initialise_ledger

    from .conftest import make_settings

    shutil.copy(sqlite_template, tmp_path / "ledger.db")
    app = build_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", locale="en"))
    initialise_ledger(app)
    with use_app(app):
        assist_id = ask(app, at("2021-10-29 20:30"))
        with transaction(app.sessions) as session:
            session.add(
                ListedOperator(
                    list_kind="serious_violation",
                    identity_key="cc:X",
                    credit_code="X",
                    operator_name="某公司",
                    listed_on=at("2021-10-01 09:00").date(),
                )
            )
            queue_listed_digest(session=session, app=app, as_of=at("2021-10-29 21:00"))
        for when in (
            "2021-10-29 21:00",
            "2021-10-30 09:00",
            "2021-10-30 21:00",
            "2021-10-31 21:00",
        ):
            sweep(app, at(when))
            report = drain_outbox(app=app, mailer=app.mailer, as_of=at(when))
            assert report.failures == []
    app.dispose()
    subjects = sorted(
        email.message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]
        for p in (tmp_path / "mailbox").glob("*.eml")
    )
    assert len(subjects) == 8  # the request, its three steps, four platforms' digests
    assert sum("Shared list of removed operators: 1 newly listed" in s for s in subjects) == 4
    assert any(f"Request for assistance no. {assist_id}" in s for s in subjects)
    assert any("Unanswered assistance requests" in s for s in subjects)
