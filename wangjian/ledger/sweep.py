"""The daily deadline sweep: every clock whose next ladder step has come, handled as one set.

It is Netflix/dispatch's `get_overdue_tasks` (open, past due, not yet told at this step) made
set-based: one indexed query reads the clocks whose `next_fire_at` has passed, joined to their
party's addresses; the ladder rules pick the steps to send for all of them at once (numpy); the
notices go to the outbox in bulk under unique keys (recipient, item, step, clock version), and
the clocks move on in one batched update. Work grows with what is due, not with what is open.

Two sweeps on the same day: the second finds nothing due (the clocks moved on) and any notice it
might rebuild is already keyed in the outbox. A sweep after a week's gap sends each step now
due once and skips reminders that time has made pointless (see `wangjian.domain.ladder`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.campaign.models import Audience, LadderStep
from wangjian.domain.ladder import PRE_DEADLINE, bulk_step_times, bulk_steps_to_send
from wangjian.ledger.events import record_events
from wangjian.ledger.models import Deadline, Party
from wangjian.ledger.outbox import notice_key, queue_notices

DEADLINES: Table = Deadline.__table__  # type: ignore[assignment]
PARTIES: Table = Party.__table__  # type: ignore[assignment]

# Steps after the deadline change the item's standing; each leaves an event as well as notices.
STEP_EVENTS = {
    "overdue": "deadline.overdue",
    "leader": "deadline.escalated",
    "supervision": "deadline.listed",
}

_COLUMNS = [
    "id",
    "subject_type",
    "subject_id",
    "kind",
    "party",
    "ladder",
    "due_on",
    "due_at",
    "next_step",
    "last_step",
    "version",
    "provisional",
    "overdue_since",
    "escalated_at",
    "listed_at",
]


@dataclass
class SweepResult:
    """What one sweep did: steps sent per kind, notices queued, clocks moved on."""

    as_of: datetime
    clocks_due: int = 0
    reminders: int = 0
    overdue_notices: int = 0
    escalations: int = 0
    listed_for_supervision: int = 0
    notices_queued: int = 0
    clocks_updated: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "clocks_due": self.clocks_due,
            "reminders": self.reminders,
            "overdue_notices": self.overdue_notices,
            "escalations": self.escalations,
            "listed_for_supervision": self.listed_for_supervision,
            "notices_queued": self.notices_queued,
            "clocks_updated": self.clocks_updated,
            "by_kind": self.by_kind,
        }


def sweep_group_key(app: App, as_of: datetime) -> str:
    """The outbox group of a sweep's notices: one digest per recipient per sweep day."""
    return f"sweep:{as_of.astimezone(app.tz).date().isoformat()}"


def select_due_clocks(session: Session, *, as_of: datetime) -> pd.DataFrame:
    """Open clocks whose next step has come (`status, next_fire_at` index), with addresses."""
    deadlines, parties = DEADLINES, PARTIES
    statement = (
        select(
            *(deadlines.c[name] for name in _COLUMNS),
            parties.c.contact_email,
            parties.c.leader_email,
        )
        .select_from(deadlines.outerjoin(parties, parties.c.code == deadlines.c.party))
        .where(deadlines.c.status == "open", deadlines.c.next_fire_at <= as_of)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows met by the portal while we work wait for us, rather than being told afterwards.
        statement = statement.with_for_update(of=deadlines)
    rows = session.execute(statement).all()
    return pd.DataFrame(rows, columns=[*_COLUMNS, "contact_email", "leader_email"])


def sweep_deadlines(*, session: Session, app: App, as_of: datetime) -> SweepResult:
    """Send every ladder step that has come by `as_of`, once; move the clocks on."""
    result = SweepResult(as_of=as_of)
    due = select_due_clocks(session, as_of=as_of)
    result.clocks_due = len(due)
    if due.empty:
        return result
    moves, sent = _plan_steps(due, app, as_of)
    notices = _notice_rows(sent, app, as_of)
    result.notices_queued = queue_notices(session, notices)
    result.clocks_updated = _move_clocks(session, due, moves, sent, app, as_of)
    record_events(session, _event_rows(sent, as_of))
    steps = sent["step"].tolist()
    result.reminders = sum(1 for s in steps if s in PRE_DEADLINE)
    result.overdue_notices = steps.count("overdue")
    result.escalations = steps.count("leader")
    result.listed_for_supervision = steps.count("supervision")
    by_kind: dict[str, Counter[str]] = {}
    for kind, step in zip(sent["kind"].tolist(), steps, strict=True):
        by_kind.setdefault(kind, Counter())[step] += 1
    result.by_kind = {k: dict(v) for k, v in sorted(by_kind.items())}
    return result


def _utc64(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns")


def _plan_steps(due: pd.DataFrame, app: App, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per clock: its next step and fire time; and one row per (clock, step to send)."""
    ladders = app.config.sla.ladders
    as_of64 = _utc64(as_of)
    due_at64 = pd.to_datetime(due["due_at"], utc=True).dt.tz_localize(None).to_numpy("<M8[ns]")
    next_step = due["next_step"].to_numpy(dtype=np.int64)
    new_next = next_step.copy()
    new_fire = np.full(len(due), np.datetime64("NaT"), dtype="<M8[ns]")
    known = np.zeros(len(due), dtype=bool)
    sent_rows: list[np.ndarray] = []
    sent_steps: list[np.ndarray] = []
    sent_index: list[np.ndarray] = []
    for name, positions in due.groupby("ladder", sort=True).indices.items():
        index = np.asarray(positions, dtype=np.int64)
        steps: list[LadderStep] | None = ladders.get(str(name))
        if steps is None:
            continue  # a ladder gone from the configuration: leave its clocks for the office
        known[index] = True
        fire = bulk_step_times(
            steps, due["due_on"].iloc[index], due["due_at"].iloc[index], app.calendar, app.tz
        )
        send, nxt = bulk_steps_to_send(steps, fire, next_step[index], as_of64, due_at64[index])
        new_next[index] = nxt
        more = np.flatnonzero(nxt < len(steps))
        new_fire[index[more]] = fire[more, nxt[more]]
        rows, columns = np.nonzero(send)
        names = np.array([s.step for s in steps], dtype=object)
        sent_rows.append(index[rows])
        sent_index.append(columns)
        sent_steps.append(names[columns])
    moves = pd.DataFrame(
        {"known": known, "new_next": new_next, "new_fire": new_fire}, index=due.index
    )
    if sent_rows:
        rows = np.concatenate(sent_rows)
        sent = due.iloc[rows].reset_index(drop=True)
        sent["row"] = rows
        sent["step_index"] = np.concatenate(sent_index)
        sent["step"] = np.concatenate(sent_steps)
    else:
        sent = due.iloc[[]].assign(row=[], step_index=[], step=[])
    return moves, sent


def _addresses(sent: pd.DataFrame, app: App) -> dict[str, list[str]]:
    """Each audience's address for every row of `sent` (leader falls back to the contact)."""
    campaign = app.config.campaign
    contact = sent["contact_email"].fillna(campaign.office.email).tolist()
    leader = [lead or c for lead, c in zip(sent["leader_email"].tolist(), contact, strict=True)]
    count = len(sent)
    return {
        Audience.CONTACT.value: contact,
        Audience.LEADER.value: leader,
        Audience.OFFICE.value: [campaign.office.email] * count,
        Audience.LEADING_GROUP.value: [campaign.leading_group.email] * count,
    }


def _notice_rows(sent: pd.DataFrame, app: App, as_of: datetime) -> list[dict[str, Any]]:
    """One outbox notice per recipient per step sent, cc'd as the ladder says."""
    if sent.empty:
        return []
    ladders = app.config.sla.ladders
    group = sweep_group_key(app, as_of)
    local_day = as_of.astimezone(app.tz).date()
    late = app.calendar.working_days_between_bulk(
        np.fromiter((d.toordinal() for d in sent["due_on"]), dtype=np.int64, count=len(sent)),
        np.full(len(sent), local_day.toordinal(), dtype=np.int64),
    )
    sent = sent.assign(late=np.maximum(late, 0))
    out: list[dict[str, Any]] = []
    for (ladder, position), part in sent.groupby(["ladder", "step_index"], sort=True):
        step = ladders[str(ladder)][int(position)]  # type: ignore[call-overload]
        addresses = _addresses(part, app)
        columns = {
            name: part[name].tolist()
            for name in (
                "id",
                "subject_type",
                "subject_id",
                "kind",
                "party",
                "version",
                "due_on",
                "provisional",
                "late",
            )
        }
        cc_lists = list(zip(*(addresses[a.value] for a in step.cc), strict=True)) or [()] * len(
            part
        )
        for audience in step.to:
            recipients = addresses[audience.value]
            for i, recipient in enumerate(recipients):
                cc = [a for a in dict.fromkeys(cc_lists[i]) if a != recipient]
                subject_type, subject_id = columns["subject_type"][i], columns["subject_id"][i]
                out.append(
                    {
                        "key": notice_key(
                            recipient=recipient,
                            subject_type=subject_type,
                            subject_id=subject_id,
                            kind=step.step,
                            step=step.step,
                            version=columns["version"][i],
                        ),
                        "kind": step.step,
                        "party": columns["party"][i],
                        "audience": audience.value,
                        "recipient": recipient,
                        "cc": cc,
                        "subject_type": subject_type,
                        "subject_id": subject_id,
                        "deadline_id": columns["id"][i],
                        "step": step.step,
                        "group_key": group,
                        "status": "queued",
                        "context": {
                            "clock": columns["kind"][i],
                            "due_on": columns["due_on"][i].isoformat(),
                            "version": columns["version"][i],
                            "late_working_days": columns["late"][i],
                            "provisional": bool(columns["provisional"][i]),
                            "as_of": local_day.isoformat(),
                        },
                    }
                )
    return out


def _move_clocks(
    session: Session,
    due: pd.DataFrame,
    moves: pd.DataFrame,
    sent: pd.DataFrame,
    app: App,
    as_of: datetime,
) -> int:
    """Advance every due clock in one batched update, guarded by its version and status."""
    latest = dict(sent.sort_values("step_index").groupby("row")["step"].last().items())
    escalated_now = set(sent.loc[sent["step"] == "leader", "row"].tolist())
    listed_now = set(sent.loc[sent["step"] == "supervision", "row"].tolist())
    overdue = (pd.to_datetime(due["due_at"], utc=True) < pd.Timestamp(as_of)).tolist()
    ids, versions = due["id"].tolist(), due["version"].tolist()
    next_steps = moves["new_next"].tolist()
    fires = _datetimes(pd.to_datetime(moves["new_fire"]).dt.tz_localize("UTC"))
    last_steps = due["last_step"].tolist()
    overdue_since: list[date | None] = due["overdue_since"].tolist()
    escalated, listed = _datetimes(due["escalated_at"]), _datetimes(due["listed_at"])
    due_at = _datetimes(due["due_at"])
    rows: list[dict[str, Any]] = []
    for i in np.flatnonzero(moves["known"].to_numpy()).tolist():
        since = overdue_since[i]
        if since is None and overdue[i]:
            # Overdue from the first local day after the due instant (same day for hour limits).
            moment = due_at[i]
            since = (
                None
                if moment is None
                else (moment + timedelta(seconds=1)).astimezone(app.tz).date()
            )
        rows.append(
            {
                "b_id": ids[i],
                "b_version": versions[i],
                "b_next_step": next_steps[i],
                "b_next_fire_at": fires[i],
                "b_last_step": latest.get(i, last_steps[i]),
                "b_overdue_since": since,
                "b_escalated_at": escalated[i] or (as_of if i in escalated_now else None),
                "b_listed_at": listed[i] or (as_of if i in listed_now else None),
            }
        )
    if not rows:
        return 0
    c = DEADLINES.c
    statement = (
        update(DEADLINES)
        .where(
            c.id == bindparam("b_id"),
            c.version == bindparam("b_version"),
            c.status == "open",
        )
        .values(
            next_step=bindparam("b_next_step"),
            next_fire_at=bindparam("b_next_fire_at", type_=c.next_fire_at.type),
            last_step=bindparam("b_last_step"),
            overdue_since=bindparam("b_overdue_since", type_=c.overdue_since.type),
            escalated_at=bindparam("b_escalated_at", type_=c.escalated_at.type),
            listed_at=bindparam("b_listed_at", type_=c.listed_at.type),
        )
    )
    session.execute(statement, rows)
    return len(rows)


def _datetimes(values: pd.Series) -> list[datetime | None]:
    """A datetime column as aware Python datetimes, missing values as None."""
    return [None if pd.isna(v) else pd.Timestamp(v).to_pydatetime() for v in values.tolist()]


def _event_rows(sent: pd.DataFrame, as_of: datetime) -> list[dict[str, Any]]:
    """An event per step that changes an item's standing (overdue, escalated, listed)."""
    changes = sent[sent["step"].isin(list(STEP_EVENTS))]
    return [
        {
            "at": as_of,
            "actor": "sweep",
            "action": STEP_EVENTS[step],
            "subject_type": subject_type,
            "subject_id": subject_id,
            "origin": "deadline_sweep",
            "data": {"deadline_id": clock_id, "clock": kind, "version": version, "step": step},
        }
        for clock_id, subject_type, subject_id, kind, version, step in zip(
            changes["id"].tolist(),
            changes["subject_type"].tolist(),
            changes["subject_id"].tolist(),
            changes["kind"].tolist(),
            changes["version"].tolist(),
            changes["step"].tolist(),
            strict=True,
        )
    ]
