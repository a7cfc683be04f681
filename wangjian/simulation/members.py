"""How the simulated members (and the office) behave, day by day, through the same service
functions the portal calls: acknowledge, report outcomes, ask for more time, return misrouted
referrals, submit plans, monthly reports and summary packages — most on time, some late, a few
never, so the demo shows reminders, escalations and supervision listings happening."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from agencies.answers import (
    StoredFile,
    TypicalCaseInput,
    acknowledge_referral,
    report_outcome,
    request_extension,
    return_referral,
    submit_monthly_report,
    submit_summary_package,
)
from agencies.errors import NotFound, Refused
from agencies.office import decide_extension, reassign_referral, route_held_lead
from portal.uploads import store_upload
from wangjian.bootstrap import App
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Extension, Lead, Obligation, Referral
from wangjian.simulation import documents

OUTCOMES = ["info_removed", "ordered_to_correct", "no_violation", "case_filed", "transferred_out"]
OUTCOME_WEIGHTS = [0.50, 0.33, 0.09, 0.06, 0.02]  # about Shanghai's H1 2020 proportions


@dataclass(frozen=True)
class Behaviour:
    """A member's habits, in working days after receipt (or after the due day, for reports)."""

    ack: tuple[int, int] = (0, 2)
    outcome: tuple[int, int] = (4, 13)
    late_share: float = 0.05  # outcomes that come after the due day
    silent_share: float = 0.0  # referrals never answered at all
    extension_share: float = 0.03
    report_delay: tuple[int, int] = (-3, 0)  # monthly reports and plans, vs the due day
    package: str = "complete"  # complete | missing_decision | late | incomplete | never


BEHAVIOURS: dict[str, Behaviour] = {
    "samr": Behaviour(ack=(0, 1), outcome=(3, 12), late_share=0.06, extension_share=0.04),
    "police": Behaviour(ack=(0, 1), outcome=(1, 3), late_share=0.05),
    "customs": Behaviour(
        ack=(1, 4), outcome=(8, 16), late_share=0.2, report_delay=(0, 4), package="missing_decision"
    ),
    "post": Behaviour(ack=(0, 2), outcome=(5, 12)),
    "forestry": Behaviour(
        ack=(2, 6),
        outcome=(12, 20),
        late_share=0.5,
        silent_share=0.35,
        report_delay=(3, 12),
        package="never",
    ),
    "tax": Behaviour(
        ack=(1, 5), outcome=(10, 18), late_share=0.3, report_delay=(1, 6), package="late"
    ),
    "commerce": Behaviour(package="incomplete"),
    "propaganda": Behaviour(report_delay=(2, 9)),
}
REGULATOR = Behaviour(ack=(1, 7), outcome=(8, 25), late_share=0.3, silent_share=0.15)


@dataclass(frozen=True)
class ReferralPlan:
    """One referral's fate: never answered, returned, or acknowledged and decided on given days."""

    silent: bool
    misrouted: bool
    ack_on: date
    outcome_on: date | None
    ask_more_time_on: date | None
    outcome: str


@dataclass
class DayActions:
    """What the simulated parties did on one day (for the demo's narration)."""

    acknowledged: int = 0
    outcomes: int = 0
    extensions_requested: int = 0
    extensions_decided: int = 0
    returned: int = 0
    reassigned: int = 0
    routed_by_office: int = 0
    reports: int = 0
    packages: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "skipped"}


class SimulatedCampaign:
    """Members' and the office's behaviour, deterministic for a seed."""

    def __init__(self, app: App, *, seed: int = 2021) -> None:
        self.app = app
        self.seed = seed
        self._plans: dict[int, ReferralPlan] = {}

    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *keys])

    def behaviour(self, agency: str) -> Behaviour:
        return REGULATOR if agency.startswith("reg-") else BEHAVIOURS.get(agency, Behaviour())

    def _workday(self, start: date, days: int) -> date:
        return self.app.calendar.shift_working_days(start, days)

    # --- one day ---------------------------------------------------------------------------

    def act(self, day: date) -> DayActions:
        """Everything the members and the office do during one working afternoon."""
        actions = DayActions()
        if not self.app.calendar.is_workday(day):
            return actions
        at = datetime.combine(day, time(15, 0), tzinfo=self.app.tz)
        self._answer_referrals(day, at, actions)
        self._office_decisions(day, at, actions)
        self._submit_reports(day, at, actions)
        return actions

    def _answer_referrals(self, day: date, at: datetime, actions: DayActions) -> None:
        with transaction(self.app.sessions) as session:
            referrals = session.execute(
                select(
                    Referral.id,
                    Referral.agency_code,
                    Referral.kind,
                    Referral.status,
                    Referral.received_at,
                    Referral.due_on,
                    Referral.extension_days,
                ).where(Referral.status.in_(("open", "acknowledged")))
            ).all()
            for row in referrals:
                self._answer_one(session, row, day, at, actions)

    def _plan(self, row: Any) -> ReferralPlan:
        """How and when this agency answers this referral: decided once, on first sight."""
        plan = self._plans.get(row.id)
        if plan is not None:
            return plan
        habit = self.behaviour(row.agency_code)
        rng = self._rng(row.id)
        received = row.received_at.astimezone(self.app.tz).date()
        silent = rng.random() < habit.silent_share  # never answered: the ladder climbs to the top
        misrouted = row.kind == "referral" and rng.random() < 0.01
        ack_on = self._workday(received, int(rng.integers(habit.ack[0], habit.ack[1] + 1)))
        late = rng.random() < habit.late_share
        span = (habit.outcome[1] + 3, habit.outcome[1] + 12) if late else habit.outcome
        outcome_on = self._workday(received, int(rng.integers(span[0], span[1] + 1)))
        wants_more_time = late and rng.random() < habit.extension_share * 10
        # Another region's regulator reports back on only some of what it receives.
        reports_outcome = not row.agency_code.startswith("reg-") or rng.random() < 0.6
        code = str(rng.choice(OUTCOMES, p=OUTCOME_WEIGHTS))
        if row.agency_code == "police":
            code = "case_filed" if rng.random() < 0.4 else "no_violation"
        plan = ReferralPlan(
            silent=silent,
            misrouted=misrouted,
            ack_on=ack_on,
            outcome_on=outcome_on if reports_outcome else None,
            ask_more_time_on=self._workday(received, max(habit.outcome[0], 10))
            if wants_more_time
            else None,
            outcome=code,
        )
        self._plans[row.id] = plan
        return plan

    def _answer_one(
        self, session: Any, row: Any, day: date, at: datetime, actions: DayActions
    ) -> None:
        plan = self._plan(row)
        if plan.silent:
            return
        common = {
            "session": session,
            "app": self.app,
            "referral_id": row.id,
            "agency_code": row.agency_code,
            "actor": f"{row.agency_code}.contact",
            "at": at,
        }
        try:
            if row.status == "open" and day >= plan.ack_on:
                if plan.misrouted:
                    return_referral(
                        **common, reason="经核查不属于本单位职责范围,请联席会议办公室重新指派"
                    )
                    actions.returned += 1
                else:
                    acknowledge_referral(**common, origin="simulated portal")
                    actions.acknowledged += 1
                return
            if row.status != "acknowledged":
                return
            if row.extension_days == 0 and day == plan.ask_more_time_on:
                request_extension(
                    **common, days=15, reason="案情复杂,需调取平台交易数据,申请延长核查期限"
                )
                actions.extensions_requested += 1
            if plan.outcome_on is not None and day >= plan.outcome_on:
                code = plan.outcome
                case_number = (
                    f"{day.year}-{row.agency_code}-{row.id:05d}" if code == "case_filed" else None
                )
                report_outcome(
                    **common,
                    outcome=code,
                    case_number=case_number,
                    decided_on=day,
                    note="模拟办理结果",
                    origin="simulated portal",
                )
                actions.outcomes += 1
        except (Refused, NotFound) as refusal:
            actions.skipped.append(str(refusal))

    def _office_decisions(self, day: date, at: datetime, actions: DayActions) -> None:
        """The office: decides extension requests, reassigns returned referrals, routes held leads."""
        with transaction(self.app.sessions) as session:
            for extension in session.scalars(
                select(Extension).where(Extension.status == "requested")
            ):
                approve = self._rng(extension.id, 7).random() < 0.85
                decide_extension(
                    session=session,
                    app=self.app,
                    extension_id=extension.id,
                    approve=approve,
                    actor="office",
                    at=at,
                    note="同意延期" if approve else "理由不充分,请按期办结",
                )
                actions.extensions_decided += 1
            for referral in session.scalars(select(Referral).where(Referral.status == "returned")):
                reassign_referral(
                    session=session,
                    app=self.app,
                    referral_id=referral.id,
                    agency_code="samr" if referral.agency_code != "samr" else "commerce",
                    actor="office",
                    at=at,
                    reason="按职责重新指派",
                )
                actions.reassigned += 1
            held = session.scalars(
                select(Lead).where(Lead.status == "held").order_by(Lead.id)
            ).all()
            for lead in held:
                rng = self._rng(lead.id, 11)
                if lead.region_code not in self.app.config.campaign.jurisdiction.region_codes:
                    continue  # a region with no regulator on file: left for the office to decide
                if rng.random() < 0.7:
                    route_held_lead(
                        session=session,
                        app=self.app,
                        lead_id=lead.id,
                        category=lead.category or "consumer_rights",
                        actor="office",
                        at=at,
                        origin="simulated office",
                    )
                    actions.routed_by_office += 1

    # --- members' reports ------------------------------------------------------------------

    def _submit_reports(self, day: date, at: datetime, actions: DayActions) -> None:
        with transaction(self.app.sessions) as session:
            for obligation in session.scalars(
                select(Obligation).where(Obligation.status.in_(("open", "incomplete")))
            ):
                habit = self.behaviour(obligation.agency_code)
                rng = self._rng(obligation.id, 3)
                if obligation.kind in ("implementation_plan", "monthly_report"):
                    delay = int(rng.integers(habit.report_delay[0], habit.report_delay[1] + 1))
                    if day == self._workday(obligation.due_on, delay) or (
                        day > self._workday(obligation.due_on, delay)
                        and obligation.status == "open"
                        and delay <= 0
                    ):
                        self._report(session, obligation, at)
                        actions.reports += 1
                else:
                    if self._package(session, obligation, habit, day, at):
                        actions.packages += 1

    def _file(self, role: str, name: str, content: bytes, at: datetime) -> StoredFile:
        stored = store_upload(
            settings=self.app.settings.portal,
            filename=name,
            stream=io.BytesIO(content),
            role=role,
            at=at,
        )
        assert stored is not None
        return stored

    def _report(self, session: Any, obligation: Obligation, at: datetime) -> None:
        name = self.app.config.agencies[obligation.agency_code].name_zh
        text = (
            f"{name}{obligation.title}:本期围绕网剑行动重点任务开展网络市场监测,"
            "处置移送线索,督促平台清理违法信息,典型做法见附件。"
        )
        attachment = self._file(
            "attachment",
            f"{obligation.code}-{obligation.agency_code}.pdf",
            documents.pdf(f"{obligation.kind} {obligation.code}"),
            at,
        )
        submit_monthly_report(
            session=session,
            app=self.app,
            obligation_id=obligation.id,
            agency_code=obligation.agency_code,
            text=text,
            attachments=[attachment],
            actor=f"{obligation.agency_code}.contact",
            at=at,
            origin="simulated portal",
        )

    def _package(
        self, session: Any, obligation: Obligation, habit: Behaviour, day: date, at: datetime
    ) -> bool:
        """Summary packages and interim deliverables, each member in its own way."""
        style = (
            habit.package
            if obligation.kind == "summary_package"
            else ("never" if habit.package == "never" else "complete")
        )
        if style == "never":
            return False
        offset = {"late": 3, "missing_decision": -4, "incomplete": -2}.get(style, -2)
        first = self._workday(obligation.due_on, offset)
        fixing = style == "missing_decision" and obligation.status == "incomplete"
        if day != first and not (fixing and day == self._workday(first, 2)):
            return False
        minimum = int((obligation.requirements or {}).get("min_typical_cases", 1) or 1)
        name = self.app.config.agencies[obligation.agency_code].name_zh
        cases = []
        for i in range(minimum):
            decision = None
            if not (style == "missing_decision" and not fixing and i == 0):
                decision = self._file(
                    "penalty_decision",
                    f"行政处罚决定书-{i + 1}.pdf",
                    documents.pdf(f"penalty decision {i + 1}"),
                    at,
                )
            cases.append(
                TypicalCaseInput(
                    title=f"{name}查处网络违法典型案例{i + 1}",
                    case_number=f"{day.year}-{obligation.agency_code}-{i + 1:03d}",
                    penalty_decision=decision,
                )
            )
        summary = self._file(
            "summary_report", "专项行动总结报告.docx", documents.docx(f"{name}网剑行动总结报告"), at
        )
        statistics = (
            None
            if style == "incomplete"
            else self._file(
                "statistics_table",
                "情况统计表.xlsx",
                documents.statistics_xlsx(name, [("检查网站(个)", 120), ("责令整改(家)", 15)]),
                at,
            )
        )
        joint = [self._file("joint_enforcement", "联合执法材料.pdf", documents.pdf("joint"), at)]
        submit_summary_package(
            session=session,
            app=self.app,
            obligation_id=obligation.id,
            agency_code=obligation.agency_code,
            summary_report=summary,
            statistics_table=statistics,
            typical_cases=cases,
            joint_enforcement=joint,
            actor=f"{obligation.agency_code}.contact",
            at=at,
            origin="simulated portal",
        )
        return True

    def first_day(self) -> date:
        return self.app.config.campaign.phases.mobilisation.start

    def last_day(self) -> date:
        phases = self.app.config.campaign.phases
        return max(
            phases.summary.end, self.app.config.deadlines.summary_package.due + timedelta(days=3)
        )
