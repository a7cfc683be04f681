"""Import the shared list of removed and sanctioned operators (一处清退、处处关店).

The story: open the import (a file seen before reports its finished result), then for each
chunk check the rows with the lead files' rules and list or delist its operators, close the
import and publish what happened. New leads about a listed operator are flagged from then on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from tasks.listed import (
    apply_listed,
    check_listed,
    close_listed_import,
    open_listed_file,
    publish_listed_report,
    read_listed,
)
from wangjian.intake import CHUNK_ROWS


def _run_name() -> str:
    parameters = flow_run.parameters
    return f"{Path(parameters['path']).name} @ {parameters.get('as_of') or 'now'}"


@flow(name="import-listed-operators", flow_run_name=_run_name, log_prints=False)
def import_listed_operators(
    path: str, as_of: str | None = None, actor: str = "office:cli", chunk_rows: int = CHUNK_ROWS
) -> dict[str, Any]:
    """List and delist the operators of a file (CSV, XLSX or JSON Lines)."""
    plan = open_listed_file(path, as_of)
    if plan.finished:
        return {**plan.state.summary(), "already_imported": True}
    for raw in read_listed(plan.file, chunk_rows):
        checked = check_listed(raw, plan.report, plan.today)
        apply_listed(plan.state.id, checked, int(raw["row"].max()), plan.report, actor)
    summary = close_listed_import(plan)
    publish_listed_report(summary)
    return {**summary, "already_imported": False}
