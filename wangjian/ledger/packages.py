"""Is each member's summary package complete? (summary report, statistics table, ≥ N typical
cases each with its penalty decision, joint-enforcement material — as the campaign requires)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from wangjian.campaign import CampaignConfig
from wangjian.ledger.models import Obligation, Submission, TypicalCase

PART_ZH = {
    "summary_report": "总结报告",
    "statistics_table": "情况统计表",
    "typical_cases": "典型案例",
    "joint_enforcement": "联合执法材料",
}


@dataclass
class PackageCheck:
    agency_code: str
    obligation_id: int | None
    submitted: bool
    valid_cases: int = 0
    cases_without_decision: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.submitted and not self.missing

    def describe(self) -> str:
        """What is missing, in words, for the chase notice and the office's board."""
        if self.complete:
            return "齐全"
        if not self.submitted:
            return "未报送"
        return ";".join(self.missing)


def check_packages(
    session: Session, config: CampaignConfig, *, as_of: datetime
) -> list[PackageCheck]:
    """One check per member: what its latest package submission (up to `as_of`) lacks."""
    rule = config.deadlines.summary_package
    obligations = {
        o.agency_code: o
        for o in session.scalars(select(Obligation).where(Obligation.kind == "summary_package"))
    }
    checks = []
    for agency in config.agencies_file.agencies:
        obligation = obligations.get(agency.code)
        submission = None
        if obligation is not None:
            submission = session.scalar(
                select(Submission)
                .where(Submission.obligation_id == obligation.id, Submission.submitted_at <= as_of)
                .order_by(Submission.submitted_at.desc(), Submission.id.desc())
                .limit(1)
            )
        check = PackageCheck(
            agency_code=agency.code,
            obligation_id=obligation.id if obligation else None,
            submitted=submission is not None,
        )
        if submission is None:
            check.missing = [PART_ZH[p] for p in rule.requires]
            checks.append(check)
            continue
        roles = {str(f.get("role")) for f in submission.files or [] if isinstance(f, dict)}
        for part in rule.requires:
            if (
                part in ("summary_report", "statistics_table", "joint_enforcement")
                and part not in roles
            ):
                if part == "summary_report" and (submission.text or "").strip():
                    continue  # a report typed into the portal counts as the summary report
                check.missing.append(f"缺{PART_ZH[part]}")
        cases = session.scalars(
            select(TypicalCase).where(TypicalCase.submission_id == submission.id)
        ).all()
        with_decision = [c for c in cases if c.penalty_decision_file]
        check.valid_cases = len(with_decision) if rule.penalty_decision_required else len(cases)
        check.cases_without_decision = len(cases) - len(with_decision)
        if "typical_cases" in rule.requires and check.valid_cases < rule.min_typical_cases:
            shortfall = f"典型案例不足{rule.min_typical_cases}件(有效{check.valid_cases}件"
            if check.cases_without_decision and rule.penalty_decision_required:
                shortfall += f",另有{check.cases_without_decision}件未附行政处罚决定书不计入"
            check.missing.append(shortfall + ")")
        checks.append(check)
    return checks
