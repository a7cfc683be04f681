"""The escalation ladder: step times, and what a sweep sends on time or catching up."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from wangjian.campaign import load_config
from wangjian.domain.calendar import WorkCalendar
from wangjian.domain.ladder import bulk_step_times, step_times, steps_to_send
from wangjian.settings import PROJECT_ROOT

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
LADDER = load_config(PROJECT_ROOT / "config").ladder("referral_outcome")
DUE_ON = date(2025, 10, 13)
DUE_AT = datetime(2025, 10, 13, 23, 59, 59, tzinfo=TZ)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_step_times_follow_working_days() -> None:
    times = step_times(LADDER, DUE_ON, DUE_AT, CAL, TZ)
    # Reminder 3 working days before Mon 13 Oct 2025: Thu 9, Sat 11 (make-up day) and Fri 10 count.
    assert times[0] == local("2025-10-09 00:00")
    assert times[1] == local("2025-10-13 00:00")
    assert times[2] == local("2025-10-14 00:00")
    assert times[3] == local("2025-10-20 00:00")
    assert times[4] == local("2025-10-27 00:00")


def test_bulk_step_times_match_single() -> None:
    due_on = [DUE_ON + timedelta(days=i) for i in range(20)]
    due_at = [datetime.combine(d, DUE_AT.timetz()) for d in due_on]
    bulk = bulk_step_times(LADDER, pd.Series(due_on), pd.Series(due_at), CAL, TZ)
    for row, (d, a) in enumerate(zip(due_on, due_at, strict=True)):
        expected = [
            t.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
            for t in step_times(LADDER, d, a, CAL, TZ)
        ]
        assert [pd.Timestamp(x).to_pydatetime() for x in bulk[row]] == expected


def test_on_time_sweeps_send_one_step_each() -> None:
    times = step_times(LADDER, DUE_ON, DUE_AT, CAL, TZ)
    send, nxt = steps_to_send(LADDER, times, 0, local("2025-10-09 09:00"), DUE_AT)
    assert (send, nxt) == ([0], 1)
    assert steps_to_send(LADDER, times, 1, local("2025-10-10 09:00"), DUE_AT) == ([], 1)
    assert steps_to_send(LADDER, times, 1, local("2025-10-13 09:00"), DUE_AT) == ([1], 2)


def test_catching_up_after_a_week_skips_pointless_reminders() -> None:
    times = step_times(LADDER, DUE_ON, DUE_AT, CAL, TZ)
    send, nxt = steps_to_send(LADDER, times, 0, local("2025-10-21 09:00"), DUE_AT)
    assert send == [2, 3]  # overdue and leader; no "due in 3 days", no "due today"
    assert nxt == 4


def test_catching_up_before_the_deadline_sends_only_the_latest_pre_deadline_step() -> None:
    times = step_times(LADDER, DUE_ON, DUE_AT, CAL, TZ)
    assert steps_to_send(LADDER, times, 0, local("2025-10-13 09:00"), DUE_AT) == ([1], 2)
