"""Factories for the mail tests: leads, referrals, obligations, clocks and their queued notices,
written straight through the ORM (the tests do not depend on dispatch or the sweep)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.domain.deadlines import compute_due, end_of_day
from wangjian.ledger.models import Deadline, Lead, Obligation, Party, Referral
from wangjian.ledger.outbox import notice_key, queue_notices

AS_OF = "2021-10-25"  # a Monday of the default campaign's implementation phase


def add_referrals(
    session: Session,
    app: App,
    *,
    count: int = 1,
    agency: str = "samr",
    category: str = "trademark",
    kind: str = "referral",
    as_of: datetime,
    source: str = "monitoring",
    first: int | None = None,
    **lead_fields: Any,
) -> list[Referral]:
    """`count` leads and their referrals to `agency`, received at `as_of`; leads are numbered
    from `first` (by default, after those already in the ledger)."""
    if first is None:
        first = (session.scalar(select(func.count()).select_from(Lead)) or 0) + 1
    policy = app.config.policy(kind)
    ack = compute_due(app.calendar, as_of, policy.acknowledge, tz=app.tz)
    due = compute_due(app.calendar, as_of, policy.outcome, tz=app.tz)
    referrals = []
    for n in range(first, first + count):
        fields: dict[str, Any] = {
            "summary": f"第{n}号线索:网店销售假冒注册商标的运动鞋",
            "platform": "淘宝网",
            "shop_name": f"潮鞋专营店{n}",
            "url": f"https://shop.example.org/item/{n}",
            "operator_name": f"某某商贸有限公司{n}",
            "credit_code": None,
            "region_code": "140105",
            "suspected_crime": False,
        }
        fields.update(lead_fields)
        lead = Lead(
            source=source,
            source_lead_id=f"L-{n:05d}",
            category=category,
            category_origin="given",
            found_on=as_of.date() - timedelta(days=2),
            status="referred",
            received_at=as_of,
            **fields,
        )
        session.add(lead)
        session.flush()
        referral = Referral(
            lead_id=lead.id,
            agency_code=agency,
            kind=kind,
            category=category,
            status="open",
            reason=f"违法类别“{category}”依职责分工由该单位负责(agencies.yaml)",
            rule="category",
            policy=policy.model_dump(mode="json"),
            received_at=as_of,
            ack_due_on=ack.due_on,
            due_on=due.due_on,
            original_due_on=due.due_on,
        )
        session.add(referral)
        referrals.append(referral)
    session.flush()
    return referrals


def queue_referral_notices(
    session: Session, referrals: list[Referral], *, group_key: str = "dispatch:1"
) -> int:
    """One `referral` notice per referral to its agency's contact, as dispatch queues them."""
    parties = {p.code: p for p in session.query(Party)}
    rows = []
    for referral in referrals:
        party = parties[referral.agency_code]
        rows.append(
            {
                "key": notice_key(
                    recipient=party.contact_email,
                    subject_type="referral",
                    subject_id=referral.id,
                    kind="referral",
                ),
                "kind": "referral",
                "party": party.code,
                "audience": "contact",
                "recipient": party.contact_email,
                "cc": [],
                "subject_type": "referral",
                "subject_id": referral.id,
                "group_key": group_key,
                "context": {},
                "status": "queued",
            }
        )
    return queue_notices(session, rows)


def add_clock(
    session: Session,
    app: App,
    *,
    subject_type: str,
    subject_id: int,
    kind: str,
    party: str,
    due_on: date,
    ladder: str = "referral_outcome",
) -> Deadline:
    clock = Deadline(
        subject_type=subject_type,
        subject_id=subject_id,
        kind=kind,
        party=party,
        ladder=ladder,
        due_on=due_on,
        due_at=end_of_day(due_on, app.tz),
        status="open",
        next_step=0,
        version=1,
    )
    session.add(clock)
    session.flush()
    return clock


def add_obligation(
    session: Session, app: App, *, kind: str, agency: str, due_on: date, code: str, title: str
) -> tuple[Obligation, Deadline]:
    obligation = Obligation(kind=kind, code=code, agency_code=agency, title=title, due_on=due_on)
    session.add(obligation)
    session.flush()
    clock = add_clock(
        session,
        app,
        subject_type="obligation",
        subject_id=obligation.id,
        kind=kind,
        party=agency,
        due_on=due_on,
        ladder="member_report",
    )
    return obligation, clock


def queue_ladder_notice(
    session: Session,
    clock: Deadline,
    *,
    step: str,
    audience: str = "contact",
    cc_audiences: tuple[str, ...] = (),
    app: App,
    group_key: str = "sweep:2021-10-25",
) -> int:
    """A ladder notice on a clock, addressed like the sweep does (to and cc by audience)."""
    party = session.get(Party, clock.party)
    assert party is not None
    campaign = app.config.campaign

    def address(who: str) -> str:
        return {
            "contact": party.contact_email,
            "leader": party.leader_email or party.contact_email,
            "office": campaign.office.email,
            "leading_group": campaign.leading_group.email,
        }[who]

    recipient = address(audience)
    return queue_notices(
        session,
        [
            {
                "key": notice_key(
                    recipient=recipient,
                    subject_type=clock.subject_type,
                    subject_id=clock.subject_id,
                    kind=step,
                    step=step,
                    version=clock.version,
                ),
                "kind": step,
                "party": party.code,
                "audience": audience,
                "recipient": recipient,
                "cc": [address(a) for a in cc_audiences],
                "subject_type": clock.subject_type,
                "subject_id": clock.subject_id,
                "deadline_id": clock.id,
                "step": step,
                "group_key": group_key,
                "context": {"due_on": clock.due_on.isoformat()},
                "status": "queued",
            }
        ],
    )
