"""The office's decisions: route a held lead by hand, reassign a referral, decide on extensions.

A referral made here gets the same things as one made at dispatch: the SLA policy of its kind
frozen onto it, its acknowledgement and outcome due dates, a live clock and a queued `referral`
notice to the agency's contact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from agencies.errors import NotFound, Refused
from agencies.timing import ack_ladder, freeze_policy
from wangjian.bootstrap import App
from wangjian.campaign.models import SlaPolicy
from wangjian.domain.deadlines import compute_due
from wangjian.domain.dedup import identity_keys
from wangjian.ledger.clocks import cancel_clock, open_clock
from wangjian.ledger.events import record_event
from wangjian.ledger.extensions import approve_extension, refuse_extension
from wangjian.ledger.models import Extension, Lead, Party, Referral
from wangjian.ledger.outbox import notice_key, queue_notices

POLICE = "police"


def route_held_lead(
    *,
    session: Session,
    app: App,
    lead_id: int,
    category: str,
    agency_code: str | None = None,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> list[Referral]:
    """Classify a held lead and refer it: to the chosen agency, else by category and place.

    A suspected crime also goes to the police, as at dispatch.
    """
    lead = session.scalar(select(Lead).where(Lead.id == lead_id).with_for_update())
    if lead is None:
        raise NotFound(f"未找到线索{lead_id}", f"no lead {lead_id}")
    if lead.status != "held":
        raise Refused(
            f"线索{lead_id}不在待人工分类队列中", f"lead {lead_id} is not waiting to be classified"
        )
    config = app.config
    if category not in config.categories:
        raise Refused(
            f"类别“{category}”不存在", f"unknown category {category!r}", column="category"
        )
    category_zh = config.categories[category].name_zh
    if agency_code:
        target = _party(session, agency_code)
        reason = f"联席会议办公室人工分类为“{category_zh}”,指定由{target.name_zh}办理"
    elif not config.campaign.jurisdiction.covers(lead.region_code):
        regulator = config.regulator_for(lead.region_code)
        if regulator is None:
            raise Refused(
                f"经营者注册地{lead.region_code}在辖区外且无对应的外地监管部门,请指定接收单位",
                f"region {lead.region_code} is outside the jurisdiction and no regulator is "
                "known for it: choose the receiving agency",
                column="agency",
            )
        target = _party(session, regulator.code)
        reason = f"经营者注册地{lead.region_code}不属本辖区,按属地管理移送{target.name_zh}"
    else:
        owner = config.category_owner.get(category)
        if owner is None:
            raise Refused(
                f"类别“{category_zh}”未指定负责单位,请指定接收单位",
                f"no agency is responsible for {category!r}: choose the receiving agency",
                column="agency",
            )
        target = _party(session, owner)
        reason = f"联席会议办公室人工分类为“{category_zh}”,按职责分工由{target.name_zh}办理"
    previous = lead.category
    lead.category, lead.category_origin, lead.status = category, "office", "referred"
    group = f"dispatch:office-lead-{lead.id}"
    referrals = [
        create_referral(
            session=session,
            app=app,
            lead=lead,
            party=target,
            reason=reason,
            rule="office",
            actor=actor,
            at=at,
            origin=origin,
            group_key=group,
        )
    ]
    if lead.suspected_crime and target.code != POLICE:
        police = _party(session, POLICE)
        referrals.append(
            create_referral(
                session=session,
                app=app,
                lead=lead,
                party=police,
                reason="线索涉嫌犯罪,依照行政执法与刑事司法衔接规定同时移送公安机关",
                rule="suspected_crime",
                actor=actor,
                at=at,
                origin=origin,
                group_key=group,
                kind="crime",
            )
        )
    record_event(
        session,
        actor=actor,
        action="lead.routed_by_office",
        subject_type="lead",
        subject_id=lead.id,
        at=at,
        origin=origin,
        data={
            "category_before": previous,
            "category": category,
            "referrals": [r.id for r in referrals],
            "agencies": [r.agency_code for r in referrals],
        },
    )
    return referrals


def reassign_referral(
    *,
    session: Session,
    app: App,
    referral_id: int,
    agency_code: str,
    reason: str,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> Referral:
    """改派: the old referral becomes `reassigned` and a new one goes to the new agency."""
    reason = (reason or "").strip()
    if not reason:
        raise Refused("改派须说明理由", "a reassignment needs a reason", column="note")
    old = session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
    if old is None:
        raise NotFound(f"未找到移送编号{referral_id}", f"no referral {referral_id}")
    if old.status not in ("open", "acknowledged", "returned"):
        raise Refused(
            f"移送{old.id}已{'办结' if old.status == 'closed' else '改派'},不能改派",
            f"referral {old.id} is {old.status}: it cannot be reassigned",
        )
    target = _party(session, agency_code)
    taken = session.scalar(
        select(Referral.id).where(
            Referral.lead_id == old.lead_id, Referral.agency_code == target.code
        )
    )
    if taken is not None:
        raise Refused(
            f"该线索已移送过{target.name_zh}(移送编号{taken})",
            f"this lead was already referred to {target.code} (referral {taken})",
            column="agency",
        )
    lead = session.get(Lead, old.lead_id)
    assert lead is not None  # a referral's lead is a foreign key
    new = create_referral(
        session=session,
        app=app,
        lead=lead,
        party=target,
        reason=f"联席会议办公室改派(原移送{old.agency_code},编号{old.id}):{reason}",
        rule="office_reassign",
        actor=actor,
        at=at,
        origin=origin,
        group_key=f"dispatch:office-reassign-{old.id}",
        category=old.category,
    )
    previous = old.status
    old.status, old.replaced_by = "reassigned", new.id
    old.closed_at = at
    cancel_clock(session, subject_type="referral", subject_id=old.id, at=at)
    record_event(
        session,
        actor=actor,
        action="referral.reassigned",
        subject_type="referral",
        subject_id=old.id,
        at=at,
        origin=origin,
        data={
            "from": previous,
            "to": "reassigned",
            "new_referral": new.id,
            "agency": target.code,
            "reason": reason,
        },
    )
    return new


def create_referral(
    *,
    session: Session,
    app: App,
    lead: Lead,
    party: Party,
    reason: str,
    rule: str,
    actor: str,
    at: datetime,
    origin: str | None,
    group_key: str,
    kind: str | None = None,
    category: str | None = None,
) -> Referral:
    """One referral made by hand: frozen policy, due dates, acknowledgement clock, notice."""
    kind = kind or referral_kind(party)
    frozen = freeze_policy(app, kind)
    policy = SlaPolicy.model_validate(frozen)
    ack = compute_due(app.calendar, at, policy.acknowledge, tz=app.tz)
    limit = policy.outcome
    if lead.listed_operator_id is not None and policy.listed_operator_outcome is not None:
        limit = policy.listed_operator_outcome
    due = compute_due(app.calendar, at, limit, tz=app.tz)
    listing, operator = identity_keys(lead)
    referral = Referral(
        lead_id=lead.id,
        agency_code=party.code,
        kind=kind,
        category=category or lead.category,
        listing_key=listing,  # so that later leads about it add evidence, as for dispatch's
        operator_key=operator,
        status="open",
        reason=reason,
        rule=rule,
        policy=frozen,
        received_at=at,
        ack_due_on=ack.due_on,
        due_on=due.due_on,
        original_due_on=due.due_on,
        provisional=ack.provisional or due.provisional,
        priority=lead.priority,
        extension_days=0,
        evidence_count=0,
    )
    session.add(referral)
    session.flush()
    clock = open_clock(
        session,
        app,
        subject_type="referral",
        subject_id=referral.id,
        kind="referral_ack",
        party=party.code,
        ladder=ack_ladder(referral),
        due=ack,
    )
    session.flush()
    queue_notices(
        session,
        [
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
                "deadline_id": clock.id,
                "step": None,
                "group_key": group_key,
                "context": {
                    "referral_id": referral.id,
                    "lead_id": lead.id,
                    "ack_due_on": ack.due_on.isoformat(),
                    "due_on": due.due_on.isoformat(),
                },
                "status": "queued",
            }
        ],
    )
    record_event(
        session,
        actor=actor,
        action="referral.created",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        origin=origin,
        data={
            "lead_id": lead.id,
            "agency": party.code,
            "kind": kind,
            "rule": rule,
            "ack_due_on": ack.due_on.isoformat(),
            "due_on": due.due_on.isoformat(),
        },
    )
    return referral


def referral_kind(party: Party) -> str:
    """Another region's regulator gets a transfer; the police review a suspected crime."""
    if party.kind == "regulator":
        return "transfer_out"
    return "crime" if party.code == POLICE else "referral"


def decide_extension(
    *,
    session: Session,
    app: App,
    extension_id: int,
    approve: bool,
    actor: str,
    at: datetime,
    note: str | None = None,
) -> Extension:
    """Approve or refuse an agency's extension request (an approval moves the outcome clock)."""
    note = (note or "").strip() or None
    extension = session.scalar(
        select(Extension).where(Extension.id == extension_id).with_for_update()
    )
    if extension is None:
        raise NotFound(f"未找到延期申请{extension_id}", f"no extension request {extension_id}")
    if extension.status != "requested":
        raise Refused(
            f"延期申请{extension_id}已处理", f"extension request {extension_id} is already decided"
        )
    decide = approve_extension if approve else refuse_extension
    decide(session=session, app=app, extension_id=extension_id, actor=actor, at=at, note=note)
    session.refresh(extension)
    return extension


def revoke_links(
    *, session: Session, party_code: str, actor: str, at: datetime, origin: str | None = None
) -> int:
    """Invalidate every link an agency holds (bump its token version); returns the new version."""
    party = _party(session, party_code)
    party.token_version = (party.token_version or 1) + 1
    record_event(
        session,
        actor=actor,
        action="party.links_revoked",
        subject_type="party",
        subject_id=None,
        at=at,
        origin=origin,
        data={"party": party.code, "token_version": party.token_version},
    )
    return party.token_version


def _party(session: Session, code: str) -> Party:
    party = session.get(Party, code)
    if party is None or not party.active or party.kind not in ("member", "regulator"):
        raise Refused(
            f"接收单位“{code}”不存在", f"unknown receiving agency {code!r}", column="agency"
        )
    return party
