"""Pure deadline rules: the bulk ladder against the single one, report days that fall on a
Sunday or a holiday, and the obligations a campaign plan implies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wangjian.campaign import load_config
from wangjian.domain.calendar import WorkCalendar
from wangjian.domain.deadlines import end_of_day, monthly_due_on
from wangjian.domain.ladder import bulk_step_times, bulk_steps_to_send, step_times, steps_to_send
from wangjian.domain.obligations import plan_obligations, report_months
from wangjian.settings import PROJECT_ROOT

from .deadline_factories import CAMPAIGN_2025

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
CONFIG = load_config(PROJECT_ROOT / "config")
LADDERS = CONFIG.sla.ladders


def _utc(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns")


@settings(max_examples=150, deadline=None)
@given(
    ladder=st.sampled_from(sorted(LADDERS)),
    start=st.dates(min_value=date(2025, 9, 1), max_value=date(2026, 2, 28)),
    spreads=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    hours=st.lists(st.integers(0, 23), min_size=12, max_size=12),
    next_steps=st.lists(st.integers(0, 5), min_size=12, max_size=12),
    sweep_offset=st.integers(-10, 40),
    sweep_hour=st.integers(0, 23),
)
def test_bulk_step_selection_agrees_with_the_single_deadline_rules(
    ladder: str,
    start: date,
    spreads: list[int],
    hours: list[int],
    next_steps: list[int],
    sweep_offset: int,
    sweep_hour: int,
) -> None:
    steps = LADDERS[ladder]
    due_on = [start + timedelta(days=s) for s in spreads]
    # Hour ladders (assistance requests) fall due mid-day; day ladders at the end of the day.
    due_at = [
        datetime.combine(d, datetime.min.time(), tzinfo=TZ) + timedelta(hours=h)
        if steps[0].unit == "hours"
        else end_of_day(d, TZ)
        for d, h in zip(due_on, hours, strict=False)
    ]
    nxt = np.array([min(n, len(steps)) for n in next_steps[: len(due_on)]])
    as_of = datetime.combine(
        start + timedelta(days=sweep_offset), datetime.min.time(), tzinfo=TZ
    ) + timedelta(hours=sweep_hour)
    fire = bulk_step_times(steps, pd.Series(due_on), pd.Series(due_at), CAL, TZ)
    send, new_next = bulk_steps_to_send(
        steps, fire, nxt, _utc(as_of), np.array([_utc(a) for a in due_at])
    )
    for row, (d, a) in enumerate(zip(due_on, due_at, strict=True)):
        times = step_times(steps, d, a, CAL, TZ)
        expected, expected_next = steps_to_send(steps, times, int(nxt[row]), as_of, a)
        assert sorted(np.flatnonzero(send[row]).tolist()) == sorted(expected)
        assert new_next[row] == expected_next


def test_bulk_selection_after_a_week_sends_escalations_and_skips_pointless_reminders() -> None:
    steps = LADDERS["referral_outcome"]
    due_on, due_at = date(2025, 10, 13), end_of_day(date(2025, 10, 13), TZ)
    fire = bulk_step_times(steps, pd.Series([due_on]), pd.Series([due_at]), CAL, TZ)
    as_of = datetime(2025, 10, 21, 9, tzinfo=TZ)  # a week after the due day, nothing sent yet
    send, nxt = bulk_steps_to_send(
        steps, fire, np.array([0]), _utc(as_of), np.array([_utc(due_at)])
    )
    assert [steps[i].step for i in np.flatnonzero(send[0])] == ["overdue", "leader"]
    assert nxt.tolist() == [4]


@pytest.mark.parametrize(
    ("year", "month", "day", "before", "rule", "due", "rolled_from"),
    [
        # "Before the 23rd" of November 2025: the 22nd is a Saturday (the 23rd a Sunday).
        (2025, 11, 23, True, "previous_working_day", date(2025, 11, 21), date(2025, 11, 22)),
        (2025, 11, 23, True, "next_working_day", date(2025, 11, 24), date(2025, 11, 22)),
        # "By the 23rd" when the 23rd itself is a Sunday.
        (2025, 11, 23, False, "previous_working_day", date(2025, 11, 21), date(2025, 11, 23)),
        (2025, 11, 23, False, "keep", date(2025, 11, 23), None),
        # The 23rd in the 2023 Spring Festival holiday (21–27 Jan); Sat 28 Jan was a make-up day.
        (2023, 1, 23, False, "previous_working_day", date(2023, 1, 20), date(2023, 1, 23)),
        (2023, 1, 23, False, "next_working_day", date(2023, 1, 28), date(2023, 1, 23)),
        # Inside National Day 2025 (1–8 Oct); Sat 11 Oct is a make-up working day, so it stays.
        (2025, 10, 8, False, "previous_working_day", date(2025, 9, 30), date(2025, 10, 8)),
        (2025, 10, 8, False, "next_working_day", date(2025, 10, 9), date(2025, 10, 8)),
        (2025, 10, 11, False, "previous_working_day", date(2025, 10, 11), None),
        # An ordinary Wednesday is not moved.
        (2025, 10, 23, True, "previous_working_day", date(2025, 10, 22), None),
    ],
)
def test_a_monthly_report_day_off_work_moves_by_the_configured_rule(
    year: int,
    month: int,
    day: int,
    before: bool,
    rule: str,
    due: date,
    rolled_from: date | None,
) -> None:
    assert monthly_due_on(CAL, year, month, day_of_month=day, before=before, rule=rule) == (
        due,
        rolled_from,
    )


def test_the_2025_test_campaign_plans_six_obligations_per_member() -> None:
    config = load_config(CAMPAIGN_2025)
    planned = plan_obligations(config.campaign_file, WorkCalendar(config.calendar))
    assert [(p.kind, p.code, p.due_on) for p in planned] == [
        ("implementation_plan", "plan", date(2025, 9, 19)),
        ("monthly_report", "2025-09", date(2025, 9, 22)),
        ("deliverable", "typical-cases-oct", date(2025, 10, 9)),
        ("monthly_report", "2025-10", date(2025, 10, 22)),
        ("monthly_report", "2025-11", date(2025, 11, 21)),  # the 22nd is a Saturday
        ("summary_package", "summary", date(2025, 12, 10)),
    ]
    november = next(p for p in planned if p.code == "2025-11")
    assert november.rolled_from == date(2025, 11, 22) and not november.provisional


def test_the_default_campaign_reports_for_each_month_of_its_implementation_phase() -> None:
    # Implementation 21 Oct – 30 Nov 2021: the reports of October (due 22 Oct) and November.
    assert report_months(CONFIG.campaign_file) == [(2021, 10), (2021, 11)]
    planned = plan_obligations(CONFIG.campaign_file, CAL)
    kinds = [p.kind for p in planned]
    assert kinds.count("monthly_report") == 2 and kinds.count("deliverable") == 1
    assert planned[-1].kind == "summary_package" and planned[-1].due_on == date(2021, 12, 9)
    assert planned[-1].requirements["min_typical_cases"] == 5
