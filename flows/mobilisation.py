"""Mobilisation (动员部署): issue the plan and each member's task split, open their obligations."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.deadline_sweep import deadline_sweep
from tasks.campaign import issue_campaign_plan
from tasks.sweep import open_member_obligations
from wangjian.bootstrap import get_app
from wangjian.orchestration import dated_run_name


@flow(name="mobilisation", flow_run_name=dated_run_name("mobilisation"))
def mobilisation(as_of: str | None = None) -> dict[str, Any]:
    """Open every member's obligations, send the plan once, then the day's deadline pass."""
    moment = get_app().as_of(as_of)
    obligations = open_member_obligations(moment)
    issued = issue_campaign_plan(moment)
    swept = deadline_sweep(as_of=moment.isoformat())
    return {"obligations": obligations, "plan_notices": issued, "sweep": swept}
