"""Agencies' answers: state transitions, clocks, events — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from agencies.answers import (
    StoredFile,
    TypicalCaseInput,
    acknowledge_referral,
    report_outcome,
    request_extension,
    return_referral,
    submit_monthly_report,
    submit_summary_package,
)
from agencies.errors import NotFound, Refused
from wangjian.bootstrap import App
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import Extension, Obligation, Referral, TypicalCase
from wangjian.ledger.packages import check_packages

from .factories import AT, make_obligation, make_referral

LATER = AT + timedelta(days=1)
AGENCY = {"actor": "agency:samr", "origin": "portal 203.0.113.9"}


def test_acknowledging_stops_the_ack_clock_and_starts_the_outcome_clock(app: App) -> None:
    with transaction(app.sessions) as session:
        referral_id = make_referral(session, app).id
    with transaction(app.sessions) as session:
        acknowledge_referral(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            at=LATER,
            **AGENCY,
        )
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        assert referral.status == "acknowledged" and referral.acknowledged_at == LATER
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None
        assert (clock.kind, clock.ladder, clock.status) == (
            "referral_outcome",
            "referral_outcome",
            "open",
        )
        assert clock.due_on == referral.due_on and clock.version == 2
        events = history(session, subject_type="referral", subject_id=referral_id)
        assert [(e.action, e.actor, e.origin) for e in events] == [
            ("referral.acknowledged", "agency:samr", "portal 203.0.113.9")
        ]


def test_an_outcome_closes_the_referral_and_meets_its_clock(app: App) -> None:
    with transaction(app.sessions) as session:
        referral_id = make_referral(session, app, status="acknowledged").id
    with transaction(app.sessions) as session:
        report_outcome(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            outcome="case_filed",
            case_number="区市监立字〔2021〕88号",
            decided_on=date(2021, 10, 26),
            note="已立案调查",
            at=LATER,
            **AGENCY,
        )
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        assert (referral.status, referral.outcome, referral.case_number) == (
            "closed",
            "case_filed",
            "区市监立字〔2021〕88号",
        )
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None
        assert (clock.status, clock.next_fire_at, clock.met_at) == ("met", None, LATER)
        event = history(session, subject_type="referral", subject_id=referral_id)[-1]
        assert event.action == "referral.outcome_reported" and event.data["on_time"] is True
    with transaction(app.sessions) as session, pytest.raises(Refused, match="closed"):
        report_outcome(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            outcome="no_violation",
            at=LATER,
            **AGENCY,
        )


@pytest.mark.parametrize(
    ("outcome", "case_number", "decided_on", "column"),
    [
        ("case_filed", None, None, "case_number"),
        ("closed_somehow", None, None, "outcome"),
        ("ordered_to_correct", None, date(2021, 12, 1), "decided_on"),
    ],
)
def test_bad_outcomes_are_refused_with_the_column(
    sqlite_app: App, outcome: str, case_number: str | None, decided_on: date | None, column: str
) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral_id = make_referral(session, app).id
    with transaction(app.sessions) as session, pytest.raises(Refused) as refused:
        report_outcome(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            outcome=outcome,
            case_number=case_number,
            decided_on=decided_on,
            at=LATER,
            **AGENCY,
        )
    assert refused.value.column == column and refused.value.zh and refused.value.en


def test_an_outcome_without_acknowledgement_also_records_receipt(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral = make_referral(session, app)
        report_outcome(
            session=session,
            app=app,
            referral_id=referral.id,
            agency_code="samr",
            outcome="info_removed",
            at=LATER,
            **AGENCY,
        )
        assert referral.acknowledged_at == LATER and referral.decided_on == LATER.date()
        clock = clock_of(session, subject_type="referral", subject_id=referral.id)
        assert clock is not None and clock.status == "met"


def test_an_agency_cannot_answer_another_agencys_referral(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral_id = make_referral(session, app, agency="customs").id
    for action in (
        lambda s: acknowledge_referral(
            session=s, app=app, referral_id=referral_id, agency_code="samr", at=LATER, **AGENCY
        ),
        lambda s: return_referral(
            session=s,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            reason="x",
            at=LATER,
            **AGENCY,
        ),
        lambda s: request_extension(
            session=s,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            days=3,
            reason="x",
            at=LATER,
            **AGENCY,
        ),
    ):
        with transaction(app.sessions) as session, pytest.raises(NotFound):
            action(session)
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None and referral.status == "open"


def test_returning_cancels_the_clock_and_needs_a_reason(app: App) -> None:
    with transaction(app.sessions) as session:
        referral_id = make_referral(session, app).id
    with transaction(app.sessions) as session, pytest.raises(Refused, match="reason"):
        return_referral(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            reason="  ",
            at=LATER,
            **AGENCY,
        )
    with transaction(app.sessions) as session:
        return_referral(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            reason="经营者实际位于外省,非本单位管辖",
            at=LATER,
            **AGENCY,
        )
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None and referral.status == "returned"
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None and clock.status == "cancelled" and clock.next_fire_at is None
    with transaction(app.sessions) as session, pytest.raises(Refused, match="returned"):
        acknowledge_referral(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            at=LATER,
            **AGENCY,
        )


def test_extension_requests_stay_within_the_frozen_limit_one_at_a_time(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral = make_referral(session, app, status="acknowledged")
        # The frozen policy, not today's sla.yaml, says how far a referral may be extended.
        referral.policy = {
            **referral.policy,
            "outcome": {**referral.policy["outcome"], "extendable_by": 10},
        }
        referral_id = referral.id
    ask = {"session": None, "app": app, "referral_id": referral_id, "agency_code": "samr"}
    with transaction(app.sessions) as session, pytest.raises(Refused, match="between 1 and 10"):
        request_extension(
            **{**ask, "session": session}, days=11, reason="案情复杂", at=LATER, **AGENCY
        )
    with transaction(app.sessions) as session:
        extension = request_extension(
            **{**ask, "session": session},
            days=10,
            reason="案情复杂,需调取平台数据",
            at=LATER,
            **AGENCY,
        )
        assert extension.status == "requested" and extension.days == 10
    with transaction(app.sessions) as session, pytest.raises(Refused, match="already waiting"):
        request_extension(**{**ask, "session": session}, days=2, reason="再延", at=LATER, **AGENCY)
    with app.sessions() as session:
        assert len(session.scalars(select(Extension)).all()) == 1


def test_a_monthly_report_meets_the_obligation_once(app: App) -> None:
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(session, app, agency="post").id
    attachment = StoredFile("attachment", "十一月动态.pdf", "2021/11/a.pdf", 1200, "0" * 64)
    with transaction(app.sessions) as session:
        submit_monthly_report(
            session=session,
            app=app,
            obligation_id=obligation_id,
            agency_code="post",
            text="本月开展寄递渠道专项检查3次",
            attachments=[attachment],
            actor="agency:post",
            at=LATER,
            origin="portal",
        )
    with app.sessions() as session:
        obligation = session.get(Obligation, obligation_id)
        assert obligation is not None and obligation.status == "submitted"
        clock = clock_of(session, subject_type="obligation", subject_id=obligation_id)
        assert clock is not None and clock.status == "met"
    with transaction(app.sessions) as session, pytest.raises(Refused, match="already"):
        submit_monthly_report(
            session=session,
            app=app,
            obligation_id=obligation_id,
            agency_code="post",
            text="again",
            actor="agency:post",
            at=LATER,
        )
    with transaction(app.sessions) as session, pytest.raises(NotFound):
        submit_monthly_report(
            session=session,
            app=app,
            obligation_id=obligation_id,
            agency_code="samr",
            text="not mine",
            actor="agency:samr",
            at=LATER,
        )


def _file(role: str, name: str) -> StoredFile:
    return StoredFile(role, name, f"x/{name}", 10, "0" * 64)


def test_a_package_counts_only_typical_cases_with_their_penalty_decision(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(
            session, app, kind="summary_package", code="summary", due_on=date(2021, 12, 9)
        ).id
    parts = {
        "summary_report": _file("summary_report", "总结.docx"),
        "statistics_table": _file("statistics_table", "统计表.xlsx"),
        "joint_enforcement": [_file("joint_enforcement", "联合执法.pdf")],
    }
    cases = [
        TypicalCaseInput(f"案例{i}", f"案号{i}", None, _file("penalty_decision", f"决定书{i}.pdf"))
        for i in range(4)
    ]
    with transaction(app.sessions) as session:
        first = submit_summary_package(
            session=session,
            app=app,
            obligation_id=obligation_id,
            agency_code="samr",
            typical_cases=[*cases, TypicalCaseInput("无决定书的案例")],
            actor="agency:samr",
            at=LATER,
            **parts,  # type: ignore[arg-type]
        )
        assert not first.complete
        assert any("无决定书的案例" in p["zh"] for p in first.problems)
        assert any("4" in p["en"] and "5" in p["en"] for p in first.problems)
    with app.sessions() as session:
        obligation = session.get(Obligation, obligation_id)
        assert obligation is not None and obligation.status == "incomplete"
        clock = clock_of(session, subject_type="obligation", subject_id=obligation_id)
        assert clock is not None and clock.status == "open"
    fifth = TypicalCaseInput("案例4", "案号4", None, _file("penalty_decision", "决定书4.pdf"))
    with transaction(app.sessions) as session:
        second = submit_summary_package(
            session=session,
            app=app,
            obligation_id=obligation_id,
            agency_code="samr",
            typical_cases=[*cases, fifth],
            actor="agency:samr",
            at=LATER,
            **parts,  # type: ignore[arg-type]
        )
        assert second.complete and second.problems == []
    with app.sessions() as session:
        obligation = session.get(Obligation, obligation_id)
        assert obligation is not None and obligation.status == "submitted"
        clock = clock_of(session, subject_type="obligation", subject_id=obligation_id)
        assert clock is not None and clock.status == "met"
        assert len(session.scalars(select(TypicalCase)).all()) == 10
        # The report's own completeness check agrees with the one made at submission.
        [check] = [
            c for c in check_packages(session, app.config, as_of=LATER) if c.agency_code == "samr"
        ]
        assert check.complete and check.valid_cases == 5
