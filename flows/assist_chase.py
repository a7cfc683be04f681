"""Chasing assistance requests to the hour (every quarter of an hour, Asia/Shanghai): the
reminders, overdue notices and escalations of their hour clocks, then the mail.

The daily deadline sweep climbs the same ladders; this run only does it often enough for a
24-hour limit, and sends what the portal queued meanwhile.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.send_notifications import send_notifications
from tasks.sweep import sweep_clocks
from wangjian.bootstrap import get_app
from wangjian.ledger.assist import SUBJECT


@flow(name="assist-chase")
def assist_chase(as_of: str | None = None) -> dict[str, Any]:
    """Remind, warn and escalate the assistance requests due by `as_of` (now by default)."""
    moment = get_app().as_of(as_of)
    swept = sweep_clocks(moment, subject_types=[SUBJECT])
    sent = send_notifications(as_of=moment.isoformat())["sent"]
    return {**swept, "notifications_sent": sent}
