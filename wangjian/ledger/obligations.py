"""Members' obligations to the office — plans, monthly reports, deliverables, the summary package.

`open_obligations` reconciles the ledger with the campaign configuration: it creates what is
missing (each with its clock), moves due dates the configuration or the calendar changed, and
withdraws what no longer applies. Running it again changes nothing. A member's complete
submission closes its obligation and stops the clock at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.campaign.models import Unit
from wangjian.domain.deadlines import DueDate, end_of_day
from wangjian.domain.obligations import PlannedObligation, plan_obligations
from wangjian.ledger.clocks import cancel_clock, meet_clock, open_clock, open_clocks_bulk
from wangjian.ledger.events import record_event, record_events
from wangjian.ledger.models import Deadline, Obligation, Party, Submission

OPEN_STATUSES = ("open", "incomplete")


class ObligationError(Exception):
    """A submission that cannot be recorded (unknown obligation, wrong member, withdrawn)."""


def planned_due(app: App, planned: PlannedObligation) -> DueDate:
    """The due date of a planned obligation as a `DueDate` (a date fixed by the plan)."""
    tz = app.tz
    return DueDate(
        due_on=planned.due_on,
        due_at=end_of_day(planned.due_on, tz),
        start=datetime.combine(planned.due_on, datetime.min.time(), tzinfo=tz),
        unit=Unit.CALENDAR_DAYS,
        count=0,
        rule="按行动方案规定的报送日期",
        rolled_from=planned.rolled_from,
        provisional=planned.provisional,
        unknown_years=(planned.due_on.year,) if planned.provisional else (),
    )


def open_obligations(*, session: Session, app: App, as_of: datetime) -> dict[str, int]:
    """Bring members' obligations and their clocks in line with the configuration; idempotent."""
    planned = {
        (p.kind, p.code): p for p in plan_obligations(app.config.campaign_file, app.calendar)
    }
    members = list(
        session.scalars(
            select(Party.code).where(Party.kind == "member", Party.active.is_(True))
        ).all()
    )
    existing = {(o.kind, o.code, o.agency_code): o for o in session.scalars(select(Obligation))}
    events: list[dict[str, Any]] = []
    created: list[Obligation] = []
    moved = withdrawn = 0
    for (kind, code), plan in planned.items():
        for member in members:
            current = existing.get((kind, code, member))
            if current is None:
                obligation = Obligation(
                    kind=kind,
                    code=code,
                    agency_code=member,
                    title=plan.title,
                    due_on=plan.due_on,
                    requirements=plan.requirements,
                    status="open",
                    created_at=as_of,
                )
                session.add(obligation)
                created.append(obligation)
            elif current.status in OPEN_STATUSES and current.due_on != plan.due_on:
                events.append(
                    move_obligation(
                        session=session, app=app, obligation=current, plan=plan, at=as_of
                    )
                )
                moved += 1
    wanted = {(k, c, m) for (k, c) in planned for m in members}
    for key, obligation in existing.items():
        if key not in wanted and obligation.status in OPEN_STATUSES:
            obligation.status = "withdrawn"
            cancel_clock(session, subject_type="obligation", subject_id=obligation.id, at=as_of)
            events.append(_event(obligation, "obligation.withdrawn", as_of, {}))
            withdrawn += 1
    session.flush()
    events += [_event(o, "obligation.created", as_of, {"due_on": str(o.due_on)}) for o in created]
    record_events(session, events)
    clocks = _open_missing_clocks(session, app, planned)
    return {"created": len(created), "moved": moved, "withdrawn": withdrawn, "clocks": clocks}


def move_obligation(
    *, session: Session, app: App, obligation: Obligation, plan: PlannedObligation, at: datetime
) -> dict[str, Any]:
    """Give an open obligation its planned due date and restart its clock; returns the event."""
    event = _event(
        obligation,
        "obligation.moved",
        at,
        {"from": obligation.due_on.isoformat(), "to": plan.due_on.isoformat()},
    )
    obligation.due_on, obligation.requirements = plan.due_on, plan.requirements
    open_clock(
        session,
        app,
        subject_type="obligation",
        subject_id=obligation.id,
        kind=obligation.kind,
        party=obligation.agency_code,
        ladder=plan.ladder,
        due=planned_due(app, plan),
    )
    return event


def _open_missing_clocks(
    session: Session, app: App, planned: dict[tuple[str, str], PlannedObligation]
) -> int:
    """Open a clock for every open obligation that has none (new ones, or after a crash)."""
    timed = select(Deadline.subject_id).where(Deadline.subject_type == "obligation")
    rows = session.execute(
        select(Obligation.id, Obligation.kind, Obligation.code, Obligation.agency_code).where(
            Obligation.status.in_(OPEN_STATUSES), Obligation.id.not_in(timed)
        )
    ).all()
    opened = 0
    frame = pd.DataFrame(rows, columns=["subject_id", "kind", "code", "party"])
    if frame.empty:
        return 0
    frame = frame[[(k, c) in planned for k, c in zip(frame["kind"], frame["code"], strict=True)]]
    for (kind, code), group in frame.groupby(["kind", "code"]):
        plan = planned[(str(kind), str(code))]
        due = planned_due(app, plan)
        clocks = group.assign(
            subject_type="obligation",
            due_on=due.due_on,
            due_at=due.due_at,
            provisional=due.provisional,
        )
        opened += open_clocks_bulk(session, app, clocks, ladder=plan.ladder)
    return opened


def _event(
    obligation: Obligation, action: str, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "actor": "system",
        "action": action,
        "subject_type": "obligation",
        "subject_id": obligation.id,
        "at": at,
        "data": {"kind": obligation.kind, "code": obligation.code, **data},
        "origin": "config",
    }


def close_obligation(*, session: Session, obligation: Obligation, at: datetime) -> bool:
    """Mark an obligation submitted and stop its clock; False if it was submitted already."""
    if obligation.status == "submitted":
        return False  # the first complete submission is the one that counts for being on time
    obligation.status, obligation.submitted_at = "submitted", at
    meet_clock(session, subject_type="obligation", subject_id=obligation.id, at=at)
    return True


def record_submission(
    *,
    session: Session,
    obligation_id: int,
    actor: str,
    at: datetime,
    agency_code: str | None = None,
    text: str | None = None,
    files: list[dict[str, Any]] | None = None,
    complete: bool = True,
    problems: list[str] | None = None,
) -> Submission:
    """Record a member's submission; a complete one closes the obligation and stops its clock."""
    obligation = session.get(Obligation, obligation_id, with_for_update=True)
    if obligation is None:
        raise ObligationError(f"no obligation {obligation_id}")
    if agency_code is not None and agency_code != obligation.agency_code:
        raise ObligationError(f"obligation {obligation_id} belongs to {obligation.agency_code}")
    if obligation.status == "withdrawn":
        raise ObligationError(f"obligation {obligation_id} was withdrawn")
    submission = Submission(
        obligation_id=obligation.id,
        agency_code=obligation.agency_code,
        submitted_at=at,
        actor=actor,
        text=text,
        files=files or [],
        complete=complete,
        problems=problems or [],
    )
    session.add(submission)
    if complete:
        close_obligation(session=session, obligation=obligation, at=at)
    elif not complete and obligation.status == "open":
        obligation.status = "incomplete"  # the clock keeps running until it is complete
    session.flush()
    record_event(
        session,
        actor=actor,
        action="obligation.submitted" if complete else "obligation.incomplete",
        subject_type="obligation",
        subject_id=obligation.id,
        at=at,
        data={"submission_id": submission.id, "problems": problems or []},
    )
    return submission
