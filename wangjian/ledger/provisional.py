"""Provisional due dates, made definite once the office adds the missing calendar year.

A deadline in a year the calendar does not know is computed on weekends alone and flagged
provisional. When `config/calendar.yaml` gains that year, `wangjian init` runs this pass: every
open provisional referral, obligation and clock is computed again; a due date that moved
restarts its ladder (a new clock version), one that stayed only loses the flag, and every open
clock whose next step falls in an added year has its fire time recomputed.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.domain.calendar import ProvisionalDateWarning
from wangjian.domain.clock import local_midnight
from wangjian.domain.deadlines import DueDate, compute_due
from wangjian.domain.ladder import step_times
from wangjian.domain.obligations import plan_obligations
from wangjian.ledger.clocks import open_clock
from wangjian.ledger.db import transaction
from wangjian.ledger.events import record_event, record_events
from wangjian.ledger.extensions import FINISHED, frozen_policy, is_listed_operator, outcome_due
from wangjian.ledger.models import Deadline, Obligation, Referral
from wangjian.ledger.obligations import OPEN_STATUSES, move_obligation


def refresh_fire_time(app: App, clock: Deadline) -> None:
    """Recompute when a clock's next step fires (the calendar under it may have changed)."""
    ladder = app.config.sla.ladders.get(clock.ladder)
    if ladder is None or clock.next_step >= len(ladder):
        return
    times = step_times(ladder, clock.due_on, clock.due_at, app.calendar, app.tz)
    clock.next_fire_at = times[clock.next_step]


def _settle(session: Session, app: App, clock: Deadline, due: DueDate) -> str:
    """Restart a clock whose due date moved; otherwise update its flag and fire time."""
    if clock.due_on != due.due_on or clock.due_at != due.due_at:
        open_clock(
            session,
            app,
            subject_type=clock.subject_type,
            subject_id=clock.subject_id,
            kind=clock.kind,
            party=clock.party,
            ladder=clock.ladder,
            due=due,
        )
        return "restarted"
    clock.provisional = due.provisional
    refresh_fire_time(app, clock)
    return "refreshed"


def recompute_provisional_dates(*, session: Session, app: App, at: datetime) -> dict[str, int]:
    """Compute every open provisional date again on today's calendar; idempotent."""
    counts = {"referrals": 0, "obligations": 0, "restarted": 0, "refreshed": 0, "provisional": 0}
    events: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        # Dates still provisional after this pass are reported in the counts, not once each.
        warnings.simplefilter("ignore", ProvisionalDateWarning)
        for referral in session.scalars(
            select(Referral).where(Referral.provisional.is_(True), Referral.status.not_in(FINISHED))
        ):
            events += _recompute_referral(session, app, referral, at, counts)
        events += _recompute_obligations(session, app, at, counts)
        _refresh_clocks_in_added_years(session, app, counts)
    record_events(session, events)
    return counts


def _recompute_referral(
    session: Session, app: App, referral: Referral, at: datetime, counts: dict[str, int]
) -> list[dict[str, Any]]:
    policy = frozen_policy(app, referral)
    ack = compute_due(app.calendar, referral.received_at, policy.acknowledge, tz=app.tz)
    listed = is_listed_operator(session, referral)
    outcome = outcome_due(app, referral, listed_operator=listed)
    original = outcome_due(app, referral, listed_operator=listed, extra=0)
    before = (referral.ack_due_on, referral.due_on)
    referral.ack_due_on, referral.due_on = ack.due_on, outcome.due_on
    referral.original_due_on = original.due_on
    referral.provisional = ack.provisional or outcome.provisional
    counts["referrals"] += 1
    counts["provisional"] += referral.provisional
    clock = session.scalar(
        select(Deadline).where(
            Deadline.subject_type == "referral",
            Deadline.subject_id == referral.id,
            Deadline.status == "open",
        )
    )
    if clock is not None and clock.kind in ("referral_ack", "referral_outcome"):
        counts[_settle(session, app, clock, ack if clock.kind == "referral_ack" else outcome)] += 1
    if before == (referral.ack_due_on, referral.due_on):
        return []
    return [
        _event(
            "referral",
            referral.id,
            at,
            {
                "ack_due_on": [before[0].isoformat(), ack.due_on.isoformat()],
                "due_on": [before[1].isoformat(), outcome.due_on.isoformat()],
                "explanation": outcome.explain(),
            },
        )
    ]


def _recompute_obligations(
    session: Session, app: App, at: datetime, counts: dict[str, int]
) -> list[dict[str, Any]]:
    plans = {(p.kind, p.code): p for p in plan_obligations(app.config.campaign_file, app.calendar)}
    rows = session.execute(
        select(Obligation, Deadline)
        .join(
            Deadline,
            (Deadline.subject_type == "obligation") & (Deadline.subject_id == Obligation.id),
        )
        .where(
            Deadline.status == "open",
            Deadline.provisional.is_(True),
            Obligation.status.in_(OPEN_STATUSES),
        )
    ).all()
    events = []
    for obligation, clock in rows:
        plan = plans.get((obligation.kind, obligation.code))
        if plan is None:
            continue
        counts["obligations"] += 1
        counts["provisional"] += plan.provisional
        if plan.due_on != obligation.due_on:
            events.append(
                move_obligation(session=session, app=app, obligation=obligation, plan=plan, at=at)
            )
            counts["restarted"] += 1
        else:
            clock.provisional = plan.provisional
            refresh_fire_time(app, clock)
            counts["refreshed"] += 1
    return events


def _refresh_clocks_in_added_years(session: Session, app: App, counts: dict[str, int]) -> None:
    """Open clocks whose next step lies in a year the office added: fire times may have moved."""
    years = sorted(app.config.calendar.years)
    if not years:
        return
    since = local_midnight(date(years[0], 1, 1), app.tz)
    session.flush()
    for clock in session.scalars(
        select(Deadline).where(
            Deadline.status == "open",
            or_(Deadline.next_fire_at >= since, Deadline.due_at >= since),
        )
    ):
        before = clock.next_fire_at
        refresh_fire_time(app, clock)
        counts["refreshed"] += clock.next_fire_at != before


def _event(
    subject_type: str, subject_id: int, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "actor": "system",
        "action": "deadline.recomputed",
        "subject_type": subject_type,
        "subject_id": subject_id,
        "at": at,
        "data": data,
        "origin": "calendar",
    }


def recompute_on_init(app: App) -> dict[str, Any]:
    """`wangjian init` hook: make provisional dates definite where the calendar now allows."""
    with transaction(app.sessions) as session:
        now = datetime.now(UTC)
        counts = recompute_provisional_dates(session=session, app=app, at=now)
        if any(counts.values()):
            record_event(
                session,
                actor="system",
                action="calendar.recomputed",
                subject_type="campaign",
                subject_id=None,
                at=now,
                data=counts,
            )
    return {"provisional_dates": counts}
