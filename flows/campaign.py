"""The campaign (网剑行动): on each day, the phase it is in — as a subflow, so the UI shows
where the campaign stands. Deployed daily at 09:00 Asia/Shanghai; replayable with `as_of`."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.campaign_report import campaign_report
from flows.implementation import implementation
from flows.mobilisation import mobilisation
from flows.summary import summary
from tasks.campaign import publish_campaign_status
from wangjian.bootstrap import get_app
from wangjian.orchestration import dated_run_name


@flow(name="campaign", flow_run_name=dated_run_name("campaign"))
def campaign(as_of: str | None = None, lead_files: list[str] | None = None) -> dict[str, Any]:
    """Run the day's phase: mobilisation, implementation (with the day's lead files) or summary."""
    app = get_app()
    moment = app.as_of(as_of)
    phase = app.config.campaign.phases.phase_on(moment.astimezone(app.tz).date())
    day = moment.isoformat()
    if phase == "mobilisation":
        result = mobilisation(as_of=day)
    elif phase == "implementation":
        result = implementation(as_of=day, lead_files=lead_files or [])
    elif phase == "summary":
        result = summary(as_of=day)
    elif phase == "after":
        result = {"report": campaign_report(as_of=day)}
    else:
        result = {}
    publish_campaign_status(moment, phase, _headline(phase, result))
    return {"phase": phase, **result}


def _headline(phase: str, result: dict[str, Any]) -> dict[str, Any]:
    sweep = result.get("sweep") or {}
    out: dict[str, Any] = {
        "提醒": sweep.get("reminders", 0),
        "逾期通知": sweep.get("overdue_notices", 0),
        "提级催办": sweep.get("escalations", 0),
        "挂牌督办": sweep.get("listed_for_supervision", 0),
        "发送邮件": sweep.get("notifications_sent", 0),
    }
    if phase == "implementation":
        out["移送线索文件"] = len(result.get("dispatched", []))
        out["新移送(件)"] = sum(
            sum((d.get("referrals") or {}).values()) for d in result.get("dispatched", [])
        )
    if phase == "mobilisation":
        out["印发方案通知"] = result.get("plan_notices", 0)
    if phase == "summary":
        out["总结材料齐全"] = f"{result.get('packages_complete')}/{result.get('members')}"
    return out
