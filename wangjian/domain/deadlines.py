"""Deadline arithmetic: pure, and every due date can say how it was computed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wangjian.campaign.models import Limit, NonWorkingDayRule, Unit
from wangjian.domain.calendar import WorkCalendar

UNIT_ZH = {Unit.WORKING_DAYS: "个工作日", Unit.CALENDAR_DAYS: "日", Unit.HOURS: "小时"}


@dataclass(frozen=True)
class SkippedDay:
    day: date
    reason: str


@dataclass(frozen=True)
class DueDate:
    """A computed deadline and its working: start rule, unit, count and the days skipped."""

    due_on: date
    due_at: datetime  # the instant the deadline passes (end of `due_on`, or start + hours)
    start: datetime
    unit: Unit
    count: int
    rule: str
    skipped: tuple[SkippedDay, ...] = ()
    rolled_from: date | None = None
    provisional: bool = False
    unknown_years: tuple[int, ...] = field(default=())
    basis: str | None = None

    def explain(self) -> str:
        """One sentence in Chinese, e.g. for a notice or the portal's referral page."""
        start_day = self.start.date().isoformat()
        text = f"自{start_day}起算({self.rule}),{self.count}{UNIT_ZH[self.unit]}"
        if self.skipped:
            groups = _group_skipped(self.skipped)
            text += ",其间不计:" + "、".join(groups)
        if self.rolled_from:
            text += f";期限末日{self.rolled_from.isoformat()}非工作日,顺延"
        text += f",截止{self.due_on.isoformat()}"
        if self.unit == Unit.HOURS:
            text += f" {self.due_at.strftime('%H:%M')}"
        if self.provisional:
            years = "、".join(str(y) for y in self.unknown_years)
            text += f"(暂定:{years}年法定节假日安排尚未录入,仅按周末计算)"
        return text + "。"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [{"day": s.day.isoformat(), "reason": s.reason} for s in self.skipped]
        for key in ("due_on", "rolled_from"):
            data[key] = data[key].isoformat() if data[key] else None
        for key in ("due_at", "start"):
            data[key] = data[key].isoformat()
        data["unit"] = self.unit.value
        data["unknown_years"] = list(self.unknown_years)
        data["explanation"] = self.explain()
        return data


def _group_skipped(skipped: tuple[SkippedDay, ...]) -> list[str]:
    """Runs of consecutive skipped days, as '10-01至10-08(国庆节、中秋节)'."""
    runs: list[tuple[date, date, list[str]]] = []
    for item in skipped:
        if runs and (item.day - runs[-1][1]).days == 1:
            first, _, reasons = runs[-1]
            runs[-1] = (first, item.day, reasons)
        else:
            runs.append((item.day, item.day, []))
        if item.reason not in runs[-1][2]:
            runs[-1][2].append(item.reason)
    out = []
    for first, last, reasons in runs:
        named = [r for r in reasons if r != "周末"] or reasons
        span = f"{first:%m-%d}" if first == last else f"{first:%m-%d}至{last:%m-%d}"
        out.append(f"{span}({'、'.join(named)})")
    return out


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz)


def compute_due(
    calendar: WorkCalendar,
    start: datetime,
    limit: Limit,
    *,
    tz: ZoneInfo,
    extra: int = 0,
    roll: NonWorkingDayRule = NonWorkingDayRule.NEXT_WORKING_DAY,
) -> DueDate:
    """When a time limit counted from `start` runs out (`extra` adds an approved extension).

    Days are counted from the day after `start` (期间开始之日不计算在内); a calendar-day limit
    whose last day is not a working day runs to the next working day (期间届满日为法定节假日的,
    以节假日后的第一日为期间届满的日期).
    """
    local = start.astimezone(tz)
    count = limit.count + extra
    if limit.unit == Unit.HOURS:
        due_at = local + timedelta(hours=count)
        return DueDate(
            due_on=due_at.date(),
            due_at=due_at,
            start=local,
            unit=limit.unit,
            count=count,
            rule="按自然小时连续计算",
            basis=limit.basis,
        )
    first = local.date()
    skipped: list[SkippedDay] = []
    rolled_from = None
    if limit.unit == Unit.WORKING_DAYS:
        due_on = calendar.shift_working_days(first, count)
        day = first + timedelta(days=1)
        while day <= due_on:
            info = calendar.info(day)
            if not info.workday:
                skipped.append(SkippedDay(day, info.reason))
            day += timedelta(days=1)
        rule = "次日起算,按工作日计算"
    else:
        due_on = first + timedelta(days=count)
        rolled = calendar.roll(due_on, roll.value)
        if rolled != due_on:
            rolled_from, due_on = due_on, rolled
        rule = "次日起算,按自然日计算"
    unknown = calendar.unknown_between(first, due_on)
    calendar.warn_if_provisional(unknown, f"due date {due_on}")
    return DueDate(
        due_on=due_on,
        due_at=end_of_day(due_on, tz),
        start=local,
        unit=limit.unit,
        count=count,
        rule=rule,
        skipped=tuple(skipped),
        rolled_from=rolled_from,
        provisional=bool(unknown),
        unknown_years=tuple(unknown),
        basis=limit.basis,
    )


def monthly_due_on(
    calendar: WorkCalendar, year: int, month: int, *, day_of_month: int, before: bool, rule: str
) -> tuple[date, date | None]:
    """The due day of a monthly report ("before the 23rd"), rolled by the configured rule."""
    nominal = date(year, month, day_of_month) - timedelta(days=1 if before else 0)
    rolled = calendar.roll(nominal, rule)
    return rolled, (nominal if rolled != nominal else None)
