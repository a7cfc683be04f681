"""Live clocks (`deadlines` rows): opened with a due date, stopped when met, moved on extension.

Each subject (a referral, an obligation, an assistance request) has at most one live clock. A
referral's clock first chases the acknowledgement and, once acknowledged, the outcome. The clock
keeps the index of the next ladder step and when it fires, so the daily sweep reads only the rows
that are due (`status = 'open' AND next_fire_at <= as_of`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.domain.deadlines import DueDate
from wangjian.domain.ladder import bulk_step_times, step_times
from wangjian.ledger.bulk import insert_ignore
from wangjian.ledger.models import Deadline

DEADLINES: Table = Deadline.__table__  # type: ignore[assignment]


def first_fire(app: App, ladder: str, due_on: date, due_at: datetime) -> datetime | None:
    times = step_times(app.config.ladder(ladder), due_on, due_at, app.calendar, app.tz)
    return times[0] if times else None


def open_clock(
    session: Session,
    app: App,
    *,
    subject_type: str,
    subject_id: int,
    kind: str,
    party: str,
    ladder: str,
    due: DueDate,
) -> Deadline:
    """Start (or restart, if one exists) the clock of a subject."""
    clock = session.scalar(
        select(Deadline).where(
            Deadline.subject_type == subject_type, Deadline.subject_id == subject_id
        )
    )
    if clock is None:
        clock = Deadline(subject_type=subject_type, subject_id=subject_id, version=1)
        session.add(clock)
    else:
        clock.version = (clock.version or 1) + 1
    clock.kind, clock.party, clock.ladder = kind, party, ladder
    clock.due_on, clock.due_at, clock.provisional = due.due_on, due.due_at, due.provisional
    clock.status, clock.met_at = "open", None
    clock.next_step, clock.last_step = 0, None
    clock.next_fire_at = first_fire(app, ladder, due.due_on, due.due_at)
    # A restarted ladder starts clean: escalation and listing belong to the ladder that made them
    # (the event trail keeps them).
    clock.overdue_since, clock.escalated_at, clock.listed_at = None, None, None
    return clock


def open_clocks_bulk(session: Session, app: App, frame: pd.DataFrame, *, ladder: str) -> int:
    """Open many clocks at once (dispatch): columns subject_type, subject_id, kind, party,
    due_on (date), due_at (aware datetime), provisional. Existing clocks are left alone."""
    if frame.empty:
        return 0
    steps = app.config.ladder(ladder)
    fire = bulk_step_times(steps, frame["due_on"], frame["due_at"], app.calendar, app.tz)
    first = pd.to_datetime(fire[:, 0]).tz_localize("UTC") if steps else None
    rows: list[dict[str, Any]] = [
        {
            "subject_type": r.subject_type,
            "subject_id": int(r.subject_id),  # type: ignore[arg-type]
            "kind": r.kind,
            "party": r.party,
            "ladder": ladder,
            "due_on": r.due_on,
            "due_at": r.due_at,
            "provisional": bool(r.provisional),
            "status": "open",
            "next_step": 0,
            "next_fire_at": first[i].to_pydatetime() if first is not None else None,
            "version": 1,
        }
        for i, r in enumerate(frame.itertuples(index=False))
    ]
    insert_ignore(session, DEADLINES, rows, ["subject_type", "subject_id"])
    return len(rows)


def meet_clock(session: Session, *, subject_type: str, subject_id: int, at: datetime) -> bool:
    """Stop a subject's clock: its ladder stops at once. True if a live clock was stopped."""
    result = session.execute(
        update(Deadline)
        .where(
            Deadline.subject_type == subject_type,
            Deadline.subject_id == subject_id,
            Deadline.status == "open",
        )
        .values(status="met", met_at=at, next_fire_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def cancel_clock(session: Session, *, subject_type: str, subject_id: int, at: datetime) -> bool:
    """Stop a clock because its subject no longer applies (reassigned, withdrawn)."""
    result = session.execute(
        update(Deadline)
        .where(
            Deadline.subject_type == subject_type,
            Deadline.subject_id == subject_id,
            Deadline.status == "open",
        )
        .values(status="cancelled", met_at=at, next_fire_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def clock_of(session: Session, *, subject_type: str, subject_id: int) -> Deadline | None:
    return session.scalar(
        select(Deadline).where(
            Deadline.subject_type == subject_type, Deadline.subject_id == subject_id
        )
    )
