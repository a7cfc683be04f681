"""What the office does at the turns of the campaign: issue the plan to every member
(mobilisation) and chase incomplete summary packages (summary). Notices go through the outbox."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.ledger.events import record_events
from wangjian.ledger.models import Obligation, Party
from wangjian.ledger.outbox import notice_key, queue_notices
from wangjian.ledger.packages import PackageCheck


def plan_context(app: App, member: str) -> dict[str, Any]:
    """The member's share of the plan (任务分工): its categories and the dates it must keep."""
    config = app.config
    categories = config.categories
    agency = config.agencies[member]
    phases = config.campaign.phases
    deadlines = config.deadlines
    dates = []
    if deadlines.implementation_plan:
        dates.append(
            {
                "title": deadlines.implementation_plan.title,
                "due_on": deadlines.implementation_plan.due.isoformat(),
            }
        )
    if deadlines.monthly_report:
        day = deadlines.monthly_report.day_of_month
        dates.append(
            {"title": deadlines.monthly_report.title, "due_on": f"组织实施阶段每月{day}日前"}
        )
    dates += [{"title": d.title, "due_on": d.due.isoformat()} for d in deadlines.deliverables]
    dates.append(
        {
            "title": deadlines.summary_package.title,
            "due_on": deadlines.summary_package.due.isoformat(),
        }
    )
    return {
        "categories": [categories[c].name_zh for c in agency.categories if c in categories],
        "categories_en": [categories[c].name_en for c in agency.categories if c in categories],
        "phases": [
            {"name": name, "start": window.start.isoformat(), "end": window.end.isoformat()}
            for name, window in (
                ("动员部署", phases.mobilisation),
                ("组织实施", phases.implementation),
                ("总结", phases.summary),
            )
        ],
        "dates": dates,
        "min_typical_cases": deadlines.summary_package.min_typical_cases,
    }


def issue_plan(*, session: Session, app: App, as_of: datetime) -> int:
    """Send each member the plan and its task split, once (the outbox key makes it once)."""
    first_kind = (
        "implementation_plan" if app.config.deadlines.implementation_plan else "summary_package"
    )
    obligations = {
        o.agency_code: o
        for o in session.scalars(select(Obligation).where(Obligation.kind == first_kind))
    }
    members = session.scalars(
        select(Party).where(Party.kind == "member", Party.active.is_(True)).order_by(Party.code)
    ).all()
    office = app.config.campaign.office.email
    rows = []
    for member in members:
        obligation = obligations.get(member.code)
        if obligation is None or member.code not in app.config.agencies:
            continue
        rows.append(
            {
                "key": notice_key(
                    recipient=member.contact_email,
                    subject_type="obligation",
                    subject_id=obligation.id,
                    kind="plan_issued",
                ),
                "kind": "plan_issued",
                "party": member.code,
                "audience": "contact",
                "recipient": member.contact_email,
                "cc": [a for a in (member.leader_email, office) if a],
                "subject_type": "obligation",
                "subject_id": obligation.id,
                "step": None,
                "group_key": "mobilisation",
                "context": plan_context(app, member.code),
                "status": "queued",
                "created_at": as_of,
            }
        )
    queued = queue_notices(session, rows)
    if queued:
        record_events(
            session,
            [
                {
                    "at": as_of,
                    "actor": "office",
                    "action": "plan.issued",
                    "subject_type": "campaign",
                    "subject_id": None,
                    "origin": "mobilisation",
                    "data": {"members": queued},
                }
            ],
        )
    return queued


def chase_packages(
    *, session: Session, app: App, as_of: datetime, checks: list[PackageCheck]
) -> int:
    """Tell each member whose submitted package is incomplete what it lacks (once per finding)."""
    parties = {p.code: p for p in session.scalars(select(Party).where(Party.kind == "member"))}
    rows = []
    for check in checks:
        party = parties.get(check.agency_code)
        if check.complete or not check.submitted or check.obligation_id is None or party is None:
            continue  # not submitted at all: the ladder of the package's clock chases that
        finding = hashlib.sha256(check.describe().encode()).hexdigest()[:10]
        rows.append(
            {
                "key": notice_key(
                    recipient=party.contact_email,
                    subject_type="obligation",
                    subject_id=check.obligation_id,
                    kind="package_incomplete",
                    version=finding,
                ),
                "kind": "package_incomplete",
                "party": party.code,
                "audience": "contact",
                "recipient": party.contact_email,
                "cc": [app.config.campaign.office.email],
                "subject_type": "obligation",
                "subject_id": check.obligation_id,
                "step": None,
                "group_key": f"summary:{as_of.astimezone(app.tz).date().isoformat()}",
                "context": {
                    "missing": check.missing,
                    "valid_cases": check.valid_cases,
                    "cases_without_decision": check.cases_without_decision,
                },
                "status": "queued",
                "created_at": as_of,
            }
        )
    return queue_notices(session, rows)
