"""The escalation ladder: when each step of a deadline fires, and which steps a sweep sends.

A working-day step fires at local midnight of its day (the 09:00 sweep of that day sends it);
an hour step fires `offset` hours from the due instant. Steps due on or before the deadline
(reminder, notice on the day) become pointless once it has passed, and only the latest of them
is worth sending; escalations after it are each sent once, even when a sweep catches up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from wangjian.campaign.models import LadderStep, Unit
from wangjian.domain.calendar import WorkCalendar
from wangjian.domain.clock import local_midnight

PRE_DEADLINE = frozenset({"reminder", "due_today"})


@dataclass(frozen=True)
class Firing:
    index: int
    step: LadderStep
    fire_at: datetime


def step_times(
    ladder: list[LadderStep], due_on: date, due_at: datetime, calendar: WorkCalendar, tz: ZoneInfo
) -> list[datetime]:
    """When each step of the ladder fires for one deadline."""
    times = []
    for step in ladder:
        if step.unit == Unit.HOURS:
            times.append(due_at + timedelta(hours=step.offset))
        elif step.unit == Unit.CALENDAR_DAYS:
            times.append(local_midnight(due_on + timedelta(days=step.offset), tz))
        else:
            times.append(local_midnight(calendar.shift_working_days(due_on, step.offset), tz))
    return times


def bulk_step_times(
    ladder: list[LadderStep],
    due_on: pd.Series,
    due_at: pd.Series,
    calendar: WorkCalendar,
    tz: ZoneInfo,
) -> np.ndarray:
    """Fire times (UTC, datetime64[ns]) of every step for many deadlines: shape (rows, steps)."""
    ordinals = day_ordinals(due_on)
    due_at_utc = pd.to_datetime(due_at, utc=True).to_numpy(dtype="datetime64[ns]")
    out = np.empty((len(due_on), len(ladder)), dtype="datetime64[ns]")
    for j, step in enumerate(ladder):
        if step.unit == Unit.HOURS:
            out[:, j] = due_at_utc + np.timedelta64(step.offset, "h")
            continue
        if step.unit == Unit.CALENDAR_DAYS:
            days = ordinals + step.offset
        else:
            days = calendar.shift_working_days_bulk(ordinals, step.offset)
        out[:, j] = _local_midnights_utc(days, tz)
    return out


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_ordinals(days: pd.Series) -> np.ndarray:
    """`date.toordinal()` of each day, given as dates or as datetime64 (vectorised)."""
    if pd.api.types.is_datetime64_any_dtype(days.dtype):
        return days.to_numpy(dtype="datetime64[D]").astype(np.int64) + _EPOCH_ORDINAL
    return np.fromiter((d.toordinal() for d in days), dtype=np.int64, count=len(days))


def _local_midnights_utc(ordinals: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Local midnight of each day (given as ordinals), as naive UTC datetime64[ns]."""
    unique, inverse = np.unique(ordinals, return_inverse=True)
    converted = np.array(
        [
            np.datetime64(
                local_midnight(date.fromordinal(int(o)), tz).astimezone(UTC).replace(tzinfo=None),
                "ns",
            )
            for o in unique
        ],
        dtype="datetime64[ns]",
    )
    return converted[inverse]


def first_fire_at(
    ladder: list[LadderStep], due_on: date, due_at: datetime, calendar: WorkCalendar, tz: ZoneInfo
) -> datetime | None:
    times = step_times(ladder, due_on, due_at, calendar, tz)
    return times[0] if times else None


def steps_to_send(
    ladder: list[LadderStep],
    fire_times: list[datetime],
    next_step: int,
    as_of: datetime,
    due_at: datetime,
) -> tuple[list[int], int]:
    """Which steps a sweep at `as_of` sends, and the index of the next step still to come."""
    ready = [i for i in range(next_step, len(ladder)) if fire_times[i] <= as_of]
    if not ready:
        return [], next_step
    overdue = as_of > due_at
    before = [i for i in ready if ladder[i].step in PRE_DEADLINE]
    after = [i for i in ready if ladder[i].step not in PRE_DEADLINE]
    send = [] if overdue or not before else [before[-1]]
    return send + after, ready[-1] + 1


def bulk_steps_to_send(
    ladder: list[LadderStep],
    fire_times: np.ndarray,
    next_step: np.ndarray,
    as_of: np.datetime64,
    due_at: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`steps_to_send` for many deadlines of one ladder at once.

    `fire_times` is (rows, steps) and `due_at` (rows,), both naive UTC datetime64; returns a
    boolean (rows, steps) matrix of the steps to send and the next step index of each row.
    """
    rows, width = fire_times.shape
    nxt = np.asarray(next_step, dtype=np.int64)
    if width == 0 or rows == 0:
        return np.zeros((rows, width), dtype=bool), nxt.copy()
    columns = np.arange(width)
    ready = (columns[None, :] >= nxt[:, None]) & (fire_times <= as_of)
    pre = np.array([step.step in PRE_DEADLINE for step in ladder], dtype=bool)
    overdue = as_of > due_at
    send = ready & ~pre[None, :]
    ready_pre = ready & pre[None, :]
    latest_pre = _last_true(ready_pre)
    # Only the latest pre-deadline step still means something, and none once the deadline passed.
    keep = np.flatnonzero((latest_pre >= 0) & ~overdue)
    send[keep, latest_pre[keep]] = True
    latest = _last_true(ready)
    return send, np.where(latest >= 0, latest + 1, nxt)


def _last_true(matrix: np.ndarray) -> np.ndarray:
    """Column index of the last True in each row, or -1 for a row with none."""
    width = matrix.shape[1]
    last = width - 1 - np.argmax(matrix[:, ::-1], axis=1)
    return np.where(matrix.any(axis=1), last, -1)
