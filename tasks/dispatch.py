"""Tasks of dispatch: route a chunk, refer it in the ledger, close the import, publish results."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from tasks.intake import ImportPlan, report_path
from wangjian.bootstrap import get_app
from wangjian.domain.routing import RoutingTable
from wangjian.domain.routing import route_leads as route
from wangjian.intake import CheckedChunk
from wangjian.ledger.dispatch import (
    LeadBatch,
    dispatch_batch,
    finish_lead_import,
    import_summary,
)
from wangjian.ledger.dispatcher import dispatcher


def _routing_table() -> RoutingTable:
    """The campaign's routing table, read from its configuration once per App."""
    app = get_app()
    table = app.extras.get("routing_table")
    if table is None:
        table = app.extras["routing_table"] = RoutingTable.from_config(app.config)
    return table


@task(cache_policy=NO_CACHE)
def route_leads(checked: CheckedChunk, last_row: int) -> LeadBatch:
    """Route a checked chunk: category, agency, place, crime; and the leads' identity keys."""
    routing = route(_routing_table(), checked.valid)
    return LeadBatch.assemble(
        checked.valid,
        routing,
        rejected_rows=checked.rejected_rows,
        last_row=last_row,
        rows=checked.rows,
    )


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def refer_leads(import_id: int, batch: LeadBatch, apart: bool = False) -> dict[str, Any]:
    """Write a chunk's leads, referrals, clocks and notices in one transaction (idempotent);
    `apart`: in the dispatcher process, beside the checking of the next chunk."""
    app = get_app()
    if apart:
        return dispatcher(app).dispatch(import_id, batch)
    return dispatch_batch(app=app, import_id=import_id, batch=batch)


@task(cache_policy=NO_CACHE)
def close_import(plan: ImportPlan) -> dict[str, Any]:
    """Mark the import done and return its result (CONTRACT.md's keys)."""
    app = get_app()
    state = finish_lead_import(
        app=app, import_id=plan.state.id, reject_report=report_path(plan.report)
    )
    return import_summary(state, app.tz)


@task(cache_policy=NO_CACHE)
def publish_dispatch_report(summary: dict[str, Any]) -> None:
    """Artifacts for the office: referrals per agency, the counts, the reject report."""
    config = get_app().config
    agencies = config.agencies
    rows = [
        {
            "agency": code,
            "name": agencies[code].name_zh if code in agencies else "异地监管部门(移出)",
            "referrals": count,
        }
        for code, count in sorted(summary["referrals"].items(), key=lambda kv: -kv[1])
    ]
    create_table_artifact(
        key="dispatch-referrals",
        table=rows,
        description=f"线索移送:各单位移送数 — {summary['file']}(as of {summary['as_of']})",
    )
    counts = [
        {"项目 item": "导入 imported", "数量 count": summary["imported"]},
        {"项目 item": "重复 duplicates", "数量 count": summary["duplicates"]},
        {"项目 item": "退回 rejected", "数量 count": summary["rejected"]},
        {"项目 item": "待办公室处理 held", "数量 count": summary["held"]},
        {"项目 item": "并入已移送线索 attached as evidence", "数量 count": summary["attached"]},
    ]
    create_table_artifact(
        key="dispatch-counts", table=counts, description=f"线索导入结果 — {summary['file']}"
    )
    if summary["reject_report"]:
        create_link_artifact(
            key="dispatch-reject-report",
            link=f"file://{summary['reject_report']}",
            link_text=f"退回清单 reject report ({summary['rejected']} 行 rows)",
            description=f"未导入的行及原因 — {summary['file']}",
        )


def start_progress(plan: ImportPlan) -> Any:
    """A progress artifact for the import, to follow it in the UI while it runs."""
    return create_progress_artifact(
        progress=0.0,
        key="dispatch-progress",
        description=f"线索导入进度 — {plan.file.path.name}",
    )


def report_progress(artifact_id: Any, rows_done: int, rows_total: int) -> None:
    """Move the progress artifact, and the command line's bar when one is listening."""
    share = min(rows_done / rows_total, 1.0) if rows_total else 1.0
    if artifact_id is not None:
        update_progress_artifact(artifact_id=artifact_id, progress=round(100 * share, 1))
    listener = get_app().extras.get("progress")
    if listener is not None:
        listener(rows_done, rows_total)
