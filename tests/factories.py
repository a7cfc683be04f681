"""Small factories for ledger rows, written with the ORM directly (no dispatch needed)."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from wangjian.access import sign_link_token
from wangjian.bootstrap import App
from wangjian.campaign.models import Unit
from wangjian.domain.deadlines import DueDate, compute_due, end_of_day
from wangjian.ledger.clocks import open_clock
from wangjian.ledger.models import Lead, Obligation, Party, Referral

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday in the 2021 district campaign's implementation phase.
AT = datetime(2021, 10, 25, 10, 0, tzinfo=SHANGHAI)
_ids = itertools.count(1)


def make_lead(session: Session, **values: Any) -> Lead:
    n = next(_ids)
    fields: dict[str, Any] = {
        "source": "monitoring",
        "source_lead_id": f"L{n:05d}",
        "category": "trademark",
        "category_origin": "given",
        "summary": f"网店销售假冒注册商标商品 #{n}",
        "platform": "淘宝",
        "shop_name": f"测试网店{n}",
        "url": f"https://shop.example.org/item/{n}",
        "operator_name": f"某某商贸有限公司{n}",
        "region_code": "140105",
        "found_on": date(2021, 10, 22),
        "suspected_crime": False,
        "status": "referred",
        "received_at": AT,
    }
    fields.update(values)
    lead = Lead(**fields)
    session.add(lead)
    session.flush()
    return lead


def make_referral(
    session: Session,
    app: App,
    *,
    agency: str = "samr",
    lead: Lead | None = None,
    kind: str = "referral",
    status: str = "open",
    at: datetime = AT,
    clock: bool = True,
    **values: Any,
) -> Referral:
    """A referral as dispatch makes it (frozen policy, due dates, acknowledgement clock)."""
    lead = lead or make_lead(session)
    policy = app.config.policy(kind)
    ack = compute_due(app.calendar, at, policy.acknowledge, tz=app.tz)
    due = compute_due(app.calendar, at, policy.outcome, tz=app.tz)
    fields: dict[str, Any] = {
        "lead_id": lead.id,
        "agency_code": agency,
        "kind": kind,
        "category": lead.category,
        "status": status,
        "reason": f"按职责分工,“{lead.category}”类线索由{agency}办理",
        "rule": "category",
        "policy": policy.model_dump(mode="json"),
        "received_at": at,
        "ack_due_on": ack.due_on,
        "due_on": due.due_on,
        "original_due_on": due.due_on,
        "extension_days": 0,
        "evidence_count": 1,
    }
    if status == "acknowledged":
        fields["acknowledged_at"] = at
    fields.update(values)
    referral = Referral(**fields)
    session.add(referral)
    session.flush()
    if clock and status in ("open", "acknowledged"):
        acknowledged = status == "acknowledged"
        open_clock(
            session,
            app,
            subject_type="referral",
            subject_id=referral.id,
            kind="referral_outcome" if acknowledged else "referral_ack",
            party=agency,
            ladder=policy.outcome_ladder if acknowledged else policy.ack_ladder,
            due=due if acknowledged else ack,
        )
    session.flush()
    return referral


def make_obligation(
    session: Session,
    app: App,
    *,
    agency: str = "samr",
    kind: str = "monthly_report",
    code: str = "2021-11",
    due_on: date = date(2021, 11, 22),
    title: str | None = None,
    clock: bool = True,
    **values: Any,
) -> Obligation:
    titles = {
        "monthly_report": f"{code}月度工作进展",
        "summary_package": "专项行动总结材料",
        "deliverable": "阶段性典型案例",
        "implementation_plan": "具体实施方案",
    }
    obligation = Obligation(
        kind=kind,
        code=code,
        agency_code=agency,
        title=title or titles.get(kind, kind),
        due_on=due_on,
        status="open",
        **values,
    )
    session.add(obligation)
    session.flush()
    if clock:
        due = DueDate(
            due_on=due_on,
            due_at=end_of_day(due_on, app.tz),
            start=end_of_day(due_on, app.tz),
            unit=Unit.CALENDAR_DAYS,
            count=0,
            rule="fixed date",
        )
        open_clock(
            session,
            app,
            subject_type="obligation",
            subject_id=obligation.id,
            kind=kind,
            party=agency,
            ladder="member_report",
            due=due,
        )
    session.flush()
    return obligation


def token_for(app: App, session: Session, agency: str) -> str:
    """A valid link token for an agency (its current token version)."""
    party = session.get(Party, agency)
    assert party is not None
    secret = app.settings.portal.secret_key.get_secret_value()
    return sign_link_token(secret, party=agency, version=party.token_version)
