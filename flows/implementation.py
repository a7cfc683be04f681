"""Implementation (组织实施): refer the day's incoming lead files, then the daily deadline pass."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.deadline_sweep import deadline_sweep
from flows.dispatch_leads import dispatch_leads
from wangjian.bootstrap import get_app
from wangjian.orchestration import dated_run_name


@flow(name="implementation", flow_run_name=dated_run_name("implementation"))
def implementation(as_of: str | None = None, lead_files: list[str] | None = None) -> dict[str, Any]:
    """Dispatch each lead file (their notices wait), then sweep — one send for the whole day."""
    moment = get_app().as_of(as_of).isoformat()
    dispatched = [dispatch_leads(path=path, as_of=moment, send=False) for path in lead_files or []]
    swept = deadline_sweep(as_of=moment)
    return {"dispatched": dispatched, "sweep": swept}
