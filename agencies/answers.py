"""The agencies' answers: acknowledge, report an outcome, return, ask for more time, submit reports.

Shared by the portal and `wangjian feedback import`. Each function checks that the item belongs
to the answering agency (`agency_code`; `None` when the office enters an answer on an agency's
behalf), checks the state transition, writes the change, its event (who, when, from where) and
moves or stops the matching clock, all in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agencies.errors import NotFound, Refused
from agencies.timing import extendable_by, outcome_due, outcome_ladder
from wangjian.bootstrap import App
from wangjian.ledger.clocks import cancel_clock, meet_clock, open_clock
from wangjian.ledger.events import record_event
from wangjian.ledger.models import Extension, Lead, Obligation, Referral, Submission, TypicalCase
from wangjian.ledger.obligations import close_obligation

# Outcome codes (CONTRACT.md) with the terms agencies use.
OUTCOMES: dict[str, tuple[str, str]] = {
    "case_filed": ("立案", "case filed"),
    "ordered_to_correct": ("责令改正", "ordered to correct"),
    "transferred_to_police": ("移送公安", "transferred to the police"),
    "transferred_out": ("移送外地", "transferred to another region"),
    "info_removed": ("督促平台清理信息", "listing/information removed"),
    "no_violation": ("不予立案", "no violation found, no case filed"),
}
ANSWERABLE = ("open", "acknowledged")
MAX_TEXT = 4000
REPORT_KINDS = ("monthly_report", "implementation_plan")
PACKAGE_KINDS = ("summary_package", "deliverable")


# --- referrals ---------------------------------------------------------------------------------


def acknowledge_referral(
    *,
    session: Session,
    app: App,
    referral_id: int,
    agency_code: str | None,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Referral:
    """签收: stop the acknowledgement clock and start the outcome clock."""
    referral = _referral(session, referral_id, agency_code)
    if referral.status != "open":
        raise _state_refusal(referral, "签收", "acknowledge")
    referral.status, referral.acknowledged_at = "acknowledged", at
    lead = session.get(Lead, referral.lead_id)
    due = outcome_due(app, referral, listed_operator=_listed(lead))
    open_clock(
        session,
        app,
        subject_type="referral",
        subject_id=referral.id,
        kind="referral_outcome",
        party=referral.agency_code,
        ladder=outcome_ladder(referral),
        due=due,
    )
    record_event(
        session,
        actor=actor,
        action="referral.acknowledged",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        origin=origin,
        data={"from": "open", "to": "acknowledged", "outcome_due_on": due.due_on.isoformat()},
    )
    return referral


def report_outcome(
    *,
    session: Session,
    app: App,
    referral_id: int,
    agency_code: str | None,
    outcome: str,
    case_number: str | None = None,
    decided_on: date | None = None,
    note: str | None = None,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Referral:
    """报送办理结果: record the outcome, close the referral and stop its clock."""
    outcome = (outcome or "").strip()
    if outcome not in OUTCOMES:
        raise Refused(
            f"办理结果代码“{outcome}”无效,应为:{'、'.join(OUTCOMES)}",
            f"unknown outcome code {outcome!r}; expected one of {', '.join(OUTCOMES)}",
            column="outcome",
        )
    case_number = _clean(case_number, 100, "case_number", "案件编号", "case number")
    if outcome == "case_filed" and not case_number:
        raise Refused(
            "结果为立案时须填写立案编号(案件编号)",
            "a case number is required when the outcome is case_filed",
            column="case_number",
        )
    note = _clean(note, MAX_TEXT, "note", "说明", "note")
    today = at.astimezone(app.tz).date()
    decided_on = decided_on or today
    if decided_on > today:
        raise Refused(
            f"决定日期{decided_on.isoformat()}晚于今天({today.isoformat()})",
            f"decision date {decided_on.isoformat()} is in the future (today is {today.isoformat()})",
            column="decided_on",
        )
    referral = _referral(session, referral_id, agency_code)
    if referral.status not in ANSWERABLE:
        raise _state_refusal(referral, "报送办理结果", "report an outcome")
    previous = referral.status
    # An outcome is also proof of receipt: an agency may answer without a separate 签收.
    referral.acknowledged_at = referral.acknowledged_at or at
    referral.status, referral.outcome = "closed", outcome
    referral.case_number = case_number
    referral.decided_on, referral.outcome_note = decided_on, note
    referral.outcome_at = referral.closed_at = at
    met = meet_clock(session, subject_type="referral", subject_id=referral.id, at=at)
    record_event(
        session,
        actor=actor,
        action="referral.outcome_reported",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        origin=origin,
        data={
            "from": previous,
            "to": "closed",
            "outcome": outcome,
            "case_number": case_number,
            "decided_on": decided_on.isoformat(),
            "note": note,
            "on_time": today <= referral.due_on,
            "clock_met": met,
        },
    )
    return referral


def return_referral(
    *,
    session: Session,
    app: App,
    referral_id: int,
    agency_code: str | None,
    reason: str,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Referral:
    """退回: a misrouted referral goes back to the office's reassignment queue, its clock cancelled."""
    reason = _clean(reason, MAX_TEXT, "note", "退回理由", "reason") or ""
    if not reason:
        raise Refused("退回须说明理由", "a return needs a reason", column="note")
    referral = _referral(session, referral_id, agency_code)
    if referral.status not in ANSWERABLE:
        raise _state_refusal(referral, "退回", "return")
    previous = referral.status
    referral.status, referral.returned_reason = "returned", reason
    cancel_clock(session, subject_type="referral", subject_id=referral.id, at=at)
    record_event(
        session,
        actor=actor,
        action="referral.returned",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        origin=origin,
        data={"from": previous, "to": "returned", "reason": reason},
    )
    return referral


def request_extension(
    *,
    session: Session,
    app: App,
    referral_id: int,
    agency_code: str | None,
    days: int,
    reason: str,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Extension:
    """申请延期: ask the office for more time (within the limit the frozen policy allows)."""
    reason = _clean(reason, MAX_TEXT, "note", "延期理由", "reason") or ""
    if not reason:
        raise Refused("申请延期须说明理由", "an extension request needs a reason", column="note")
    referral = _referral(session, referral_id, agency_code)
    if referral.status not in ANSWERABLE:
        raise _state_refusal(referral, "申请延期", "ask for an extension")
    lead = session.get(Lead, referral.lead_id)
    allowed = extendable_by(app, referral, listed_operator=_listed(lead)) - referral.extension_days
    if allowed <= 0:
        raise Refused(
            "该移送的办理期限已不能再延长",
            "this referral's time limit cannot be extended any further",
            column="days",
        )
    if not 1 <= days <= allowed:
        raise Refused(
            f"延期天数应为1至{allowed}",
            f"the extension must be between 1 and {allowed} days",
            column="days",
        )
    pending = session.scalar(
        select(Extension.id).where(
            Extension.referral_id == referral.id, Extension.status == "requested"
        )
    )
    if pending is not None:
        raise Refused(
            "已有一项延期申请待办公室审批",
            "an extension request is already waiting for the office's decision",
        )
    extension = Extension(
        referral_id=referral.id,
        agency_code=referral.agency_code,
        days=days,
        reason=reason,
        requested_at=at,
        requested_by=actor,
        status="requested",
    )
    session.add(extension)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="extension.requested",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        origin=origin,
        data={"extension_id": extension.id, "days": days, "reason": reason},
    )
    return extension


# --- members' reports --------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file kept under the upload folder (path relative to it, generated name)."""

    role: (
        str  # attachment | summary_report | statistics_table | penalty_decision | joint_enforcement
    )
    name: str  # the uploader's own file name, for display only
    path: str
    size: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TypicalCaseInput:
    title: str
    case_number: str | None = None
    referral_id: int | None = None
    penalty_decision: StoredFile | None = None


@dataclass(frozen=True)
class PackageRules:
    requires: tuple[str, ...]
    min_typical_cases: int
    penalty_decision_required: bool


def submit_monthly_report(
    *,
    session: Session,
    app: App,
    obligation_id: int,
    agency_code: str | None,
    text: str | None,
    attachments: Sequence[StoredFile] = (),
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Submission:
    """报送月度工作进展 (the implementation plan too): text and attachments; meets the obligation."""
    obligation = _obligation(session, obligation_id, agency_code, REPORT_KINDS)
    text = _clean(text, 20000, "text", "报送内容", "report text")
    if not text and not attachments:
        raise Refused(
            "请填写报送内容或上传附件", "write the report or attach a file", column="text"
        )
    submission = Submission(
        obligation_id=obligation.id,
        agency_code=obligation.agency_code,
        submitted_at=at,
        actor=actor,
        text=text,
        files=[f.as_json() for f in attachments],
        complete=True,
        problems=[],
    )
    session.add(submission)
    session.flush()
    close_obligation(session=session, obligation=obligation, at=at)
    _record_submission_event(session, app, obligation, submission, actor, at, origin)
    return submission


def submit_summary_package(
    *,
    session: Session,
    app: App,
    obligation_id: int,
    agency_code: str | None,
    summary_report: StoredFile | None,
    statistics_table: StoredFile | None,
    typical_cases: Sequence[TypicalCaseInput],
    joint_enforcement: Sequence[StoredFile] = (),
    text: str | None = None,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Submission:
    """报送总结材料 (or an interim deliverable): report, statistics XLSX, typical cases with decisions.

    A package missing a required part is kept, marked incomplete with its problems, and the
    obligation stays open on the clock until a complete one arrives.
    """
    obligation = _obligation(session, obligation_id, agency_code, PACKAGE_KINDS)
    text = _clean(text, 20000, "text", "说明", "note")
    rules = package_rules(app, obligation)
    cases = [_checked_case(session, c, obligation.agency_code) for c in typical_cases]
    problems = package_problems(
        rules,
        summary_report=summary_report,
        summary_text=text,
        statistics_table=statistics_table,
        typical_cases=cases,
        joint_enforcement=joint_enforcement,
    )
    files = [f for f in (summary_report, statistics_table) if f is not None]
    files += list(joint_enforcement)
    files += [c.penalty_decision for c in cases if c.penalty_decision is not None]
    submission = Submission(
        obligation_id=obligation.id,
        agency_code=obligation.agency_code,
        submitted_at=at,
        actor=actor,
        text=text,
        files=[f.as_json() for f in files],
        complete=not problems,
        problems=problems,
    )
    session.add(submission)
    session.flush()
    session.add_all(
        TypicalCase(
            submission_id=submission.id,
            agency_code=obligation.agency_code,
            title=c.title,
            case_number=c.case_number,
            referral_id=c.referral_id,
            penalty_decision_file=c.penalty_decision.path if c.penalty_decision else None,
        )
        for c in cases
    )
    if problems:
        obligation.status = "incomplete"
    else:
        close_obligation(session=session, obligation=obligation, at=at)
    _record_submission_event(session, app, obligation, submission, actor, at, origin)
    return submission


def package_rules(app: App, obligation: Obligation) -> PackageRules:
    """What a package must hold: from the obligation's own requirements, else from the config."""
    req = dict(obligation.requirements or {})
    deadlines = app.config.deadlines
    if obligation.kind == "summary_package":
        spec = deadlines.summary_package
        default = PackageRules(
            tuple(spec.requires), spec.min_typical_cases, spec.penalty_decision_required
        )
    else:
        match = next((d for d in deadlines.deliverables if d.code == obligation.code), None)
        default = PackageRules(
            ("typical_cases",),
            match.min_typical_cases if match else 0,
            match.penalty_decision_required if match else True,
        )
    return PackageRules(
        requires=tuple(req.get("requires", default.requires)),
        min_typical_cases=int(req.get("min_typical_cases", default.min_typical_cases)),
        penalty_decision_required=bool(
            req.get("penalty_decision_required", default.penalty_decision_required)
        ),
    )


def package_problems(
    rules: PackageRules,
    *,
    summary_report: StoredFile | None,
    statistics_table: StoredFile | None,
    typical_cases: Sequence[TypicalCaseInput],
    joint_enforcement: Sequence[StoredFile],
    summary_text: str | None = None,
) -> list[dict[str, str]]:
    """What keeps a package from counting as complete, each in Chinese and English.

    The same rules as `wangjian.ledger.packages.check_packages` (the report's view): a report
    typed into the portal counts as the summary report.
    """
    problems: list[dict[str, str]] = []
    if "summary_report" in rules.requires and summary_report is None and not summary_text:
        problems.append({"zh": "缺少总结报告", "en": "the summary report is missing"})
    if "statistics_table" in rules.requires and statistics_table is None:
        problems.append(
            {"zh": "缺少情况统计表(XLSX)", "en": "the statistics table (XLSX) is missing"}
        )
    if "joint_enforcement" in rules.requires and not joint_enforcement:
        problems.append(
            {"zh": "缺少联合执法材料", "en": "the joint-enforcement material is missing"}
        )
    if rules.penalty_decision_required:
        for case in typical_cases:
            if case.penalty_decision is None:
                problems.append(
                    {
                        "zh": f"典型案例“{case.title}”未附行政处罚决定书,不计入",
                        "en": f"typical case '{case.title}' has no penalty decision attached "
                        "and does not count",
                    }
                )
        counted = sum(1 for c in typical_cases if c.penalty_decision is not None)
    else:
        counted = len(typical_cases)
    needed = rules.min_typical_cases if "typical_cases" in rules.requires else 0
    if counted < needed:
        problems.append(
            {
                "zh": f"有效典型案例{counted}个,少于要求的{needed}个",
                "en": f"{counted} typical case(s) count, fewer than the {needed} required",
            }
        )
    return problems


# --- helpers -----------------------------------------------------------------------------------


def _referral(session: Session, referral_id: int, agency_code: str | None) -> Referral:
    # Row lock on PostgreSQL so two answers to one referral cannot both pass the state check
    # (SQLite serialises writers with BEGIN IMMEDIATE already).
    referral = session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
    if referral is None or (agency_code is not None and referral.agency_code != agency_code):
        raise NotFound(f"未找到移送编号{referral_id}", f"no referral {referral_id}")
    return referral


def _obligation(
    session: Session, obligation_id: int, agency_code: str | None, kinds: tuple[str, ...]
) -> Obligation:
    obligation = session.scalar(
        select(Obligation).where(Obligation.id == obligation_id).with_for_update()
    )
    if obligation is None or (agency_code is not None and obligation.agency_code != agency_code):
        raise NotFound(f"未找到报送事项{obligation_id}", f"no report item {obligation_id}")
    if obligation.kind not in kinds:
        raise Refused(
            f"“{obligation.title}”不能以此方式报送",
            f"'{obligation.title}' cannot be submitted this way",
        )
    if obligation.status == "submitted":
        raise Refused(
            f"“{obligation.title}”已报送;如需更正,请联系联席会议办公室",
            f"'{obligation.title}' has been submitted already; ask the office to correct it",
        )
    return obligation


def _checked_case(session: Session, case: TypicalCaseInput, agency_code: str) -> TypicalCaseInput:
    title = _clean(case.title, 300, "title", "案例名称", "case title")
    if not title:
        raise Refused("典型案例须填写案例名称", "a typical case needs a title", column="title")
    if case.referral_id is not None:
        owner = session.scalar(select(Referral.agency_code).where(Referral.id == case.referral_id))
        if owner != agency_code:
            raise Refused(
                f"典型案例“{title}”关联的移送编号{case.referral_id}不属于本单位",
                f"typical case '{title}': referral {case.referral_id} is not one of yours",
                column="case_referral",
            )
    number = _clean(case.case_number, 100, "case_number", "案件编号", "case number")
    return TypicalCaseInput(title, number, case.referral_id, case.penalty_decision)


def _record_submission_event(
    session: Session,
    app: App,
    obligation: Obligation,
    submission: Submission,
    actor: str,
    at: datetime,
    origin: str | None,
) -> None:
    record_event(
        session,
        actor=actor,
        action="obligation.submitted" if submission.complete else "obligation.incomplete",
        subject_type="obligation",
        subject_id=obligation.id,
        at=at,
        origin=origin,
        data={
            "submission_id": submission.id,
            "files": len(submission.files),
            "complete": submission.complete,
            "problems": [p["en"] for p in submission.problems],
            "on_time": at.astimezone(app.tz).date() <= obligation.due_on,
        },
    )


def _state_refusal(referral: Referral, verb_zh: str, verb_en: str) -> Refused:
    status_zh = STATUS_ZH.get(referral.status, referral.status)
    return Refused(
        f"移送{referral.id}当前状态为“{status_zh}”,不能{verb_zh}",
        f"referral {referral.id} is {referral.status}: cannot {verb_en}",
    )


def _clean(value: str | None, limit: int, column: str, zh: str, en: str) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise Refused(
            f"{zh}过长(不超过{limit}字)",
            f"{en} is too long (at most {limit} characters)",
            column=column,
        )
    return text or None


def _listed(lead: Lead | None) -> bool:
    return lead is not None and lead.listed_operator_id is not None


STATUS_ZH = {
    "open": "待签收",
    "acknowledged": "已签收、办理中",
    "closed": "已办结",
    "returned": "已退回",
    "reassigned": "已改派",
}
