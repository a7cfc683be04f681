"""The campaign's statistics and report as of a day (`wangjian report`)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.report import build_report_files, publish_report_artifacts
from wangjian.orchestration import dated_run_name


@flow(name="campaign-report", flow_run_name=dated_run_name("report"), log_prints=True)
def campaign_report(as_of: str | None = None, out_dir: str | None = None) -> dict[str, Any]:
    """Statistics tables (XLSX), the HTML report with charts and the summary draft (Markdown)."""
    report = build_report_files(as_of, out_dir)
    publish_report_artifacts(report)
    return {k: v for k, v in report.items() if k not in ("tables", "summary_markdown")}
