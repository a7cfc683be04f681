"""A very large lead file, dispatched by several workers at once (partitions of its chunks).

The story: plan the partitions (or find the file done, or begun by a plain dispatch, which then
finishes it), start one `dispatch-partition` run per partition for the workers to take, wait for
them, give the file's import their totals, publish what happened, and send the notices — one
digest per agency for the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.dispatch_leads import dispatch_leads
from flows.send_notifications import send_notifications
from tasks.dispatch import publish_dispatch_report
from tasks.partitions import (
    close_file_import,
    plan_partitions,
    start_partitions,
    wait_for_partitions,
)
from wangjian.intake import CHUNK_ROWS


def _run_name() -> str:
    parameters = flow_run.parameters
    name = Path(parameters["path"]).name
    return f"{name} ×{parameters.get('partitions', 2)} @ {parameters.get('as_of') or 'now'}"


@flow(name="dispatch-partitioned", flow_run_name=_run_name, log_prints=False)
def dispatch_partitioned(
    path: str,
    as_of: str | None = None,
    partitions: int = 2,
    chunk_rows: int = CHUNK_ROWS,
    send: bool = True,
) -> dict[str, Any]:
    """Refer the leads of a large file with `partitions` workers (runs of `dispatch-partition`)."""
    plan = plan_partitions(path, as_of, partitions, chunk_rows)
    if plan.finished:
        return {**plan.summary, "already_imported": True}
    if plan.begun_unpartitioned:  # a plain dispatch was interrupted: it finishes what it began
        return dispatch_leads(path=path, as_of=as_of, send=send, chunk_rows=chunk_rows)
    runs = start_partitions(plan, chunk_rows)
    wait_for_partitions(runs)
    summary = close_file_import(plan.file_import)
    publish_dispatch_report(summary)
    if send:
        summary["notifications"] = send_notifications(as_of=as_of)
    return {**summary, "partitions": len(runs)}
