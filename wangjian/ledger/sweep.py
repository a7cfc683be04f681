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

import functools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import String, Table, select, type_coerce
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.campaign.models import Audience, LadderStep
from wangjian.domain.ladder import PRE_DEADLINE, bulk_step_times, bulk_steps_to_send, day_ordinals
from wangjian.ledger.bulk import fast_insert, fast_update
from wangjian.ledger.db import serialise
from wangjian.ledger.models import Deadline, Event, Notice, Party
from wangjian.ledger.outbox import notice_key

DEADLINES: Table = Deadline.__table__  # type: ignore[assignment]
PARTIES: Table = Party.__table__  # type: ignore[assignment]
NOTICES: Table = Notice.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]

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
_TIMES = frozenset({"due_on", "due_at", "overdue_since", "escalated_at", "listed_at"})


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


def select_due_clocks(
    session: Session, *, as_of: datetime, subject_types: Sequence[str] | None = None
) -> pd.DataFrame:
    """Open clocks whose next step has come (`status, next_fire_at` index), with addresses;
    only those of `subject_types` when given (the quarter-hourly chase of assistance requests).

    Dates and times come back raw and are parsed per column (vectorised), not per value.
    """
    deadlines, parties = DEADLINES, PARTIES
    columns = [
        type_coerce(deadlines.c[name], String) if name in _TIMES else deadlines.c[name]
        for name in _COLUMNS
    ]
    statement = (
        select(*columns, parties.c.contact_email, parties.c.leader_email)
        .select_from(deadlines.outerjoin(parties, parties.c.code == deadlines.c.party))
        .where(deadlines.c.status == "open", deadlines.c.next_fire_at <= as_of)
    )
    if subject_types is not None:
        statement = statement.where(deadlines.c.subject_type.in_(list(subject_types)))
    if session.get_bind().dialect.name == "postgresql":
        # Rows met by the portal while we work wait for us, rather than being told afterwards.
        statement = statement.with_for_update(of=deadlines)
    rows = session.execute(statement).all()
    frame = pd.DataFrame(rows, columns=[*_COLUMNS, "contact_email", "leader_email"])
    for name in ("due_at", "escalated_at", "listed_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    for name in ("due_on", "overdue_since"):
        frame[name] = pd.to_datetime(frame[name], format="ISO8601")
    return frame


def sweep_deadlines(
    *,
    session: Session,
    app: App,
    as_of: datetime,
    subject_types: Sequence[str] | None = None,
) -> SweepResult:
    """Send every ladder step that has come by `as_of`, once; move the clocks on (all clocks,
    or those of `subject_types`)."""
    # Sweeps take turns (the scheduled one, the campaign's, a manual one on another worker):
    # each reads the clocks as the one before it left them.
    serialise(session, "deadline-sweep")
    result = SweepResult(as_of=as_of)
    due = select_due_clocks(session, as_of=as_of, subject_types=subject_types)
    result.clocks_due = len(due)
    if due.empty:
        return result
    moves, sent = _plan_steps(due, app, as_of)
    result.notices_queued = queue_sweep_notices(session, sent, app=app, as_of=as_of)
    result.clocks_updated = _move_clocks(session, due, moves, sent, as_of, app.tz)
    _record_step_events(session, sent, as_of)
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


def _naive_utc(values: pd.Series) -> np.ndarray:
    """An aware datetime column as naive-UTC datetime64[ns] (NaT where missing)."""
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("<M8[ns]")


def _plan_steps(due: pd.DataFrame, app: App, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per clock: its next step and fire time; and one row per (clock, step to send)."""
    ladders = app.config.sla.ladders
    as_of64 = _utc64(as_of)
    due_at64 = _naive_utc(due["due_at"])
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
    rows = np.concatenate(sent_rows) if sent_rows else np.zeros(0, dtype=np.int64)
    sent = due.iloc[rows].reset_index(drop=True)
    sent["row"] = rows
    sent["step_index"] = np.concatenate(sent_index) if sent_index else rows
    sent["step"] = np.concatenate(sent_steps) if sent_steps else np.zeros(0, dtype=object)
    return moves, sent


def _addresses(sent: pd.DataFrame, app: App) -> dict[str, np.ndarray]:
    """Each audience's address for every row of `sent` (leader falls back to the contact)."""
    campaign = app.config.campaign
    contact = sent["contact_email"].fillna(campaign.office.email).to_numpy(dtype=object)
    leader = sent["leader_email"].to_numpy(dtype=object)
    leader = np.where(pd.isna(leader), contact, leader)
    count = len(sent)
    return {
        Audience.CONTACT.value: contact,
        Audience.LEADER.value: leader,
        Audience.OFFICE.value: np.full(count, campaign.office.email, dtype=object),
        Audience.LEADING_GROUP.value: np.full(count, campaign.leading_group.email, dtype=object),
    }


_NOTICE_COLUMNS = (
    "key",
    "kind",
    "party",
    "audience",
    "recipient",
    "cc",
    "subject_type",
    "subject_id",
    "deadline_id",
    "step",
    "group_key",
    "context",
    "status",
    "created_at",
)


def queue_sweep_notices(session: Session, sent: pd.DataFrame, *, app: App, as_of: datetime) -> int:
    """Queue one outbox notice per recipient per step sent, cc'd as the ladder says.

    Keys (`notice_key`: recipient, item, step, clock version) are unique in the outbox, so a
    step sent again is not queued again. Returns how many notices were new.
    """
    if sent.empty:
        return 0
    ladders = app.config.sla.ladders
    group = sweep_group_key(app, as_of)
    local_day = as_of.astimezone(app.tz).date()
    ordinals = day_ordinals(sent["due_on"])
    late = app.calendar.working_days_between_bulk(
        ordinals, np.full(len(sent), local_day.toordinal(), dtype=np.int64)
    )
    sent = sent.assign(
        late=np.maximum(late, 0),
        due_text=np.datetime_as_string(sent["due_on"].to_numpy("<M8[D]"), unit="D"),
    )
    addresses = _addresses(sent, app)
    data: dict[str, list[Any]] = {name: [] for name in _NOTICE_COLUMNS}
    now = datetime.now(UTC)
    for (ladder, position), part in sent.groupby(["ladder", "step_index"], sort=True):
        step = ladders[str(ladder)][int(position)]  # type: ignore[call-overload]
        at = part.index.to_numpy()
        cc_columns = [addresses[a.value][at] for a in step.cc]
        ids, versions = part["id"].tolist(), part["version"].tolist()
        types, subjects = part["subject_type"].tolist(), part["subject_id"].tolist()
        contexts = _contexts(part, local_day.isoformat())
        for audience in step.to:
            recipients = addresses[audience.value][at].tolist()
            count = len(recipients)
            data["key"] += [
                notice_key(
                    recipient=recipient,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    kind=step.step,
                    step=step.step,
                    version=version,
                )
                for recipient, subject_type, subject_id, version in zip(
                    recipients, types, subjects, versions, strict=True
                )
            ]
            data["cc"] += [
                _cc(recipient, tuple(copies))
                for recipient, *copies in zip(recipients, *cc_columns, strict=True)
            ]
            data["recipient"] += recipients
            data["audience"] += [audience.value] * count
            data["kind"] += [step.step] * count
            data["step"] += [step.step] * count
            data["party"] += part["party"].tolist()
            data["subject_type"] += types
            data["subject_id"] += subjects
            data["deadline_id"] += ids
            data["context"] += contexts
    total = len(data["key"])
    data["group_key"] = [group] * total
    data["status"] = ["queued"] * total
    data["created_at"] = [now] * total
    # In key order the outbox's unique index is filled from one end, not at random.
    order = sorted(range(total), key=data["key"].__getitem__)
    ordered = {name: [values[i] for i in order] for name, values in data.items()}
    return fast_insert(
        session, NOTICES, ordered, serialised=["cc", "context"], ignore_conflicts_on=["key"]
    )


@functools.lru_cache(maxsize=4096)
def _cc(recipient: str, copies: tuple[str, ...]) -> str:
    """The copy list of a notice as JSON: each address once, never the recipient."""
    return json.dumps([a for a in dict.fromkeys(copies) if a != recipient], ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _contexts(part: pd.DataFrame, as_of: str) -> list[str]:
    """Each notice's small context (ids, dates, step) as JSON text, built column-wise."""
    clock = part["kind"].map(_quoted).to_numpy(dtype=object)
    flag = np.where(part["provisional"].to_numpy(dtype=bool), "true", "false").astype(object)
    pieces = [
        '{"clock": ',
        clock,
        ', "due_on": "',
        part["due_text"].to_numpy(dtype=object),
        '", "version": ',
        part["version"].astype(str).to_numpy(dtype=object),
        ', "late_working_days": ',
        part["late"].astype(str).to_numpy(dtype=object),
        ', "provisional": ',
        flag,
        f', "as_of": "{as_of}"}}',
    ]
    text = np.full(len(part), "", dtype=object)
    for piece in pieces:
        text = text + piece
    return list(text.tolist())


def _py_datetimes(values: np.ndarray) -> list[datetime | None]:
    """Naive-UTC datetime64 values as aware datetimes (None for NaT), converting each once."""
    unique, inverse = np.unique(values, return_inverse=True)
    converted = [
        None if np.isnat(u) else pd.Timestamp(u).tz_localize("UTC").to_pydatetime() for u in unique
    ]
    return [converted[i] for i in inverse.tolist()]


def _py_dates(values: np.ndarray) -> list[date | None]:
    """datetime64[D] values as dates (None for NaT), converting each distinct day once."""
    unique, inverse = np.unique(values, return_inverse=True)
    converted = [None if np.isnat(u) else u.astype(object) for u in unique]
    return [converted[i] for i in inverse.tolist()]


def _first_late_days(due_at64: np.ndarray, tz: Any) -> np.ndarray:
    """The local day on which each due instant (naive UTC) has passed, as datetime64[D]."""
    unique, inverse = np.unique(due_at64, return_inverse=True)
    days = [
        np.datetime64(
            (pd.Timestamp(u).tz_localize("UTC") + pd.Timedelta(seconds=1)).tz_convert(tz).date(),
            "D",
        )
        for u in unique
    ]
    return np.array(days, dtype="<M8[D]")[inverse] if days else np.zeros(0, dtype="<M8[D]")


def _move_clocks(
    session: Session,
    due: pd.DataFrame,
    moves: pd.DataFrame,
    sent: pd.DataFrame,
    as_of: datetime,
    tz: Any,
) -> int:
    """Advance every due clock in one batched update, guarded by its version and status."""
    rows = np.flatnonzero(moves["known"].to_numpy())
    if rows.size == 0:
        return 0
    last_step = due["last_step"].to_numpy(dtype=object).copy()
    latest = sent.sort_values("step_index", kind="stable").groupby("row")["step"].last()
    last_step[latest.index.to_numpy(dtype=np.int64)] = latest.to_numpy(dtype=object)
    as_of64 = _utc64(as_of)
    due_at64 = _naive_utc(due["due_at"])
    # Overdue from the first local day after the due instant (the same day for hour limits).
    since = due["overdue_since"].to_numpy("<M8[D]").copy()
    starts = np.isnat(since) & (due_at64 < as_of64)
    since[starts] = _first_late_days(due_at64[starts], tz)
    stamps = {}
    for column, step in (("escalated_at", "leader"), ("listed_at", "supervision")):
        values = _naive_utc(due[column]).copy()
        reached = np.zeros(len(due), dtype=bool)
        reached[sent.loc[sent["step"] == step, "row"].to_numpy(dtype=np.int64)] = True
        values[np.isnat(values) & reached] = as_of64
        stamps[column] = _py_datetimes(values[rows])
    data = {
        "next_step": moves["new_next"].to_numpy()[rows].tolist(),
        "next_fire_at": _py_datetimes(moves["new_fire"].to_numpy("<M8[ns]")[rows]),
        "last_step": last_step[rows].tolist(),
        "overdue_since": _py_dates(since[rows]),
        "escalated_at": stamps["escalated_at"],
        "listed_at": stamps["listed_at"],
        "id": due["id"].to_numpy()[rows].tolist(),
        "version": due["version"].to_numpy()[rows].tolist(),
    }
    # The version guard: a clock restarted (extension, acknowledgement) since we read it is
    # left alone; its new ladder has its own steps.
    fast_update(session, DEADLINES, data, keys=["id", "version"], where_sql="status = 'open'")
    return int(rows.size)


def _record_step_events(session: Session, sent: pd.DataFrame, as_of: datetime) -> None:
    """An event per step that changes an item's standing (overdue, escalated, listed)."""
    changes = sent[sent["step"].isin(list(STEP_EVENTS))]
    if changes.empty:
        return
    count = len(changes)
    data: dict[str, list[Any]] = {
        "at": [as_of] * count,
        "actor": ["sweep"] * count,
        "action": [STEP_EVENTS[step] for step in changes["step"].tolist()],
        "subject_type": changes["subject_type"].tolist(),
        "subject_id": changes["subject_id"].tolist(),
        "origin": ["deadline_sweep"] * count,
        "data": (
            '{"deadline_id": '
            + changes["id"].astype(str)
            + ', "clock": '
            + changes["kind"].map(_quoted)
            + ', "version": '
            + changes["version"].astype(str)
            + ', "step": '
            + changes["step"].map(_quoted)
            + "}"
        ).tolist(),
    }
    fast_insert(session, EVENTS, data, serialised=["data"])
