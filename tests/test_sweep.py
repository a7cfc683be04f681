"""The sweep's promises: once per step, catching up without pointless reminders, stopping at
once when an item is resolved, telling the right people, and reading only what is due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from wangjian.bootstrap import App
from wangjian.domain.deadlines import DueDate, end_of_day
from wangjian.ledger.clocks import clock_of, meet_clock, open_clock, open_clocks_bulk
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Deadline, Notice, Referral
from wangjian.ledger.obligations import open_obligations
from wangjian.ledger.sweep import sweep_deadlines

from .deadline_factories import (
    acknowledge,
    campaign_app,
    local,
    make_referral,
    notices_of,
    obligation_id,
)


@pytest.fixture
def campaign(tmp_path: Path, database_url: str) -> Iterator[App]:
    with campaign_app(tmp_path, database_url) as app:
        yield app


def sweep(app: App, when: str) -> dict[str, Any]:
    with transaction(app.sessions) as session:
        return sweep_deadlines(session=session, app=app, as_of=local(when)).as_json()


LADDER_ORDER = ["reminder", "due_today", "overdue", "leader", "supervision"]


def steps_of(app: App, subject_type: str, subject_id: int) -> list[tuple[str, str]]:
    """(sweep day, step) of every notice about one item, by day and ladder order."""
    with app.sessions() as session:
        told = [
            (n.group_key.removeprefix("sweep:"), n.step or "")
            for n in notices_of(session, subject_type=subject_type, subject_id=subject_id)
        ]
    return sorted(told, key=lambda t: (t[0], LADDER_ORDER.index(t[1])))


def referral_on(app: App, received: str, agency: str = "customs", number: int = 1) -> int:
    with transaction(app.sessions) as session:
        return make_referral(
            session, app, agency=agency, received=local(received), number=number
        ).id


def test_two_sweeps_on_the_same_day_send_nothing_new(campaign: App) -> None:
    referral = referral_on(campaign, "2025-09-30 11:00")  # acknowledgement due Fri 10 Oct
    first = sweep(campaign, "2025-10-10")
    assert (first["reminders"], first["notices_queued"]) == (1, 1)
    again = sweep(campaign, "2025-10-10")
    evening = sweep(campaign, "2025-10-10 17:30")
    for later in (again, evening):
        assert later["clocks_due"] == later["notices_queued"] == later["reminders"] == 0
    assert steps_of(campaign, "referral", referral) == [("2025-10-10", "due_today")]


def test_a_step_replayed_after_a_crash_is_not_queued_twice(campaign: App) -> None:
    referral = referral_on(campaign, "2025-09-30 11:00")
    sweep(campaign, "2025-10-11")
    # Wind the clock back as if its update had been lost: the outbox keys still hold.
    with transaction(campaign.sessions) as session:
        session.execute(
            update(Deadline)
            .where(Deadline.subject_id == referral, Deadline.subject_type == "referral")
            .values(next_step=0, next_fire_at=local("2025-10-10 00:00"))
        )
    replay = sweep(campaign, "2025-10-11")
    assert replay["overdue_notices"] == 1 and replay["notices_queued"] == 0
    assert steps_of(campaign, "referral", referral) == [("2025-10-11", "overdue")]


def test_a_week_without_sweeps_sends_each_step_now_due_once(campaign: App) -> None:
    # Acknowledgement due Fri 10 Oct: due today 10 Oct, overdue Sat 11 Oct (a make-up working
    # day), leader Thu 16 Oct, supervision Thu 23 Oct.
    referral = referral_on(campaign, "2025-09-30 11:00")
    assert sweep(campaign, "2025-10-09")["clocks_due"] == 0
    caught_up = sweep(campaign, "2025-10-17")  # no sweep from 10 to 16 Oct
    assert (caught_up["reminders"], caught_up["overdue_notices"], caught_up["escalations"]) == (
        0,
        1,
        1,
    )
    assert sweep(campaign, "2025-10-17")["notices_queued"] == 0
    for day in ("2025-10-18", "2025-10-20", "2025-10-22"):
        assert sweep(campaign, day)["clocks_due"] == 0
    assert sweep(campaign, "2025-10-23")["listed_for_supervision"] == 1
    assert steps_of(campaign, "referral", referral) == [
        ("2025-10-17", "overdue"),
        ("2025-10-17", "leader"),
        ("2025-10-23", "supervision"),
    ]
    with campaign.sessions() as session:
        clock = clock_of(session, subject_type="referral", subject_id=referral)
        assert clock is not None
        assert clock.escalated_at == local("2025-10-17") and clock.next_fire_at is None


def test_catching_up_before_the_deadline_sends_only_the_latest_reminder(campaign: App) -> None:
    # The October deliverable is due Thu 9 Oct; its reminder fell on Sun 28 Sep (make-up day).
    with transaction(campaign.sessions) as session:
        open_obligations(session=session, app=campaign, as_of=local("2025-09-01"))
    day = local("2025-09-01")
    while day <= local("2025-09-27"):
        sweep(campaign, day.isoformat())
        day += timedelta(days=1)
    resumed = sweep(campaign, "2025-10-09")  # the office's server was off over the holiday
    with campaign.sessions() as session:
        deliverable = obligation_id(session, "deliverable:typical-cases-oct", "samr")
        report = obligation_id(session, "monthly_report:2025-09", "samr")
    assert steps_of(campaign, "obligation", deliverable) == [("2025-10-09", "due_today")]
    # The September report (due 22 Sep) missed its leader step (Sun 28 Sep, a make-up day):
    # sent now, once; its supervision step comes on Sat 11 Oct.
    assert steps_of(campaign, "obligation", report) == [
        ("2025-09-17", "reminder"),
        ("2025-09-22", "due_today"),
        ("2025-09-23", "overdue"),
        ("2025-10-09", "leader"),
    ]
    assert resumed["by_kind"]["deliverable"] == {"due_today": 3}


def test_resolving_an_item_mid_ladder_stops_it_at_once(campaign: App) -> None:
    referral = referral_on(campaign, "2025-09-30 11:00")
    sweep(campaign, "2025-10-11")  # overdue, told to the contact with the office copied
    with transaction(campaign.sessions) as session:
        assert meet_clock(
            session, subject_type="referral", subject_id=referral, at=local("2025-10-11 10:00")
        )
    day = local("2025-10-12")
    while day <= local("2025-11-30"):
        assert sweep(campaign, day.isoformat())["clocks_due"] == 0
        day += timedelta(days=1)
    assert steps_of(campaign, "referral", referral) == [("2025-10-11", "overdue")]
    with campaign.sessions() as session:
        clock = clock_of(session, subject_type="referral", subject_id=referral)
        assert clock is not None and clock.status == "met" and clock.next_fire_at is None


def test_an_acknowledgement_mid_ladder_hands_over_to_the_outcome_ladder(campaign: App) -> None:
    # Outcome due 15 working days after 30 Sep: 9, 10, 11 (Sat, make-up), 13 … 28 Oct.
    referral = referral_on(campaign, "2025-09-30 11:00")
    sweep(campaign, "2025-10-16")  # catches up: overdue and leader for the acknowledgement
    with transaction(campaign.sessions) as session:
        row = session.get(Referral, referral)
        assert row is not None
        acknowledge(session, campaign, row, local("2025-10-16 11:00"))
        clock = clock_of(session, subject_type="referral", subject_id=referral)
        assert clock is not None
        assert (clock.kind, clock.version, clock.escalated_at) == ("referral_outcome", 2, None)
    for day in ("2025-10-17", "2025-10-22", "2025-10-23", "2025-10-28", "2025-10-29"):
        sweep(campaign, day)
    assert steps_of(campaign, "referral", referral) == [
        ("2025-10-16", "overdue"),
        ("2025-10-16", "leader"),
        ("2025-10-23", "reminder"),
        ("2025-10-28", "due_today"),
        ("2025-10-29", "overdue"),
    ]
    with campaign.sessions() as session:
        keys = [n.key for n in notices_of(session, subject_type="referral", subject_id=referral)]
    # The acknowledgement's overdue notice and the outcome's are different notices (versions).
    assert sorted(k.split("|", 3)[3] for k in keys if k.startswith("overdue|")) == [
        "overdue|v1",
        "overdue|v2",
    ]


def test_leader_steps_reach_a_platform_compliance_lead_and_fall_back_to_the_contact(
    campaign: App,
) -> None:
    # An assistance request to a platform runs on hours: reminder 12 h before, overdue at the
    # due instant, the platform's compliance lead 24 h after. A regulator in another region has
    # no leader on file: its leader step goes to its contact, still with the office copied.
    due_at = local("2025-11-03 14:00")
    regulator = next(r for r in campaign.config.regions.regulators)
    with transaction(campaign.sessions) as session:
        open_clock(
            session,
            campaign,
            subject_type="assist",
            subject_id=7,
            kind="assist_response",
            party="taobao",
            ladder="assist_request",
            due=_due(due_at, due_at),
        )
        open_clock(
            session,
            campaign,
            subject_type="referral",
            subject_id=99,
            kind="referral_ack",
            party=regulator.code,
            ladder="referral_ack",
            due=_due(local("2025-11-03 00:00"), end_of_day(due_at.date(), campaign.tz)),
        )
    assert sweep(campaign, "2025-11-03")["reminders"] == 2  # 02:00 reminder; due today
    assert sweep(campaign, "2025-11-04")["overdue_notices"] == 2
    assert sweep(campaign, "2025-11-05")["escalations"] == 1  # the platform, 14:00 on the 4th
    assert sweep(campaign, "2025-11-10")["escalations"] == 1  # the regulator, 5 wd after
    with campaign.sessions() as session:
        platform = {n.step: n for n in notices_of(session, subject_type="assist", subject_id=7)}
        regional = {n.step: n for n in notices_of(session, subject_type="referral", subject_id=99)}
    assert platform["leader"].recipient == "compliance@taobao-platform.example.org"
    assert platform["leader"].cc == [
        campaign.config.campaign.office.email,
        "assist@taobao-platform.example.org",
    ]
    assert platform["overdue"].context["clock"] == "assist_response"
    assert regional["leader"].recipient == regulator.email
    assert regional["leader"].cc == [campaign.config.campaign.office.email]


def _due(start: datetime, due_at: datetime) -> DueDate:
    return DueDate(
        due_on=due_at.date(),
        due_at=due_at,
        start=start,
        unit="hours",  # type: ignore[arg-type]
        count=0,
        rule="test",
    )


def test_the_sweep_reads_and_writes_in_a_fixed_number_of_statements(campaign: App) -> None:
    """Set-based: ten or five hundred due clocks, among thousands open, cost the same queries."""
    import pandas as pd

    def open_many(first_id: int, count: int, due_on: str) -> None:
        day = datetime.fromisoformat(due_on).date()
        frame = pd.DataFrame(
            {
                "subject_type": "referral",
                "subject_id": range(first_id, first_id + count),
                "kind": "referral_ack",
                "party": "customs",
                "due_on": [day] * count,
                "due_at": [end_of_day(day, campaign.tz)] * count,
                "provisional": False,
            }
        )
        with transaction(campaign.sessions) as session:
            open_clocks_bulk(session, campaign, frame, ladder="referral_ack")

    open_many(1, 3000, "2025-12-15")  # open, not due for weeks
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(campaign.engine, "before_cursor_execute", count)
    try:
        open_many(10_000, 10, "2025-11-03")
        statements.clear()
        small = sweep(campaign, "2025-11-04")
        few = list(statements)
        open_many(20_000, 500, "2025-11-05")
        statements.clear()
        large = sweep(campaign, "2025-11-06")
        many = list(statements)
    finally:
        event.remove(campaign.engine, "before_cursor_execute", count)
    assert small["clocks_due"] == 10 and large["clocks_due"] == 500
    assert small["overdue_notices"] == 10 and large["overdue_notices"] == 500
    assert [s for s in few if s != "BEGIN"] == [s for s in many if s != "BEGIN"]
    assert len([s for s in many if s not in ("BEGIN", "COMMIT")]) <= 5
    with campaign.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 510


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_sweeps_on_postgresql_take_turns(campaign: App) -> None:
    """A sweep waits while another holds the turn, then finds the clocks moved on: two sweeps
    at once (the scheduled one and the campaign's, on two workers) send each step once."""
    import threading

    from wangjian.ledger.db import serialise

    referral = referral_on(campaign, "2025-09-30 11:00")
    second: dict[str, Any] = {}
    with transaction(campaign.sessions) as first:
        serialise(first, "deadline-sweep")  # a sweep in progress holds the turn
        waiting = threading.Thread(target=lambda: second.update(sweep(campaign, "2025-10-10")))
        waiting.start()
        waiting.join(timeout=1.5)
        assert waiting.is_alive(), "the second sweep did not wait for its turn"
        done = sweep_deadlines(session=first, app=campaign, as_of=local("2025-10-10")).as_json()
    waiting.join(timeout=30)
    assert done["reminders"] == 1
    assert second["clocks_due"] == second["notices_queued"] == 0
    assert steps_of(campaign, "referral", referral) == [("2025-10-10", "due_today")]
