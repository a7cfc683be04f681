"""Tasks of lead intake: open the import, read the file in chunks, check them, report rejects.

Each task is one stage on a whole file or a whole chunk, never on one lead. Chunks are passed
in memory, so none of these tasks caches or persists its result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from wangjian.bootstrap import get_app
from wangjian.intake import (
    CHUNK_ROWS,
    CheckedChunk,
    FileInfo,
    RejectReport,
    inspect_lead_file,
    read_lead_chunks,
    validate_lead_chunk,
)
from wangjian.ledger.dispatch import ImportState, import_summary, open_lead_import


@dataclass(frozen=True)
class ImportPlan:
    """An import about to run (or found finished): the file, its import and its reject report."""

    file: FileInfo
    state: ImportState
    report: RejectReport

    @property
    def finished(self) -> bool:
        return self.state.status == "done"

    def summary(self) -> dict[str, Any]:
        return import_summary(self.state, get_app().tz)


@task(cache_policy=NO_CACHE)
def open_import(path: str, as_of: str | None = None) -> ImportPlan:
    """Inspect the file (hash, encoding, header) and open its import, or find it done or
    interrupted; a bad file stops here with nothing written."""
    from prefect.runtime import flow_run

    app = get_app()
    info = inspect_lead_file(path)
    state = open_lead_import(
        app=app,
        file_name=info.path.name,
        sha256=info.sha256,
        as_of=app.as_of(as_of),
        flow_run_id=flow_run.get_id(),
    )
    report = RejectReport.for_import(
        app.settings.rejects_dir, import_id=state.id, file_name=info.path.name
    )
    if state.status != "done":
        report.reset()  # rewritten whole: resumed chunks are checked again
    return ImportPlan(file=info, state=state, report=report)


def read_leads(file: FileInfo, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file's rows, a chunk at a time (a million rows never sit in memory at once).

    Not a task: a generator task keeps its transaction open while it is suspended, and every
    task run meanwhile would be staged in it with its result — the whole file, in memory.
    """
    return read_lead_chunks(file, chunk_rows)


@task(cache_policy=NO_CACHE)
def check_leads(raw: pd.DataFrame, report: RejectReport) -> CheckedChunk:
    """Validate a chunk and write its rejected rows to the reject report."""
    checked = validate_lead_chunk(raw, categories=set(get_app().config.categories))
    report.append(checked.rejects)
    return checked


def report_path(report: RejectReport) -> str | None:
    path = report.result()
    return str(Path(path).resolve()) if path else None
