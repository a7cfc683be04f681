"""The Chinese official working-day calendar: weekends, public holidays and make-up working days.

Years the `chinese-calendar` library knows (2004–2026 at the time of writing) come from it; the
office adds a newer year in `config/calendar.yaml` once the State Council publishes it. A date in
a year neither knows is judged on weekends alone and flagged *provisional*.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import chinese_calendar
import numpy as np

from wangjian.campaign.models import CalendarFile

FIRST = date(2004, 1, 1)
LAST = date(2060, 12, 31)

_HOLIDAY_NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


class ProvisionalDateWarning(UserWarning):
    """A date was computed on weekends only because its year's official calendar is unknown."""


@dataclass(frozen=True)
class DayInfo:
    day: date
    workday: bool
    known: bool
    reason: str  # "工作日", "周末", a holiday's name, or "调休上班"


class WorkCalendar:
    """Answers "is this a working day?" and counts working days, explainably and in bulk."""

    def __init__(self, overrides: CalendarFile | None = None) -> None:
        self._overrides = overrides or CalendarFile()
        self._override_off: dict[date, str] = {}
        self._override_on: set[date] = set()
        for spec in self._overrides.years.values():
            for holiday in spec.holidays:
                day = holiday.start
                while day <= holiday.end:
                    self._override_off[day] = holiday.name
                    day += timedelta(days=1)
            self._override_on.update(spec.workdays)

    # --- single days --------------------------------------------------------------------------

    def year_known(self, year: int) -> bool:
        if year in self._overrides.years:
            return True
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def info(self, day: date) -> DayInfo:
        weekend = day.weekday() >= 5
        if day.year in self._overrides.years:
            if day in self._override_on:
                return DayInfo(day, True, True, "调休上班")
            if day in self._override_off:
                return DayInfo(day, False, True, self._override_off[day])
            return DayInfo(day, not weekend, True, "周末" if weekend else "工作日")
        try:
            workday = chinese_calendar.is_workday(day)
        except NotImplementedError:
            return DayInfo(day, not weekend, False, "周末" if weekend else "工作日")
        if workday:
            return DayInfo(day, True, True, "调休上班" if weekend else "工作日")
        _is_holiday, name = chinese_calendar.get_holiday_detail(day)
        if weekend and not name:
            return DayInfo(day, False, True, "周末")
        return DayInfo(day, False, True, _HOLIDAY_NAMES_ZH.get(str(name), str(name or "节假日")))

    def is_workday(self, day: date) -> bool:
        return self.info(day).workday

    # --- the bulk table -----------------------------------------------------------------------

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-day flags from FIRST to LAST: workday, known; and the cumulative workday count."""
        days = (LAST - FIRST).days + 1
        workday = np.zeros(days, dtype=bool)
        known = np.zeros(days, dtype=bool)
        year_known: dict[int, bool] = {}
        for i in range(days):
            day = FIRST + timedelta(days=i)
            if day.year not in year_known:
                year_known[day.year] = self.year_known(day.year)
            known[i] = year_known[day.year]
            if not known[i]:
                workday[i] = day.weekday() < 5
            elif day.year in self._overrides.years:
                workday[i] = self.info(day).workday
            else:
                workday[i] = chinese_calendar.is_workday(day)
        cumulative = np.cumsum(workday)  # workdays on or before each day
        workday_index = np.flatnonzero(workday)  # day offsets of the workdays, in order
        return workday, known, cumulative, workday_index

    def _offset(self, day: date) -> int:
        if not FIRST <= day <= LAST:
            raise ValueError(f"{day} is outside the calendar's range {FIRST}–{LAST}")
        return (day - FIRST).days

    def shift_working_days(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n > 0), before it (n < 0), or `day` itself (n = 0)."""
        return date.fromordinal(
            int(self.shift_working_days_bulk(np.array([day.toordinal()]), n)[0])
        )

    def shift_working_days_bulk(self, ordinals: np.ndarray, n: int | np.ndarray) -> np.ndarray:
        """Vectorised `shift_working_days` over an array of `date.toordinal()` values."""
        workday, _known, cumulative, index = self._table
        offsets = np.asarray(ordinals, dtype=np.int64) - FIRST.toordinal()
        if offsets.size and (offsets.min() < 0 or offsets.max() >= workday.size):
            raise ValueError("a date is outside the calendar's range")
        n_arr = np.broadcast_to(np.asarray(n, dtype=np.int64), offsets.shape)
        after = cumulative[offsets] + n_arr - 1  # index of the n-th workday after
        before = cumulative[offsets] - workday[offsets] + n_arr  # n < 0: counting back
        target = np.where(n_arr > 0, after, np.where(n_arr < 0, before, -1))
        target = np.clip(target, 0, index.size - 1)
        shifted = index[target] + FIRST.toordinal()
        return np.where(n_arr == 0, offsets + FIRST.toordinal(), shifted)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many working days `end` lies after `start`."""
        _workday, _known, cumulative, _index = self._table
        return int(cumulative[self._offset(end)] - cumulative[self._offset(start)])

    def working_days_between_bulk(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Vectorised `working_days_between` over arrays of `date.toordinal()` values."""
        workday, _known, cumulative, _index = self._table
        first = np.asarray(start, dtype=np.int64) - FIRST.toordinal()
        last = np.asarray(end, dtype=np.int64) - FIRST.toordinal()
        for offsets in (first, last):
            if offsets.size and (offsets.min() < 0 or offsets.max() >= workday.size):
                raise ValueError("a date is outside the calendar's range")
        return cumulative[last] - cumulative[first]

    def unknown_between(self, start: date, end: date) -> list[int]:
        """Years between two dates (inclusive) whose official calendar is unknown."""
        return sorted({y for y in range(start.year, end.year + 1) if not self.year_known(y)})

    def roll(self, day: date, rule: str) -> date:
        """Move a non-working day to the previous or next working day (or keep it)."""
        if rule == "keep" or self.is_workday(day):
            return day
        step = -1 if rule == "previous_working_day" else 1
        while not self.is_workday(day):
            day += timedelta(days=step)
        return day

    def warn_if_provisional(self, years: list[int], what: str) -> None:
        if years:
            warnings.warn(
                f"{what}: the official calendar of {', '.join(map(str, years))} is not known; "
                "computed on weekends only (provisional) — add the year to config/calendar.yaml",
                ProvisionalDateWarning,
                stacklevel=3,
            )
