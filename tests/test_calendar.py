"""The official working-day calendar against the State Council's published arrangements."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import numpy as np
import pytest

from wangjian.campaign.models import CalendarFile
from wangjian.domain.calendar import ProvisionalDateWarning, WorkCalendar

CAL = WorkCalendar()


def test_2025_national_day_week_is_off_and_both_make_up_days_are_worked() -> None:
    for offset in range(8):
        day = date(2025, 10, 1) + timedelta(days=offset)
        assert not CAL.is_workday(day), day
    assert CAL.is_workday(date(2025, 9, 28))  # Sunday, make-up working day
    assert CAL.is_workday(date(2025, 10, 11))  # Saturday, make-up working day
    assert CAL.is_workday(date(2025, 10, 9))
    assert CAL.info(date(2025, 10, 11)).reason == "调休上班"
    assert CAL.info(date(2025, 10, 1)).reason == "国庆节"


@pytest.mark.parametrize(
    "day", ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
)
def test_2026_make_up_working_days(day: str) -> None:
    parsed = date.fromisoformat(day)
    assert parsed.weekday() >= 5
    assert CAL.is_workday(parsed)
    assert CAL.info(parsed).known


def test_unknown_year_is_judged_on_weekends_and_marked_unknown() -> None:
    info = CAL.info(date(2027, 1, 1))  # a Friday; surely New Year's Day, but nobody told us
    assert info.workday and not info.known
    assert not CAL.is_workday(date(2027, 1, 2))
    assert CAL.unknown_between(date(2026, 12, 20), date(2027, 1, 20)) == [2027]


def test_office_can_add_a_year_the_library_lacks() -> None:
    overrides = CalendarFile.model_validate(
        {
            "years": {
                2027: {
                    "holidays": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"}],
                    "workdays": ["2027-01-09"],
                }
            }
        }
    )
    cal = WorkCalendar(overrides)
    assert not cal.is_workday(date(2027, 1, 1))
    assert cal.info(date(2027, 1, 1)).reason == "元旦"
    assert cal.is_workday(date(2027, 1, 9))  # a Saturday made a working day
    assert cal.info(date(2027, 1, 4)).known
    assert cal.unknown_between(date(2026, 12, 20), date(2027, 1, 20)) == []


def test_shifting_working_days_across_national_day_2025() -> None:
    # Received Tue 30 Sep 2025: 1–8 Oct are off, Sat 11 Oct is worked.
    assert CAL.shift_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert CAL.shift_working_days(date(2025, 9, 30), 3) == date(2025, 10, 11)
    assert CAL.shift_working_days(date(2025, 10, 9), -1) == date(2025, 9, 30)
    assert CAL.shift_working_days(date(2025, 10, 4), 0) == date(2025, 10, 4)
    assert CAL.shift_working_days(date(2025, 10, 4), -1) == date(2025, 9, 30)
    assert (
        CAL.working_days_between(date(2025, 9, 26), date(2025, 10, 11)) == 6
    )  # 28, 29, 30 Sep; 9, 10, 11 Oct


def test_bulk_shift_agrees_with_day_by_day_counting() -> None:
    start = date(2025, 9, 1)
    days = [start + timedelta(days=i) for i in range(0, 90, 3)]
    for n in (-5, -1, 0, 1, 7, 15):
        bulk = CAL.shift_working_days_bulk(np.array([d.toordinal() for d in days]), n)
        for day, got in zip(days, bulk, strict=True):
            assert date.fromordinal(int(got)) == _slow_shift(day, n), (day, n)


def _slow_shift(day: date, n: int) -> date:
    step = 1 if n > 0 else -1
    remaining = abs(n)
    while remaining:
        day += timedelta(days=step)
        if CAL.is_workday(day):
            remaining -= 1
    return day


def test_rolling_a_non_working_day() -> None:
    assert CAL.roll(date(2025, 10, 3), "next_working_day") == date(2025, 10, 9)
    assert CAL.roll(date(2025, 10, 3), "previous_working_day") == date(2025, 9, 30)
    assert CAL.roll(date(2025, 10, 3), "keep") == date(2025, 10, 3)


def test_provisional_warning_names_the_year() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CAL.warn_if_provisional([2027], "due date")
    assert caught and issubclass(caught[0].category, ProvisionalDateWarning)
    assert "2027" in str(caught[0].message)
