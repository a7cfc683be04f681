"""Summary (总结): check every member's package, chase what is missing, compile the report."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.campaign_report import campaign_report
from flows.deadline_sweep import deadline_sweep
from tasks.campaign import chase_incomplete_packages, check_member_packages
from wangjian.bootstrap import get_app
from wangjian.orchestration import dated_run_name


@flow(name="summary", flow_run_name=dated_run_name("summary"))
def summary(as_of: str | None = None, compile_report: bool | None = None) -> dict[str, Any]:
    """Completeness check and chase; once every package is in (or due), the campaign's report."""
    app = get_app()
    moment = app.as_of(as_of)
    checks = check_member_packages(moment)
    chased = chase_incomplete_packages(moment, checks)
    swept = deadline_sweep(as_of=moment.isoformat())
    complete = sum(1 for c in checks if c["complete"])
    due = app.config.deadlines.summary_package.due
    if compile_report is None:
        compile_report = complete == len(checks) or moment.astimezone(app.tz).date() >= due
    report = None
    if compile_report:
        folder = app.settings.reports_dir / f"final-{moment.astimezone(app.tz).date().isoformat()}"
        report = campaign_report(as_of=moment.isoformat(), out_dir=str(folder))
    return {
        "packages_complete": complete,
        "members": len(checks),
        "chased": chased,
        "sweep": swept,
        "report": report,
    }
