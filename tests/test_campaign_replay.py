"""A whole campaign replayed day by day, 1 Sep – 31 Dec 2025, one 09:00 sweep a day, against
answers worked out by hand on the official calendar.

The dates straddle National Day (1–8 Oct 2025 off) and its two make-up working days (Sun 28 Sep,
Sat 11 Oct): a reminder falls on the Sunday, an overdue notice on the Saturday. Three members:
samr submits everything on its due day, customs is late with its plan and never sends the
October report, post submits early but is late once. Two referrals: A (samr) acknowledges a day
late, gets an extension and closes a day late; B (customs) never acknowledges and is listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from wangjian.bootstrap import App
from wangjian.ledger.bulletin import build_office_digest
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.extensions import approve_extension
from wangjian.ledger.models import Deadline, Extension, Notice, Referral
from wangjian.ledger.obligations import record_submission

from .deadline_factories import (
    acknowledge,
    campaign_app,
    close,
    local,
    make_referral,
    obligation_id,
    run_sweep,
)

# (sweep day, item, step): every notice the campaign should produce, and no other.
EXPECTED = """
09-16 plan@samr reminder
09-16 plan@customs reminder
09-17 2025-09@samr reminder
09-17 2025-09@customs reminder
09-19 plan@samr due_today
09-19 plan@customs due_today
09-22 2025-09@samr due_today
09-22 2025-09@customs due_today
09-22 plan@customs overdue
09-28 typical-cases-oct@samr reminder
09-28 typical-cases-oct@customs reminder
09-29 A due_today
09-30 A overdue
10-09 typical-cases-oct@samr due_today
10-09 typical-cases-oct@customs due_today
10-10 B due_today
10-11 B overdue
10-16 B leader
10-17 2025-10@samr reminder
10-17 2025-10@customs reminder
10-20 A reminder
10-22 2025-10@samr due_today
10-22 2025-10@customs due_today
10-23 2025-10@customs overdue
10-23 B supervision
10-29 2025-10@customs leader
11-05 2025-10@customs supervision
11-10 A reminder
11-13 A due_today
11-14 A overdue
11-18 2025-11@samr reminder
11-18 2025-11@customs reminder
11-18 2025-11@post reminder
11-21 2025-11@samr due_today
11-21 2025-11@customs due_today
11-21 2025-11@post due_today
11-24 2025-11@post overdue
12-05 summary@samr reminder
12-05 summary@customs reminder
12-10 summary@samr due_today
12-10 summary@customs due_today
"""

# Who each step goes to, as config/sla.yaml's ladders say: (to, cc).
ADDRESSED = {
    "reminder": ("contact", []),
    "due_today": ("contact", []),
    "overdue": ("contact", ["office"]),
    "leader": ("leader", ["office", "contact"]),
    "supervision": ("leading_group", ["office", "leader", "contact"]),
}

OBLIGATIONS = {
    "plan": "implementation_plan:plan",
    "2025-09": "monthly_report:2025-09",
    "typical-cases-oct": "deliverable:typical-cases-oct",
    "2025-10": "monthly_report:2025-10",
    "2025-11": "monthly_report:2025-11",
    "summary": "summary_package:summary",
}

# (when, member, obligation): submissions through the portal.
SUBMISSIONS = [
    ("2025-09-12 16:00", "post", "plan"),
    ("2025-09-12 16:00", "post", "2025-09"),
    ("2025-09-19 10:00", "samr", "plan"),
    ("2025-09-22 10:00", "samr", "2025-09"),
    ("2025-09-22 10:00", "customs", "2025-09"),
    ("2025-09-24 10:00", "customs", "plan"),
    ("2025-09-26 16:00", "post", "typical-cases-oct"),
    ("2025-10-09 10:00", "samr", "typical-cases-oct"),
    ("2025-10-09 10:00", "customs", "typical-cases-oct"),
    ("2025-10-16 16:00", "post", "2025-10"),
    ("2025-10-22 10:00", "samr", "2025-10"),
    ("2025-11-21 10:00", "samr", "2025-11"),
    ("2025-11-21 10:00", "customs", "2025-11"),
    ("2025-11-26 10:00", "post", "2025-11"),
    ("2025-12-01 16:00", "post", "summary"),
    ("2025-12-10 10:00", "samr", "summary"),
    ("2025-12-10 10:00", "customs", "summary"),
]


@pytest.fixture
def campaign(tmp_path: Path, database_url: str) -> Iterator[App]:
    """The 2025 test campaign on a fresh ledger (SQLite and PostgreSQL)."""
    with campaign_app(tmp_path, database_url) as app:
        yield app


def _addresses(app: App, party: str) -> dict[str, str]:
    agency = app.config.agencies[party]
    return {
        "contact": agency.contact.email,
        "leader": agency.leader.email,
        "office": app.config.campaign.office.email,
        "leading_group": app.config.campaign.leading_group.email,
    }


def test_a_whole_campaign_replayed_day_by_day(campaign: App) -> None:
    app = campaign
    referrals: dict[str, int] = {}
    labels: dict[tuple[str, int], str] = {}
    seen: list[tuple[str, str, str]] = []
    totals = {"reminders": 0, "overdue_notices": 0, "escalations": 0, "listed": 0}
    digests = {}
    day = local("2025-09-01")
    while day <= local("2025-12-31"):
        result = run_sweep(app, day)
        totals["reminders"] += result.reminders
        totals["overdue_notices"] += result.overdue_notices
        totals["escalations"] += result.escalations
        totals["listed"] += result.listed_for_supervision
        with app.sessions() as session:
            if not labels:
                for short, kind_code in OBLIGATIONS.items():
                    for member in ("samr", "customs", "post"):
                        labels[("obligation", obligation_id(session, kind_code, member))] = (
                            f"{short}@{member}"
                        )
            today = session.scalars(
                select(Notice).where(Notice.group_key == f"sweep:{day.date().isoformat()}")
            ).all()
            for notice in today:
                label = labels[(notice.subject_type, notice.subject_id)]
                seen.append((f"{day:%m-%d}", label, notice.step or ""))
                to, cc = ADDRESSED[notice.step or ""]
                addresses = _addresses(app, notice.party)
                assert notice.audience == to
                assert notice.recipient == addresses[to]
                assert notice.cc == [addresses[a] for a in cc]
            if day.date().isoformat() in ("2025-10-16", "2025-10-23", "2025-11-06", "2025-12-31"):
                digests[day.date().isoformat()] = build_office_digest(
                    session=session, app=app, as_of=day
                )
        _act(app, day, referrals, labels)
        day += timedelta(days=1)

    expected = [tuple(line.split()) for line in EXPECTED.strip().splitlines()]
    assert sorted(seen) == sorted(expected)
    assert totals == {"reminders": 31, "overdue_notices": 6, "escalations": 2, "listed": 2}

    with app.sessions() as session:
        b = session.get(Referral, referrals["B"])
        assert b is not None
        clock = session.scalars(
            select(Deadline).where(Deadline.subject_type == "referral", Deadline.subject_id == b.id)
        ).one()
        assert (clock.status, clock.kind, clock.last_step) == (
            "open",
            "referral_ack",
            "supervision",
        )
        assert clock.next_fire_at is None  # the ladder is spent: nothing more is sent
        assert clock.listed_at == local("2025-10-23")
        assert clock.escalated_at == local("2025-10-16")
        assert str(clock.overdue_since) == "2025-10-11"  # the make-up Saturday
        events = history(session, subject_type="referral", subject_id=b.id)
        assert [e.action for e in events] == [
            "deadline.overdue",
            "deadline.escalated",
            "deadline.listed",
        ]
        assert events[-1].data == {
            "deadline_id": clock.id,
            "clock": "referral_ack",
            "version": 1,
            "step": "supervision",
        }
        assert events[-1].at == local("2025-10-23") and events[-1].actor == "sweep"
        a = session.get(Referral, referrals["A"])
        assert a is not None
        assert (str(a.due_on), a.extension_days, a.extension_reason) == (
            "2025-11-13",
            15,
            "需调取平台交易数据",
        )
        assert str(a.original_due_on) == "2025-10-23"

    # Escalations made on the day, for the office's artifact.
    for day_text, step in (("2025-10-16", "告知分管领导"), ("2025-10-23", "挂牌督办")):
        today = digests[day_text].escalations_today
        assert list(today["升级"]) == [step] and list(today["单位"]) == ["XX海关"]
        assert (
            today["事项"]
            .iloc[0]
            .startswith(f"移送#{referrals['B']}(线索签收)进出口及跨境电商侵权假冒")
        )
    assert digests["2025-11-06"].escalations_today.empty

    early = digests["2025-11-06"]
    assert list(early.listed["事项"].str.contains("移送#")) == [True, False]
    assert list(early.listed["单位"]) == ["XX海关", "XX海关"]
    assert list(early.listed["挂牌日期"]) == ["2025-10-23", "2025-11-05"]
    assert set(early.did_well["代码"]) == {"samr", "post"}
    assert "挂牌督办" in early.bulletin and "区邮政管理局(按时报送4项" in early.bulletin

    late = digests["2025-12-31"]
    assert list(late.did_well["代码"]) == ["samr"]  # post sent the November report late
    board = late.report_board.set_index("单位")
    assert board.loc["区市场监督管理局", "2025-11月报"] == "✓ 11-21"
    assert board.loc["区邮政管理局", "2025-11月报"] == "✓ 11-26 迟报"
    assert board.loc["XX海关", "2025-10月报"] == "✗ 逾期50个工作日"
    agencies = late.overdue_by_agency.set_index("代码")
    assert agencies.loc["customs", "签收逾期"] == 1 and agencies.loc["customs", "报送逾期"] == 1
    assert agencies.loc["customs", "挂牌督办"] == 2
    assert agencies.loc["customs", "最长逾期(工作日)"] == 59  # B, due 10 Oct
    assert list(agencies.index) == ["customs"]
    assert "2025年11月工作进展应于11月21日(含)前报送。按时报送:XX海关、区市场监督管理局。" in (
        late.bulletin
    )


def _act(
    app: App, day: object, referrals: dict[str, int], labels: dict[tuple[str, int], str]
) -> None:
    """The members' and the office's doings on `day`, after its 09:00 sweep."""
    date_text = f"{day:%Y-%m-%d}"
    with transaction(app.sessions) as session:
        if date_text == "2025-09-26":
            a = make_referral(
                session, app, agency="samr", received=local("2025-09-26 15:00"), number=1
            )
            referrals["A"], labels[("referral", a.id)] = a.id, "A"
        if date_text == "2025-09-30":
            a = session.get(Referral, referrals["A"])
            assert a is not None
            acknowledge(session, app, a, local("2025-09-30 10:00"))
            b = make_referral(
                session,
                app,
                agency="customs",
                received=local("2025-09-30 11:00"),
                number=2,
                category="counterfeit_import",
            )
            referrals["B"], labels[("referral", b.id)] = b.id, "B"
        if date_text == "2025-10-22":
            extension = Extension(
                referral_id=referrals["A"],
                agency_code="samr",
                days=15,
                reason="需调取平台交易数据",
                requested_at=local("2025-10-21 16:00"),
                requested_by="samr.contact",
            )
            session.add(extension)
            session.flush()
            approve_extension(
                session=session,
                app=app,
                extension_id=extension.id,
                actor="office",
                at=local("2025-10-22 10:00"),
            )
        if date_text == "2025-11-14":
            a = session.get(Referral, referrals["A"])
            assert a is not None
            close(session, a, local("2025-11-14 15:00"))
        for when, member, short in SUBMISSIONS:
            if when.startswith(date_text):
                record_submission(
                    session=session,
                    obligation_id=obligation_id(session, OBLIGATIONS[short], member),
                    actor=f"{member}.contact",
                    at=local(when),
                    text="报告正文",
                )
