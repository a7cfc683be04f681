"""Tasks of a partitioned dispatch: plan the partitions, start them on the workers, wait for
them, and close the file's import with their totals (wangjian.ledger.partitions)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.intake import ImportPlan
from wangjian.bootstrap import get_app
from wangjian.intake import FileInfo, RejectReport, inspect_lead_file, read_lead_chunks
from wangjian.ledger.dispatch import import_summary, open_lead_import
from wangjian.ledger.partitions import (
    ChunkRange,
    close_partitioned_import,
    open_partition,
    split_chunks,
)

PARTITION_DEPLOYMENT = "dispatch-partition/dispatch-partition"


@dataclass(frozen=True)
class PartitionPlan:
    """A file about to be dispatched in partitions (or found done, or begun unpartitioned)."""

    path: str
    file_import: int
    as_of: str
    status: str  # running | done
    rows_done: int  # rows the file's own import has committed (a plain dispatch's progress)
    chunks: list[ChunkRange]
    summary: dict[str, Any]  # the file import's result so far (all of it, once done)

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def begun_unpartitioned(self) -> bool:
        return self.rows_done > 0


@task(cache_policy=NO_CACHE)
def plan_partitions(
    path: str, as_of: str | None, partitions: int, chunk_rows: int
) -> PartitionPlan:
    """Inspect the file, open its import, and split its chunks into `partitions` ranges."""
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
    return PartitionPlan(
        path=str(info.path.resolve()),
        file_import=state.id,
        as_of=state.as_of.astimezone(app.tz).isoformat(),
        status=state.status,
        rows_done=state.rows_done,
        chunks=split_chunks(info.estimated_rows, chunk_rows, partitions),
        summary=import_summary(state, app.tz),
    )


def start_partitions(plan: PartitionPlan, chunk_rows: int) -> list[UUID]:
    """A run of the `dispatch-partition` deployment per range, for the workers to take. A run
    of this flow that is rescheduled (its worker died) finds the runs it started, not new ones."""
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    started = []
    for chunks in plan.chunks:
        run = run_deployment(
            PARTITION_DEPLOYMENT,
            parameters={
                "path": plan.path,
                "file_import": plan.file_import,
                "first_chunk": chunks.first,
                "last_chunk": chunks.last,
                "chunk_rows": chunk_rows,
            },
            timeout=0,
            idempotency_key=f"{flow_run.get_id()}:{chunks.name(plan.file_import)}",
        )
        started.append(run.id)  # type: ignore[union-attr]  # sync: run_deployment is dual-mode
    return started


@task(cache_policy=NO_CACHE)
def wait_for_partitions(run_ids: list[UUID], poll_seconds: float = 2.0) -> list[str]:
    """Wait until every partition run has ended; fail unless all completed."""
    from prefect.client.orchestration import get_client

    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run_id) for run_id in run_ids]
            states = [run.state for run in runs]
            if all(state is not None and state.is_final() for state in states):
                break
            time.sleep(poll_seconds)
    failed = [
        f"{run.name} ({state.name if state else '?'})"
        for run, state in zip(runs, states, strict=True)
        if state is None or not state.is_completed()
    ]
    if failed:
        raise RuntimeError(f"partitions not completed: {', '.join(failed)}")
    logger.info("%d partition(s) completed", len(runs))
    return [run.name for run in runs]


@task(cache_policy=NO_CACHE)
def open_partition_import(
    path: str, file_import: int, first_chunk: int, last_chunk: int | None
) -> ImportPlan:
    """Open (or find done, or resume) the import of one partition of a file."""
    from prefect.runtime import flow_run

    app = get_app()
    info = inspect_lead_file(path)
    state = open_partition(
        app=app,
        file_import=file_import,
        chunks=ChunkRange(first_chunk, last_chunk),
        flow_run_id=flow_run.get_id(),
    )
    if state.sha256 != info.sha256:
        raise ValueError(f"{path} is not the file of import {file_import} (its content changed)")
    report = RejectReport.for_import(
        app.settings.rejects_dir, import_id=state.id, file_name=info.path.name
    )
    if state.status != "done":
        report.reset()  # rewritten whole: resumed chunks are checked again
    return ImportPlan(file=info, state=state, report=report)


def read_partition(file: FileInfo, chunk_rows: int, chunks: ChunkRange) -> Iterator[pd.DataFrame]:
    """The chunks of the file in the range (those before it are read past, not checked)."""
    for index, chunk in enumerate(read_lead_chunks(file, chunk_rows)):
        if chunks.past(index):
            return
        if chunks.covers(index):
            yield chunk


@task(cache_policy=NO_CACHE)
def close_file_import(file_import: int) -> dict[str, Any]:
    """The file's import takes its partitions' totals and one reject report, and is done."""
    app = get_app()
    state = close_partitioned_import(
        app=app, file_import=file_import, rejects_dir=app.settings.rejects_dir
    )
    return import_summary(state, app.tz)
