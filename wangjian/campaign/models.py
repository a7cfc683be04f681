"""The campaign configuration as typed models (validated from the YAML files in `config/`)."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CODE = r"^[a-z][a-z0-9_\-]*$"
EMAIL = r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$"
REGION = r"^\d{6}$"

Code = Annotated[str, Field(pattern=CODE, max_length=40)]
Email = Annotated[str, Field(pattern=EMAIL, max_length=254)]
RegionCode = Annotated[str, Field(pattern=REGION)]


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    HOURS = "hours"


class NonWorkingDayRule(StrEnum):
    """What happens when a date-based due day is not a working day."""

    KEEP = "keep"
    PREVIOUS_WORKING_DAY = "previous_working_day"
    NEXT_WORKING_DAY = "next_working_day"


# --- the campaign -----------------------------------------------------------------------------


class Window(Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


class Phases(Strict):
    mobilisation: Window
    implementation: Window
    summary: Window

    @model_validator(mode="after")
    def _in_order(self) -> Phases:
        if not (self.mobilisation.end < self.implementation.start):
            raise ValueError("implementation must start after mobilisation ends")
        if not (self.implementation.end < self.summary.start):
            raise ValueError("summary must start after implementation ends")
        return self

    def phase_on(self, day: date) -> str:
        """The phase a day belongs to: before, mobilisation, implementation, summary or after."""
        if day < self.mobilisation.start:
            return "before"
        for name in ("mobilisation", "implementation", "summary"):
            window: Window = getattr(self, name)
            if day <= window.end:
                return name
        return "after"


class Party(Strict):
    name: str = Field(min_length=1)
    name_en: str | None = None
    email: Email


class Jurisdiction(Strict):
    name: str
    name_en: str | None = None
    region_codes: list[RegionCode] = Field(min_length=1)

    def covers(self, region_code: str) -> bool:
        """Whether an operator's region lies inside; `xx0000` covers a province, `xxxx00` a city."""
        return any(region_matches(pattern, region_code) for pattern in self.region_codes)


def region_matches(pattern: str, region_code: str) -> bool:
    if pattern.endswith("0000"):
        return region_code[:2] == pattern[:2]
    if pattern.endswith("00"):
        return region_code[:4] == pattern[:4]
    return region_code == pattern


class Office(Party):
    host_agency: Code
    unit: str | None = None


class Campaign(Strict):
    code: Code
    name: str
    name_en: str
    year: int = Field(ge=2018, le=2100)
    level: Literal["national", "province", "city", "district", "county"]
    time_zone: str = "Asia/Shanghai"
    jurisdiction: Jurisdiction
    office: Office
    leading_group: Party
    phases: Phases
    report_to: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


# --- deadlines of members ---------------------------------------------------------------------


class ImplementationPlanDeadline(Strict):
    title: str = "具体实施方案"
    title_en: str = "implementation plan"
    due: date
    ladder: Code = "member_report"


class MonthlyReportDeadline(Strict):
    title: str = "月度工作进展(动态信息、典型做法及工作开展情况)"
    title_en: str = "monthly progress report"
    day_of_month: int = Field(ge=1, le=28)
    before: bool = True
    if_not_working_day: NonWorkingDayRule = NonWorkingDayRule.PREVIOUS_WORKING_DAY
    phase: Literal["implementation"] = "implementation"
    months: list[Annotated[str, Field(pattern=r"^\d{4}-\d{2}$")]] | None = None
    ladder: Code = "member_report"


class Deliverable(Strict):
    code: Code
    title: str
    title_en: str
    due: date
    min_typical_cases: int = Field(default=0, ge=0)
    penalty_decision_required: bool = True
    ladder: Code = "member_report"


PackagePart = Literal["summary_report", "statistics_table", "typical_cases", "joint_enforcement"]


class SummaryPackageDeadline(Strict):
    title: str = "专项行动总结材料"
    title_en: str = "summary package"
    due: date
    requires: list[PackagePart] = Field(
        default_factory=lambda: ["summary_report", "statistics_table", "typical_cases"]  # type: ignore[arg-type,list-item]
    )
    min_typical_cases: int = Field(ge=0)
    penalty_decision_required: bool = True
    copy_to: str | None = None
    ladder: Code = "member_report"


class Deadlines(Strict):
    implementation_plan: ImplementationPlanDeadline | None = None
    monthly_report: MonthlyReportDeadline | None = None
    deliverables: list[Deliverable] = Field(default_factory=list)
    summary_package: SummaryPackageDeadline

    @field_validator("deliverables")
    @classmethod
    def _unique_codes(cls, value: list[Deliverable]) -> list[Deliverable]:
        codes = [d.code for d in value]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"deliverable codes repeated: {', '.join(duplicated)}")
        return value


class CampaignFile(Strict):
    """`campaign.yaml`."""

    campaign: Campaign
    deadlines: Deadlines
    base: str | None = None

    @model_validator(mode="after")
    def _dates_fit(self) -> CampaignFile:
        phases = self.campaign.phases
        plan = self.deadlines.implementation_plan
        if plan and not (phases.mobilisation.start <= plan.due <= phases.implementation.start):
            raise ValueError(
                f"deadlines.implementation_plan.due {plan.due} is outside mobilisation"
            )
        if self.deadlines.summary_package.due < phases.implementation.end:
            raise ValueError("deadlines.summary_package.due is before implementation ends")
        return self


# --- agencies ---------------------------------------------------------------------------------


class Person(Strict):
    name: str = Field(min_length=1)
    title: str | None = None
    email: Email
    phone: str | None = None


class Agency(Strict):
    code: Code
    name_zh: str = Field(min_length=2)
    name_en: str = Field(min_length=2)
    contact: Person
    leader: Person
    categories: list[Code] = Field(default_factory=list)
    note: str | None = None


class AgenciesFile(Strict):
    """`agencies.yaml`: the member agencies of the joint meeting."""

    agencies: list[Agency] = Field(min_length=1)

    @field_validator("agencies")
    @classmethod
    def _unique(cls, value: list[Agency]) -> list[Agency]:
        codes = [a.code for a in value]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"agency codes repeated: {', '.join(duplicated)}")
        owners: dict[str, str] = {}
        for agency in value:
            for category in agency.categories:
                if category in owners:
                    raise ValueError(
                        f"category {category!r} is given to both {owners[category]!r} "
                        f"and {agency.code!r}"
                    )
                owners[category] = agency.code
        return value


# --- categories -------------------------------------------------------------------------------


class Category(Strict):
    code: Code
    name_zh: str
    name_en: str
    keywords: list[str] = Field(default_factory=list)
    legal_basis: str | None = None


class CategoriesFile(Strict):
    categories: list[Category] = Field(min_length=1)

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: list[Category]) -> list[Category]:
        codes = [c.code for c in value]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"category codes repeated: {', '.join(duplicated)}")
        return value


# --- SLA policies and the escalation ladder ---------------------------------------------------


class Limit(Strict):
    """A time limit: `count` units counted from the start rule, with its legal basis."""

    count: int = Field(ge=0)
    unit: Unit
    extendable_by: int = Field(default=0, ge=0)
    basis: str = Field(min_length=2)
    basis_en: str | None = None


class SlaPolicy(Strict):
    title: str
    title_en: str
    acknowledge: Limit
    outcome: Limit
    ack_ladder: Code = "referral_ack"
    outcome_ladder: Code = "referral_outcome"
    listed_operator_outcome: Limit | None = None


class Audience(StrEnum):
    CONTACT = "contact"
    LEADER = "leader"
    OFFICE = "office"
    LEADING_GROUP = "leading_group"


class LadderStep(Strict):
    step: Literal["reminder", "due_today", "overdue", "leader", "supervision"]
    offset: int
    unit: Unit = Unit.WORKING_DAYS
    to: list[Audience] = Field(min_length=1)
    cc: list[Audience] = Field(default_factory=list)


class SlaFile(Strict):
    """`sla.yaml`: time limits per referral kind and the escalation ladders."""

    policies: dict[Code, SlaPolicy]
    ladders: dict[Code, list[LadderStep]]

    @model_validator(mode="after")
    def _consistent(self) -> SlaFile:
        for kind in ("referral", "crime", "transfer_out"):
            if kind not in self.policies:
                raise ValueError(f"policies.{kind} is missing (every referral kind needs one)")
        for name, steps in self.ladders.items():
            offsets = [(s.unit == Unit.HOURS, s.offset) for s in steps]
            if offsets != sorted(offsets):
                raise ValueError(f"ladders.{name}: steps must be in order of their offsets")
            kinds = [s.step for s in steps]
            if len(set(kinds)) != len(kinds):
                raise ValueError(f"ladders.{name}: a step is named twice")
        for kind, policy in self.policies.items():
            for ladder in (policy.ack_ladder, policy.outcome_ladder):
                if ladder not in self.ladders:
                    raise ValueError(f"policies.{kind}: unknown ladder {ladder!r}")
        return self


# --- directory of other regions' regulators ---------------------------------------------------


class Regulator(Strict):
    region_code: RegionCode
    name_zh: str
    name_en: str
    email: Email

    @property
    def code(self) -> str:
        return f"reg-{self.region_code}"


class RegionsFile(Strict):
    regulators: list[Regulator]

    @field_validator("regulators")
    @classmethod
    def _unique(cls, value: list[Regulator]) -> list[Regulator]:
        seen: set[str] = set()
        for regulator in value:
            if regulator.region_code in seen:
                raise ValueError(f"region {regulator.region_code} is listed twice")
            seen.add(regulator.region_code)
        return value


# --- the calendar override --------------------------------------------------------------------


class HolidayRange(Strict):
    name: str
    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> HolidayRange:
        if self.end < self.start:
            raise ValueError(f"holiday {self.name}: 'to' {self.end} is before 'from' {self.start}")
        return self


class CalendarYear(Strict):
    holidays: list[HolidayRange] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    source: str | None = None


class CalendarFile(Strict):
    """`calendar.yaml`: official holidays and make-up working days of years a library lacks."""

    years: dict[int, CalendarYear] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dates_in_year(self) -> CalendarFile:
        for year, spec in self.years.items():
            for day in [*spec.workdays, *(h.start for h in spec.holidays)]:
                if day.year != year and not (day.year == year - 1 and day.month == 12):
                    raise ValueError(f"years.{year}: {day} does not belong to {year}")
        return self


# --- platforms (assistance requests, removed merchants) ---------------------------------------


class Platform(Strict):
    code: Code
    name_zh: str
    name_en: str
    # Other names leads and lists use for the platform (淘宝 for 淘宝网, 天猫 on Taobao's group).
    aliases: list[str] = Field(default_factory=list)
    contact: Person
    compliance_lead: Person
    sla_hours: int = Field(default=24, ge=1)
    # Where its shops are registered, when it serves only some regions: the digest of listed
    # operators then leaves out operators registered elsewhere (those it hosts always go in).
    hosts_regions: list[RegionCode] = Field(default_factory=list)


CRON = r"^\S+ \S+ \S+ \S+ \S+$"


class PlatformsFile(Strict):
    platforms: list[Platform] = Field(default_factory=list)
    assist_ladder: Code = "assist_request"
    assist_basis: str = Field(
        default=(
            "《中华人民共和国电子商务法》第二十五条:有关主管部门依照法律、行政法规的规定要求电子商务"
            "经营者提供有关电子商务数据信息的,电子商务经营者应当提供。"
        ),
        min_length=2,
    )
    assist_basis_en: str = (
        "E-Commerce Law of the PRC, art. 25 — e-commerce operators shall provide the e-commerce "
        "data the competent authorities ask for under laws and administrative regulations."
    )
    listed_digest_cron: str = Field(default="0 10 * * 1", pattern=CRON)
    assist_chase_cron: str = Field(default="*/15 * * * *", pattern=CRON)

    @field_validator("platforms")
    @classmethod
    def _unique(cls, value: list[Platform]) -> list[Platform]:
        codes = [p.code for p in value]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"platform codes repeated: {', '.join(duplicated)}")
        names: dict[str, str] = {}
        for platform in value:
            for name in {platform.code, platform.name_zh, platform.name_en, *platform.aliases}:
                key = name.strip().casefold()
                if names.setdefault(key, platform.code) != platform.code:
                    raise ValueError(
                        f"the name {name!r} is used by both {names[key]!r} and {platform.code!r}"
                    )
        return value


# --- the whole ---------------------------------------------------------------------------------


EMAIL_RE = re.compile(EMAIL)
