"""What the portal shows: an agency's referrals and reports, and the office's overviews.

Every agency-facing read takes the agency's code and filters on it in SQL, so a page can never
list or open another agency's item; `None` (the office) sees everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from agencies.errors import NotFound
from agencies.timing import ack_due, outcome_due, policy_of
from wangjian.bootstrap import App
from wangjian.domain.deadlines import DueDate
from wangjian.ledger.events import history
from wangjian.ledger.models import (
    Deadline,
    Event,
    Extension,
    Lead,
    Obligation,
    Party,
    Referral,
    Submission,
    TypicalCase,
)

REFERRAL_STATUSES = ("open", "acknowledged", "closed", "returned", "reassigned")


@dataclass(frozen=True)
class ReferralRow:
    id: int
    lead_id: int
    agency_code: str
    kind: str
    category: str | None
    status: str
    received_at: datetime
    ack_due_on: date
    due_on: date
    current_due_on: date | None  # the live clock's due day (acknowledgement, then outcome)
    overdue: bool
    summary: str | None
    platform: str | None
    shop_name: str | None
    outcome: str | None


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_referrals(
    session: Session,
    *,
    agency_code: str | None,
    today: date,
    status: str | None = None,
    due_from: date | None = None,
    due_to: date | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """An agency's referrals (all, for the office): overdue first, then by the nearest due day."""
    clock_due = Deadline.due_on
    live = and_(Deadline.status == "open", clock_due < today)
    overdue = case((live, 1), else_=0)
    current = func.coalesce(
        case((Deadline.status == "open", clock_due), else_=None), Referral.due_on
    )
    query = (
        select(
            Referral,
            Lead.summary,
            Lead.platform,
            Lead.shop_name,
            case((Deadline.status == "open", clock_due), else_=None).label("current_due_on"),
            overdue.label("overdue"),
        )
        .join(Lead, Lead.id == Referral.lead_id)
        .outerjoin(
            Deadline,
            and_(Deadline.subject_type == "referral", Deadline.subject_id == Referral.id),
        )
    )
    if agency_code is not None:
        query = query.where(Referral.agency_code == agency_code)
    if status == "overdue":
        query = query.where(live)
    elif status in REFERRAL_STATUSES:
        query = query.where(Referral.status == status)
    if due_from is not None:
        query = query.where(current >= due_from)
    if due_to is not None:
        query = query.where(current <= due_to)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = max(1, page)
    rows = session.execute(
        query.order_by(overdue.desc(), current.asc(), Referral.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Page(
        rows=[
            ReferralRow(
                id=r.id,
                lead_id=r.lead_id,
                agency_code=r.agency_code,
                kind=r.kind,
                category=r.category,
                status=r.status,
                received_at=r.received_at,
                ack_due_on=r.ack_due_on,
                due_on=r.due_on,
                current_due_on=current_due_on,
                overdue=bool(is_overdue),
                summary=summary,
                platform=platform,
                shop_name=shop_name,
                outcome=r.outcome,
            )
            for r, summary, platform, shop_name, current_due_on, is_overdue in rows
        ],
        total=total,
        page=page,
        per_page=per_page,
    )


@dataclass
class ReferralDetail:
    referral: Referral
    lead: Lead
    agency: Party
    attached: list[Lead]
    ack: DueDate
    outcome: DueDate
    ack_basis: str
    outcome_basis: str
    extendable_days: int
    clock: Deadline | None
    events: list[Event]
    extensions: list[Extension]
    replaced_by: Referral | None = None

    @property
    def answerable(self) -> bool:
        return self.referral.status in ("open", "acknowledged")

    @property
    def pending_extension(self) -> Extension | None:
        return next((e for e in self.extensions if e.status == "requested"), None)


def referral_detail(
    session: Session, app: App, *, referral_id: int, agency_code: str | None
) -> ReferralDetail:
    """One referral with its lead, evidence, due dates and how they were computed, and history."""
    referral = session.get(Referral, referral_id)
    if referral is None or (agency_code is not None and referral.agency_code != agency_code):
        raise NotFound(f"未找到移送编号{referral_id}", f"no referral {referral_id}")
    lead = session.get(Lead, referral.lead_id)
    agency = session.get(Party, referral.agency_code)
    assert lead is not None and agency is not None  # foreign keys
    listed = lead.listed_operator_id is not None
    policy = policy_of(app, referral)
    limit = (
        policy.listed_operator_outcome
        if listed and policy.listed_operator_outcome
        else policy.outcome
    )
    extensions = list(
        session.scalars(
            select(Extension).where(Extension.referral_id == referral.id).order_by(Extension.id)
        )
    )
    return ReferralDetail(
        referral=referral,
        lead=lead,
        agency=agency,
        attached=list(
            session.scalars(select(Lead).where(Lead.attached_to == referral.id).order_by(Lead.id))
        ),
        ack=ack_due(app, referral),
        outcome=outcome_due(app, referral, listed_operator=listed),
        ack_basis=policy.acknowledge.basis,
        outcome_basis=limit.basis,
        extendable_days=max(limit.extendable_by - referral.extension_days, 0),
        clock=session.scalar(
            select(Deadline).where(
                Deadline.subject_type == "referral", Deadline.subject_id == referral.id
            )
        ),
        events=history(session, subject_type="referral", subject_id=referral.id),
        extensions=extensions,
        replaced_by=session.get(Referral, referral.replaced_by) if referral.replaced_by else None,
    )


@dataclass(frozen=True)
class ObligationRow:
    obligation: Obligation
    clock: Deadline | None
    overdue: bool
    submissions: list[Submission]

    @property
    def latest(self) -> Submission | None:
        return self.submissions[-1] if self.submissions else None


def list_obligations(session: Session, *, agency_code: str, today: date) -> list[ObligationRow]:
    """What an agency owes the office (plan, monthly reports, deliverables, package), by due day."""
    obligations = session.scalars(
        select(Obligation)
        .where(Obligation.agency_code == agency_code)
        .order_by(Obligation.due_on, Obligation.id)
    ).all()
    return [_obligation_row(session, o, today) for o in obligations]


def obligation_detail(
    session: Session, *, obligation_id: int, agency_code: str | None, today: date
) -> ObligationRow:
    obligation = session.get(Obligation, obligation_id)
    if obligation is None or (agency_code is not None and obligation.agency_code != agency_code):
        raise NotFound(f"未找到报送事项{obligation_id}", f"no report item {obligation_id}")
    return _obligation_row(session, obligation, today)


def _obligation_row(session: Session, obligation: Obligation, today: date) -> ObligationRow:
    clock = session.scalar(
        select(Deadline).where(
            Deadline.subject_type == "obligation", Deadline.subject_id == obligation.id
        )
    )
    submissions = list(
        session.scalars(
            select(Submission)
            .where(Submission.obligation_id == obligation.id)
            .order_by(Submission.submitted_at, Submission.id)
        )
    )
    overdue = obligation.status != "submitted" and obligation.due_on < today
    return ObligationRow(obligation, clock, overdue, submissions)


def typical_cases_of(session: Session, submission_id: int) -> list[TypicalCase]:
    return list(
        session.scalars(
            select(TypicalCase)
            .where(TypicalCase.submission_id == submission_id)
            .order_by(TypicalCase.id)
        )
    )


def submission_for(session: Session, *, submission_id: int, agency_code: str | None) -> Submission:
    submission = session.get(Submission, submission_id)
    if submission is None or (agency_code is not None and submission.agency_code != agency_code):
        raise NotFound(f"未找到报送材料{submission_id}", f"no submission {submission_id}")
    return submission


# --- the office --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgencyOverview:
    party: Party
    counts: dict[str, int]
    overdue: int
    reports_overdue: int


def agencies_overview(session: Session, *, today: date) -> list[AgencyOverview]:
    """Every member (and any other region's regulator that has referrals), with its counts."""
    counts: dict[str, dict[str, int]] = {}
    for code, status, n in session.execute(
        select(Referral.agency_code, Referral.status, func.count()).group_by(
            Referral.agency_code, Referral.status
        )
    ):
        counts.setdefault(code, {})[status] = n
    overdue: dict[str, int] = dict(
        session.execute(
            select(Deadline.party, func.count())
            .where(Deadline.status == "open", Deadline.due_on < today)
            .where(Deadline.subject_type == "referral")
            .group_by(Deadline.party)
        )
        .tuples()
        .all()
    )
    reports: dict[str, int] = dict(
        session.execute(
            select(Obligation.agency_code, func.count())
            .where(Obligation.status != "submitted", Obligation.due_on < today)
            .group_by(Obligation.agency_code)
        )
        .tuples()
        .all()
    )
    parties = session.scalars(
        select(Party)
        .where(
            or_(
                Party.kind == "member",
                and_(Party.kind == "regulator", Party.code.in_(list(counts) or [""])),
            )
        )
        .order_by(Party.kind, Party.code)
    ).all()
    return [
        AgencyOverview(p, counts.get(p.code, {}), overdue.get(p.code, 0), reports.get(p.code, 0))
        for p in parties
    ]


def held_leads(session: Session, *, limit: int = 200) -> list[Lead]:
    """Leads waiting for the office to classify or route by hand, oldest first."""
    return list(
        session.scalars(
            select(Lead)
            .where(Lead.status == "held")
            .order_by(Lead.received_at, Lead.id)
            .limit(limit)
        )
    )


def reassign_queue(session: Session, *, today: date, limit: int = 200) -> Page:
    """Referrals the office may reassign: returned ones first, then open ones, overdue first."""
    returned = list_referrals(
        session, agency_code=None, today=today, status="returned", per_page=limit
    )
    rest = list_referrals(session, agency_code=None, today=today, status="open", per_page=limit)
    rows = returned.rows + rest.rows
    return Page(rows=rows[:limit], total=returned.total + rest.total, page=1, per_page=limit)


@dataclass(frozen=True)
class ExtensionRow:
    extension: Extension
    referral: Referral


def pending_extensions(session: Session) -> list[ExtensionRow]:
    return [
        ExtensionRow(e, r)
        for e, r in session.execute(
            select(Extension, Referral)
            .join(Referral, Referral.id == Extension.referral_id)
            .where(Extension.status == "requested")
            .order_by(Extension.requested_at, Extension.id)
        )
        .tuples()
        .all()
    ]


@dataclass(frozen=True)
class BoardColumn:
    kind: str
    code: str
    title: str
    due_on: date


@dataclass(frozen=True)
class BoardCell:
    obligation_id: int
    status: str  # open | submitted | incomplete | overdue
    submitted_at: datetime | None
    late: bool


def report_board(
    session: Session, *, today: date, tz: ZoneInfo
) -> tuple[list[BoardColumn], list[tuple[Party, dict[tuple[str, str], BoardCell]]]]:
    """Members × reports owed: who has submitted what, late or on time, and who is overdue."""
    obligations = session.scalars(
        select(Obligation).order_by(Obligation.due_on, Obligation.id)
    ).all()
    columns: dict[tuple[str, str], BoardColumn] = {}
    cells: dict[str, dict[tuple[str, str], BoardCell]] = {}
    for o in obligations:
        key = (o.kind, o.code)
        columns.setdefault(key, BoardColumn(o.kind, o.code, o.title, o.due_on))
        status = o.status
        if status != "submitted" and o.due_on < today:
            status = "overdue"
        late = o.submitted_at is not None and o.submitted_at.astimezone(tz).date() > o.due_on
        cells.setdefault(o.agency_code, {})[key] = BoardCell(o.id, status, o.submitted_at, late)
    members = session.scalars(
        select(Party).where(Party.kind == "member").order_by(Party.code)
    ).all()
    return list(columns.values()), [(p, cells.get(p.code, {})) for p in members]


def party_choices(session: Session) -> list[Party]:
    """Agencies the office can refer to: members first, then other regions' regulators."""
    return list(
        session.scalars(
            select(Party)
            .where(Party.active.is_(True), Party.kind.in_(("member", "regulator")))
            .order_by(Party.kind, Party.code)
        )
    )
