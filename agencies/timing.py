"""A referral's time limits, read from the SLA policy frozen onto it when it was made.

The frozen policy is `SlaPolicy.model_dump(mode="json")` of the referral's kind at referral
time, so a later change to `sla.yaml` never moves a deadline an agency was already given.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from wangjian.bootstrap import App
from wangjian.campaign.models import Limit, SlaPolicy, Unit
from wangjian.domain.deadlines import DueDate, compute_due, end_of_day
from wangjian.ledger.models import Referral


def freeze_policy(app: App, kind: str) -> dict[str, Any]:
    """The policy of a referral kind as stored on the referral (plain JSON)."""
    return app.config.policy(kind).model_dump(mode="json")


def policy_of(app: App, referral: Referral) -> SlaPolicy:
    """The referral's frozen policy; the current one for its kind if the frozen copy is unreadable."""
    try:
        return SlaPolicy.model_validate(referral.policy or {})
    except ValidationError:
        return app.config.policy(referral.kind)


def outcome_limit(app: App, referral: Referral, *, listed_operator: bool = False) -> Limit:
    policy = policy_of(app, referral)
    if listed_operator and policy.listed_operator_outcome is not None:
        return policy.listed_operator_outcome
    return policy.outcome


def outcome_ladder(referral: Referral) -> str:
    return str((referral.policy or {}).get("outcome_ladder") or "referral_outcome")


def ack_ladder(referral: Referral) -> str:
    return str((referral.policy or {}).get("ack_ladder") or "referral_ack")


def extendable_by(app: App, referral: Referral, *, listed_operator: bool = False) -> int:
    return outcome_limit(app, referral, listed_operator=listed_operator).extendable_by


def ack_due(app: App, referral: Referral) -> DueDate:
    """The acknowledgement deadline, recomputed with its working (or as stored, if it moved)."""
    limit = policy_of(app, referral).acknowledge
    due = compute_due(app.calendar, referral.received_at, limit, tz=app.tz)
    return (
        due if due.due_on == referral.ack_due_on else fixed_due(app, referral, referral.ack_due_on)
    )


def outcome_due(app: App, referral: Referral, *, listed_operator: bool = False) -> DueDate:
    """The outcome deadline (approved extensions included), with how it was computed."""
    limit = outcome_limit(app, referral, listed_operator=listed_operator)
    due = compute_due(
        app.calendar, referral.received_at, limit, tz=app.tz, extra=referral.extension_days
    )
    return due if due.due_on == referral.due_on else fixed_due(app, referral, referral.due_on)


def fixed_due(app: App, referral: Referral, due_on: date) -> DueDate:
    """A due date fixed when the referral was made or moved by hand: only the day itself."""
    start: datetime = referral.received_at.astimezone(app.tz)
    return DueDate(
        due_on=due_on,
        due_at=end_of_day(due_on, app.tz),
        start=start,
        unit=Unit.CALENDAR_DAYS,
        count=max((due_on - start.date()).days, 0),
        rule="按移送时确定的截止日期",
    )
