"""The dispatch of a lead file: check, deduplicate, route and refer every lead, chunk by chunk.

The story of an import: open it (a file seen before resumes where it stopped, or reports its
finished result), then for each chunk of the file — check the rows, route them, flag those about
operators on the shared list of removed operators, refer them in the ledger with their clocks
and notices — while the next chunk is already being read; close the import, publish what
happened, and send the notices.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from tasks.dispatch import (
    close_import,
    publish_dispatch_report,
    refer_leads,
    report_progress,
    route_leads,
    start_progress,
)
from tasks.intake import check_leads, open_import, read_leads
from tasks.listed import flag_listed_operators
from wangjian.bootstrap import get_app
from wangjian.intake import CHUNK_ROWS
from wangjian.ledger.dispatcher import dispatcher, writes_apart

IN_FLIGHT = 2  # chunks referred while the next is read: enough to keep both stages busy


def _run_name() -> str:
    parameters = flow_run.parameters
    return f"{Path(parameters['path']).name} @ {parameters.get('as_of') or 'now'}"


def _sender() -> Any:
    """The notification flow, when this installation has it (it is another stage's work)."""
    try:
        from flows.send_notifications import send_notifications
    except ModuleNotFoundError as exc:
        if exc.name not in ("flows.send_notifications", "flows"):
            raise
        return None
    return send_notifications


@flow(name="dispatch-leads", flow_run_name=_run_name, log_prints=False)
def dispatch_leads(
    path: str, as_of: str | None = None, send: bool = True, chunk_rows: int = CHUNK_ROWS
) -> dict[str, Any]:
    """Refer the leads of a file (CSV, XLSX or JSON Lines) to the agencies responsible."""
    plan = open_import(path, as_of)
    if plan.finished:
        return {**plan.summary(), "already_imported": True}
    progress = start_progress(plan)
    app = get_app()
    apart = writes_apart(app, plan.file.estimated_rows)  # a large file: written beside
    if apart:
        dispatcher(app).start()  # it starts up while the first chunk is checked
    in_flight: deque[PrefectFuture[dict[str, Any]]] = deque()
    rows_done = plan.state.rows_done
    for raw in read_leads(plan.file, chunk_rows):
        checked = check_leads(raw, plan.report)
        batch = route_leads(checked, last_row=int(raw["row"].max()))
        batch = flag_listed_operators(batch)
        while len(in_flight) >= IN_FLIGHT:
            rows_done += in_flight.popleft().result().get("rows", 0)
            report_progress(progress, rows_done, plan.file.estimated_rows)
        previous = list(in_flight)[-1:]
        # Chunks are referred in file order: each waits for the one before.
        future = refer_leads.submit(plan.state.id, batch, apart, wait_for=previous)  # type: ignore[call-overload]
        in_flight.append(future)
    while in_flight:
        rows_done += in_flight.popleft().result().get("rows", 0)
        report_progress(progress, rows_done, plan.file.estimated_rows)
    summary = close_import(plan)
    publish_dispatch_report(summary)
    send_notifications = _sender()
    if send and send_notifications is not None:
        summary["notifications"] = send_notifications(as_of=as_of)
    return summary
