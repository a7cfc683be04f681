"""What every member owes the office, and when: read from the campaign's `deadlines:` section.

Mobilisation: the member's implementation plan. Implementation: a monthly progress report "before
the 23rd" of every month whose report day falls inside the phase, moved by the configured rule
when that day is not a working day. Then the fixed-date deliverables and the summary package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from wangjian.campaign.models import CampaignFile
from wangjian.domain.calendar import WorkCalendar
from wangjian.domain.deadlines import monthly_due_on

IMPLEMENTATION_PLAN = "implementation_plan"
MONTHLY_REPORT = "monthly_report"
DELIVERABLE = "deliverable"
SUMMARY_PACKAGE = "summary_package"


@dataclass(frozen=True)
class PlannedObligation:
    """One obligation of every member: kind, code (period or deliverable), title, due day."""

    kind: str
    code: str
    title: str
    due_on: date
    ladder: str
    provisional: bool = False
    rolled_from: date | None = None
    requirements: dict[str, Any] = field(default_factory=dict)


def report_months(campaign_file: CampaignFile) -> list[tuple[int, int]]:
    """The months owing a progress report: configured, or those whose report day is in the phase."""
    spec = campaign_file.deadlines.monthly_report
    if spec is None:
        return []
    if spec.months:
        return [(int(m[:4]), int(m[5:])) for m in spec.months]
    window = campaign_file.campaign.phases.implementation
    months = []
    year, month = window.start.year, window.start.month
    while (year, month) <= (window.end.year, window.end.month):
        nominal = date(year, month, spec.day_of_month) - timedelta(days=1 if spec.before else 0)
        if window.contains(nominal):
            months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def plan_obligations(
    campaign_file: CampaignFile, calendar: WorkCalendar
) -> list[PlannedObligation]:
    """Every obligation a member owes over the campaign, in due order."""
    deadlines = campaign_file.deadlines
    planned: list[PlannedObligation] = []
    plan = deadlines.implementation_plan
    if plan is not None:
        planned.append(
            PlannedObligation(IMPLEMENTATION_PLAN, "plan", plan.title, plan.due, plan.ladder)
        )
    monthly = deadlines.monthly_report
    if monthly is not None:
        for year, month in report_months(campaign_file):
            due_on, rolled_from = monthly_due_on(
                calendar,
                year,
                month,
                day_of_month=monthly.day_of_month,
                before=monthly.before,
                rule=monthly.if_not_working_day.value,
            )
            period = f"{year:04d}-{month:02d}"
            planned.append(
                PlannedObligation(
                    MONTHLY_REPORT,
                    period,
                    f"{monthly.title}({year}年{month}月)",
                    due_on,
                    monthly.ladder,
                    provisional=not calendar.year_known(year),
                    rolled_from=rolled_from,
                    requirements={
                        "period": period,
                        "day_of_month": monthly.day_of_month,
                        "before": monthly.before,
                        "if_not_working_day": monthly.if_not_working_day.value,
                    },
                )
            )
    for item in deadlines.deliverables:
        planned.append(
            PlannedObligation(
                DELIVERABLE,
                item.code,
                item.title,
                item.due,
                item.ladder,
                requirements={
                    "min_typical_cases": item.min_typical_cases,
                    "penalty_decision_required": item.penalty_decision_required,
                },
            )
        )
    package = deadlines.summary_package
    planned.append(
        PlannedObligation(
            SUMMARY_PACKAGE,
            "summary",
            package.title,
            package.due,
            package.ladder,
            requirements={
                "requires": list(package.requires),
                "min_typical_cases": package.min_typical_cases,
                "penalty_decision_required": package.penalty_decision_required,
                "copy_to": package.copy_to,
            },
        )
    )
    return sorted(planned, key=lambda p: (p.due_on, p.kind, p.code))
