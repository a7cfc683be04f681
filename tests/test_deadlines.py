"""Deadline arithmetic: due dates, their explanations, extensions, provisional years."""

from __future__ import annotations

import warnings
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from wangjian.campaign.models import CalendarFile, Limit, NonWorkingDayRule, Unit
from wangjian.domain.calendar import WorkCalendar
from wangjian.domain.clock import AsOfError, parse_as_of
from wangjian.domain.deadlines import compute_due, monthly_due_on

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
VERIFY = Limit(count=15, unit=Unit.WORKING_DAYS, extendable_by=15, basis="第十八条")
POLICE = Limit(count=3, unit=Unit.CALENDAR_DAYS, basis="第八条")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_fifteen_working_days_across_national_day_2025() -> None:
    due = compute_due(CAL, at("2025-09-26 15:00"), VERIFY, tz=TZ)
    # Sat 27 skipped, Sun 28 worked, 1–8 Oct off, Sat 11 worked: the 15th working day is Thu 23 Oct.
    assert due.due_on == date(2025, 10, 23)
    assert due.due_at == at("2025-10-23 23:59:59")
    reasons = {s.day: s.reason for s in due.skipped}
    assert reasons[date(2025, 9, 27)] == "周末"
    assert date(2025, 9, 28) not in reasons and date(2025, 10, 11) not in reasons
    assert reasons[date(2025, 10, 1)] == "国庆节"
    text = due.explain()
    assert "15个工作日" in text and "10-01至10-08" in text and "截止2025-10-23" in text
    assert not due.provisional


def test_an_extension_adds_fifteen_more_working_days() -> None:
    due = compute_due(CAL, at("2025-09-26 15:00"), VERIFY, tz=TZ, extra=15)
    assert due.count == 30
    assert due.due_on == CAL.shift_working_days(date(2025, 10, 23), 15)


def test_calendar_days_whose_last_day_is_a_holiday_run_to_the_next_working_day() -> None:
    due = compute_due(CAL, at("2025-09-29 10:00"), POLICE, tz=TZ)
    assert due.rolled_from == date(2025, 10, 2)
    assert due.due_on == date(2025, 10, 9)
    kept = compute_due(CAL, at("2025-09-29 10:00"), POLICE, tz=TZ, roll=NonWorkingDayRule.KEEP)
    assert kept.due_on == date(2025, 10, 2)


def test_receipt_on_a_weekend_counts_from_the_next_day() -> None:
    due = compute_due(
        CAL, at("2025-11-01 11:00"), Limit(count=1, unit=Unit.WORKING_DAYS, basis="规则"), tz=TZ
    )
    assert due.due_on == date(2025, 11, 3)


def test_hour_limits_run_on_calendar_hours_across_midnight() -> None:
    due = compute_due(
        CAL, at("2025-10-10 20:30"), Limit(count=24, unit=Unit.HOURS, basis="协查"), tz=TZ
    )
    assert due.due_at == at("2025-10-11 20:30")


def test_unknown_year_is_provisional_warned_and_recomputed_when_added() -> None:
    with pytest.warns(Warning, match="2027"):
        due = compute_due(CAL, at("2026-12-24 09:00"), VERIFY, tz=TZ)
    assert due.provisional and due.unknown_years == (2027,)
    assert "暂定" in due.explain()
    known = WorkCalendar(
        CalendarFile.model_validate(
            {
                "years": {
                    2027: {"holidays": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"}]}
                }
            }
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = compute_due(known, at("2026-12-24 09:00"), VERIFY, tz=TZ)
    assert not again.provisional
    assert again.due_on > due.due_on  # New Year's Day is no longer counted as a working day


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("previous_working_day", date(2026, 8, 21)),  # the 22nd is a Saturday
        ("next_working_day", date(2026, 8, 24)),
        ("keep", date(2026, 8, 22)),
    ],
)
def test_monthly_report_before_the_23rd_on_a_weekend(rule: str, expected: date) -> None:
    due, rolled_from = monthly_due_on(CAL, 2026, 8, day_of_month=23, before=True, rule=rule)
    assert due == expected
    assert (rolled_from is None) == (rule == "keep")


def test_monthly_report_on_a_working_day_stays() -> None:
    assert monthly_due_on(
        CAL, 2021, 11, day_of_month=23, before=True, rule="previous_working_day"
    ) == (date(2021, 11, 22), None)


def test_as_of_parsing() -> None:
    assert parse_as_of("2021-11-03", TZ) == at("2021-11-03 09:00")
    assert parse_as_of("2021-11-03T14:30", TZ) == at("2021-11-03 14:30")
    assert parse_as_of("2021-11-03T06:30:00+00:00", TZ) == at("2021-11-03 14:30")
    with pytest.raises(AsOfError, match="not an ISO date"):
        parse_as_of("3 Nov", TZ)
