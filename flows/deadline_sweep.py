"""The daily deadline pass (09:00 Asia/Shanghai): members' obligations, reminders, overdue
notices and escalations for referrals and reports, the office's tables, then the mail."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from prefect import flow

from tasks.sweep import open_member_obligations, publish_office_artifacts, sweep_clocks
from wangjian.bootstrap import get_app


def notification_sender() -> Callable[..., Any] | None:
    """The outbox sender flow, when the notifications stage is installed (else the outbox waits)."""
    try:
        from flows.send_notifications import send_notifications  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name not in ("flows.send_notifications", "flows"):
            raise
        return None
    return send_notifications  # type: ignore[no-any-return]


def count_sent(result: Any) -> int:
    """How many messages the sender reports sent (a number, or an object with `sent`)."""
    if isinstance(result, bool):
        return 0
    if isinstance(result, int):
        return result
    if isinstance(result, dict):
        return int(result.get("sent", result.get("notifications_sent", 0)) or 0)
    return int(getattr(result, "sent", 0) or 0)


@flow(name="deadline-sweep")
def deadline_sweep(as_of: str | None = None) -> dict[str, Any]:
    """Remind, warn and escalate everything due by `as_of` (an ISO date or datetime; now)."""
    moment = get_app().as_of(as_of)
    obligations = open_member_obligations(moment)
    swept = sweep_clocks(moment)
    office = publish_office_artifacts(moment)
    sender = notification_sender()
    sent = 0
    if sender is not None:
        accepts_as_of = "as_of" in inspect.signature(sender).parameters
        sent = count_sent(sender(as_of=moment.isoformat()) if accepts_as_of else sender())
    return {**swept, "notifications_sent": sent, "obligations": obligations, "office": office}
