"""The daily deadline pass (09:00 Asia/Shanghai): members' obligations, reminders, overdue
notices and escalations for referrals and reports, the office's tables, then the mail."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.send_notifications import send_notifications
from tasks.sweep import open_member_obligations, publish_office_artifacts, sweep_clocks
from wangjian.bootstrap import get_app
from wangjian.orchestration import dated_run_name


@flow(name="deadline-sweep", flow_run_name=dated_run_name("sweep"))
def deadline_sweep(as_of: str | None = None) -> dict[str, Any]:
    """Remind, warn and escalate everything due by `as_of` (an ISO date or datetime; now)."""
    moment = get_app().as_of(as_of)
    obligations = open_member_obligations(moment)
    swept = sweep_clocks(moment)
    office = publish_office_artifacts(moment)
    sent = send_notifications(as_of=moment.isoformat())["sent"]
    return {**swept, "notifications_sent": sent, "obligations": obligations, "office": office}
