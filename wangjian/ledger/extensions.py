"""The office's decision on an agency's request for more time, and its effect on the deadline.

An approved extension adds working days to the referral's outcome limit, counted from the
original start (receipt) under the policy frozen on the referral, never beyond its
`extendable_by`. The new due date restarts the outcome ladder (a new clock version, so the
reminders may speak again); the reason is kept on the referral and in the event trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.campaign.models import Limit, SlaPolicy
from wangjian.domain.deadlines import DueDate, compute_due
from wangjian.ledger.clocks import clock_of, open_clock
from wangjian.ledger.events import record_event
from wangjian.ledger.models import Extension, Lead, Referral

FINISHED = ("closed", "returned", "reassigned")


class ExtensionError(Exception):
    """A decision that cannot be taken (unknown request, decided already, over the limit)."""


def frozen_policy(app: App, referral: Referral) -> SlaPolicy:
    """The SLA policy frozen on a referral (the configured one if the frozen copy is partial)."""
    configured = app.config.policy(referral.kind)
    frozen = {k: v for k, v in (referral.policy or {}).items() if k in SlaPolicy.model_fields}
    return SlaPolicy.model_validate({**configured.model_dump(mode="json"), **frozen})


def is_listed_operator(session: Session, referral: Referral) -> bool:
    """Whether the referral's lead is about an operator already removed or blacklisted."""
    lead = session.get(Lead, referral.lead_id)
    return lead is not None and lead.listed_operator_id is not None


def outcome_limit(app: App, referral: Referral, *, listed_operator: bool = False) -> Limit:
    """The outcome limit that applies: the faster one for leads about listed operators."""
    policy = frozen_policy(app, referral)
    if listed_operator and policy.listed_operator_outcome is not None:
        return policy.listed_operator_outcome
    return policy.outcome


def outcome_due(
    app: App, referral: Referral, *, listed_operator: bool = False, extra: int | None = None
) -> DueDate:
    """The referral's outcome deadline from receipt, with its approved extensions (or `extra`)."""
    limit = outcome_limit(app, referral, listed_operator=listed_operator)
    days = referral.extension_days if extra is None else extra
    return compute_due(app.calendar, referral.received_at, limit, tz=app.tz, extra=days)


def _pending(session: Session, extension_id: int) -> tuple[Extension, Referral]:
    extension = session.get(Extension, extension_id, with_for_update=True)
    if extension is None:
        raise ExtensionError(f"no extension request {extension_id}")
    if extension.status != "requested":
        raise ExtensionError(f"extension request {extension_id} was {extension.status} already")
    referral = session.get(Referral, extension.referral_id, with_for_update=True)
    if referral is None:  # pragma: no cover - the foreign key forbids it
        raise ExtensionError(f"extension request {extension_id} names no referral")
    return extension, referral


def approve_extension(
    *,
    session: Session,
    app: App,
    extension_id: int,
    actor: str,
    at: datetime,
    note: str | None = None,
) -> DueDate:
    """Approve a request: move the referral's due date and restart its outcome ladder."""
    extension, referral = _pending(session, extension_id)
    if referral.status in FINISHED:
        raise ExtensionError(f"referral {referral.id} is {referral.status}: nothing to extend")
    listed = is_listed_operator(session, referral)
    limit = outcome_limit(app, referral, listed_operator=listed)
    total = referral.extension_days + extension.days
    if extension.days <= 0 or total > limit.extendable_by:
        raise ExtensionError(
            f"referral {referral.id}: {extension.days} more days would make {total}; "
            f"the policy allows at most {limit.extendable_by}"
        )
    due = outcome_due(app, referral, listed_operator=listed, extra=total)
    before = referral.due_on
    referral.due_on, referral.extension_days = due.due_on, total
    referral.provisional = referral.provisional or due.provisional
    referral.extension_reason = (
        f"{referral.extension_reason};{extension.reason}"
        if referral.extension_reason
        else extension.reason
    )
    extension.status, extension.decided_at = "approved", at
    extension.decided_by, extension.decision_note = actor, note
    clock = clock_of(session, subject_type="referral", subject_id=referral.id)
    restarted = None
    if clock is not None and clock.status == "open" and clock.kind == "referral_outcome":
        # Still waiting for the acknowledgement: its clock runs on; the outcome clock will open
        # from the moved `due_on` once the agency acknowledges.
        restarted = open_clock(
            session,
            app,
            subject_type="referral",
            subject_id=referral.id,
            kind="referral_outcome",
            party=referral.agency_code,
            ladder=clock.ladder,
            due=due,
        ).version
    data = {
        "extension_id": extension.id,
        "days": extension.days,
        "total_days": total,
        "reason": extension.reason,
        "from": before.isoformat(),
        "to": due.due_on.isoformat(),
        "explanation": due.explain(),
        "clock_version": restarted,
        "note": note,
    }
    record_event(
        session,
        actor=actor,
        action="extension.approved",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        data=data,
    )
    session.flush()  # callers may re-read the request (the portal refreshes it)
    return due


def refuse_extension(
    *,
    session: Session,
    app: App,
    extension_id: int,
    actor: str,
    at: datetime,
    note: str | None = None,
) -> Extension:
    """Refuse a request: the deadline stands, the ladder runs on; the refusal is recorded."""
    extension, referral = _pending(session, extension_id)
    extension.status, extension.decided_at = "refused", at
    extension.decided_by, extension.decision_note = actor, note
    record_event(
        session,
        actor=actor,
        action="extension.refused",
        subject_type="referral",
        subject_id=referral.id,
        at=at,
        data={
            "extension_id": extension.id,
            "days": extension.days,
            "reason": extension.reason,
            "due_on": referral.due_on.isoformat(),
            "note": note,
        },
    )
    session.flush()  # callers may re-read the request (the portal refreshes it)
    return extension
