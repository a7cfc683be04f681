"""The office's decision on a request for more time: the due date moves (counted from receipt,
within the frozen policy), the ladder restarts from the new date, the reason is kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from wangjian.bootstrap import App
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.extensions import ExtensionError, approve_extension, refuse_extension
from wangjian.ledger.models import Extension, Referral
from wangjian.ledger.sweep import sweep_deadlines

from .deadline_factories import acknowledge, campaign_app, local, make_referral, notices_of


@pytest.fixture
def campaign(tmp_path: Path, database_url: str) -> Iterator[App]:
    with campaign_app(tmp_path, database_url) as app:
        yield app


def _referral(app: App, *, acknowledged: bool = True) -> int:
    # Received Fri 26 Sep 2025: outcome due 15 working days later, Thu 23 Oct.
    with transaction(app.sessions) as session:
        referral = make_referral(
            session, app, agency="samr", received=local("2025-09-26 15:00"), number=1
        )
        if acknowledged:
            acknowledge(session, app, referral, local("2025-09-29 10:00"))
        return referral.id


def _request(app: App, referral_id: int, days: int, reason: str, when: str) -> int:
    with transaction(app.sessions) as session:
        extension = Extension(
            referral_id=referral_id,
            agency_code="samr",
            days=days,
            reason=reason,
            requested_at=local(when),
            requested_by="samr.contact",
        )
        session.add(extension)
        session.flush()
        return extension.id


def _sweep(app: App, when: str) -> None:
    with transaction(app.sessions) as session:
        sweep_deadlines(session=session, app=app, as_of=local(when))


def test_an_approved_extension_moves_the_due_date_and_restarts_the_ladder(campaign: App) -> None:
    referral_id = _referral(campaign)
    for day in ("2025-10-20", "2025-10-23"):
        _sweep(campaign, day)  # reminder and due-today of the original date
    request = _request(campaign, referral_id, 15, "需调取平台交易数据", "2025-10-23 09:30")
    with transaction(campaign.sessions) as session:
        due = approve_extension(
            session=session,
            app=campaign,
            extension_id=request,
            actor="office",
            at=local("2025-10-23 11:00"),
            note="同意延长",
        )
    # 30 working days from 26 Sep: 23 Oct plus 24, 27–31 Oct, 3–7 and 10–13 Nov.
    assert due.due_on == date(2025, 11, 13) and due.count == 30
    assert "30个工作日" in due.explain() and "10-01至10-08" in due.explain()
    for day in ("2025-10-24", "2025-11-07", "2025-11-10", "2025-11-13"):
        _sweep(campaign, day)
    with campaign.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        assert (referral.due_on, referral.original_due_on) == (
            date(2025, 11, 13),
            date(2025, 10, 23),
        )
        assert (referral.extension_days, referral.extension_reason) == (15, "需调取平台交易数据")
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None
        assert (clock.kind, clock.version, clock.due_on) == ("referral_outcome", 3, due.due_on)
        extension = session.get(Extension, request)
        assert extension is not None
        assert (extension.status, extension.decided_by, extension.decision_note) == (
            "approved",
            "office",
            "同意延长",
        )
        told = [
            (n.group_key[-5:], n.step, n.key[-2:])
            for n in notices_of(session, subject_type="referral", subject_id=referral_id)
        ]
        approved = [e for e in history(session, subject_type="referral", subject_id=referral_id)][
            -1
        ]
    # The day after the old date no overdue notice: the ladder speaks again for the new one.
    assert told == [
        ("10-20", "reminder", "v2"),
        ("10-23", "due_today", "v2"),
        ("11-10", "reminder", "v3"),
        ("11-13", "due_today", "v3"),
    ]
    assert approved.action == "extension.approved"
    assert approved.data["from"] == "2025-10-23" and approved.data["to"] == "2025-11-13"
    assert approved.data["reason"] == "需调取平台交易数据"


def test_an_extension_beyond_the_policy_is_refused_and_changes_nothing(campaign: App) -> None:
    referral_id = _referral(campaign)
    first = _request(campaign, referral_id, 10, "补充取证", "2025-10-20 10:00")
    second = _request(campaign, referral_id, 10, "再次延长", "2025-10-21 10:00")
    with transaction(campaign.sessions) as session:
        approve_extension(
            session=session,
            app=campaign,
            extension_id=first,
            actor="office",
            at=local("2025-10-20 15:00"),
        )
    with (
        pytest.raises(ExtensionError, match="at most 15"),
        transaction(campaign.sessions) as session,
    ):
        approve_extension(
            session=session,
            app=campaign,
            extension_id=second,
            actor="office",
            at=local("2025-10-21 15:00"),
        )
    with (
        pytest.raises(ExtensionError, match="approved already"),
        transaction(campaign.sessions) as session,
    ):
        approve_extension(
            session=session,
            app=campaign,
            extension_id=first,
            actor="office",
            at=local("2025-10-21 15:00"),
        )
    with campaign.sessions() as session:
        referral = session.get(Referral, referral_id)
        extension = session.get(Extension, second)
        assert referral is not None and extension is not None
        assert referral.extension_days == 10 and extension.status == "requested"
        # 25 working days from 26 Sep: 23 Oct plus 10 more.
        assert referral.due_on == date(2025, 11, 6)


def test_a_refused_extension_leaves_the_deadline_and_its_ladder_alone(campaign: App) -> None:
    referral_id = _referral(campaign)
    request = _request(campaign, referral_id, 15, "工作量大", "2025-10-20 10:00")
    with transaction(campaign.sessions) as session:
        before = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert before is not None
        version = before.version
        refuse_extension(
            session=session,
            app=campaign,
            extension_id=request,
            actor="office",
            at=local("2025-10-20 16:00"),
            note="理由不充分",
        )
    with campaign.sessions() as session:
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        referral = session.get(Referral, referral_id)
        extension = session.get(Extension, request)
        assert clock is not None and referral is not None and extension is not None
        assert (clock.version, clock.due_on, referral.extension_days) == (
            version,
            date(2025, 10, 23),
            0,
        )
        assert (extension.status, extension.decision_note) == ("refused", "理由不充分")
        events = history(session, subject_type="referral", subject_id=referral_id)
        assert [e.action for e in events] == ["extension.refused"]


def test_an_extension_before_acknowledgement_moves_the_date_the_outcome_clock_will_use(
    campaign: App,
) -> None:
    referral_id = _referral(campaign, acknowledged=False)
    request = _request(campaign, referral_id, 15, "需协查", "2025-09-29 09:30")
    with transaction(campaign.sessions) as session:
        approve_extension(
            session=session,
            app=campaign,
            extension_id=request,
            actor="office",
            at=local("2025-09-29 10:00"),
        )
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None and (clock.kind, clock.version) == ("referral_ack", 1)
        referral = session.get(Referral, referral_id)
        assert referral is not None
        acknowledge(session, campaign, referral, local("2025-09-29 11:00"))
        assert clock.kind == "referral_outcome" and clock.due_on == date(2025, 11, 13)


def test_a_lead_about_a_listed_operator_extends_its_faster_limit(campaign: App) -> None:
    # Leads about merchants a platform already removed are verified within 10 working days
    # (policy `listed_operator_outcome`), extendable by 15: 25 working days from 26 Sep.
    with transaction(campaign.sessions) as session:
        referral = make_referral(
            session,
            campaign,
            agency="samr",
            received=local("2025-09-26 15:00"),
            number=3,
            listed_operator=True,
        )
        acknowledge(session, campaign, referral, local("2025-09-29 10:00"))
        assert referral.due_on == date(2025, 10, 16)
        referral_id = referral.id
    request = _request(campaign, referral_id, 15, "需异地协查", "2025-10-15 10:00")
    with transaction(campaign.sessions) as session:
        due = approve_extension(
            session=session,
            app=campaign,
            extension_id=request,
            actor="office",
            at=local("2025-10-15 11:00"),
        )
    assert due.due_on == date(2025, 11, 6) and due.count == 25
