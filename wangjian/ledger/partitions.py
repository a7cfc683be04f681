"""A lead file dispatched in partitions, by several workers at once.

The file's own import (partition `all`, as for `dispatch-leads`) stands for the whole file: it
is what a second import of the same file finds, and it carries the totals once every partition
is done. Each partition is an import of its own, keyed (kind, file SHA-256, partition) with the
partition named `<file import id>/<first chunk>-<last chunk or end>`: it resumes after its last
committed chunk like any import, and its referral notices join the file's digest
(`wangjian.ledger.dispatch.notice_group`). Dispatchers still write one chunk at a time (the
ledger's dispatch lock); what partitions spread over workers is reading, checking and routing.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from wangjian.bootstrap import App
from wangjian.ledger.db import transaction
from wangjian.ledger.dispatch import (
    LEAD_IMPORT,
    ZERO_COUNTS,
    ImportState,
    open_lead_import,
)
from wangjian.ledger.events import record_events
from wangjian.ledger.models import Import


@dataclass(frozen=True)
class ChunkRange:
    """Chunks `first` to `last` of a file (0-based, both included); `last` None: to the end."""

    first: int
    last: int | None

    def covers(self, index: int) -> bool:
        return index >= self.first and (self.last is None or index <= self.last)

    def past(self, index: int) -> bool:
        return self.last is not None and index > self.last

    def name(self, file_import: int) -> str:
        return f"{file_import}/{self.first}-{'end' if self.last is None else self.last}"


def split_chunks(estimated_rows: int, chunk_rows: int, partitions: int) -> list[ChunkRange]:
    """Contiguous chunk ranges, as even as the chunks allow; the last one runs to the end (an
    estimate of a file's rows can fall short: quoted line breaks, unreadable rows)."""
    chunks = max(1, -(-estimated_rows // chunk_rows))
    partitions = max(1, min(partitions, chunks))
    bounds = [round(i * chunks / partitions) for i in range(partitions + 1)]
    ranges = [ChunkRange(bounds[i], bounds[i + 1] - 1) for i in range(partitions)]
    ranges[-1] = ChunkRange(ranges[-1].first, None)
    return ranges


def open_partition(
    *, app: App, file_import: int, chunks: ChunkRange, flow_run_id: str | None = None
) -> ImportState:
    """The import of one partition of a file whose own import is `file_import`."""
    with app.sessions() as session:
        parent = session.get(Import, file_import)
        if parent is None or parent.kind != LEAD_IMPORT or parent.partition != "all":
            raise ValueError(f"import {file_import} is not a lead file's import")
        file_name, sha256, as_of = parent.file_name, parent.file_sha256, parent.as_of
    return open_lead_import(
        app=app,
        file_name=file_name,
        sha256=sha256,
        as_of=as_of,
        flow_run_id=flow_run_id,
        partition=chunks.name(file_import),
    )


def partition_states(*, app: App, file_import: int) -> list[ImportState]:
    """The partitions of a file's import, in file order."""
    with app.sessions() as session:
        rows = session.scalars(
            select(Import).where(
                Import.kind == LEAD_IMPORT, Import.partition.like(f"{file_import}/%")
            )
        ).all()
        states = [ImportState.of(row) for row in rows]
    by_name = {row.id: row.partition for row in rows}
    return sorted(states, key=lambda s: int(by_name[s.id].split("/")[1].split("-")[0]))


def close_partitioned_import(*, app: App, file_import: int, rejects_dir: Path) -> ImportState:
    """Once every partition is done: the file's import takes their totals and one reject report
    (the partitions' reports joined, in file order), and is done. Idempotent."""
    parts = partition_states(app=app, file_import=file_import)
    unfinished = [p.id for p in parts if p.status != "done"]
    if not parts or unfinished:
        raise RuntimeError(f"import {file_import}: partitions not done: {unfinished or 'none'}")
    with transaction(app.sessions) as session:
        row = session.get(Import, file_import, with_for_update=True)
        assert row is not None, f"no import {file_import}"
        if row.status == "done":
            return ImportState.of(row)
        totals = combine_counts([p.counts for p in parts])
        row.counts = {**totals, "terms": parts[0].counts.get("terms", {}), "partitions": len(parts)}
        row.rows_read = max(p.rows_done for p in parts)
        row.chunks_done = sum(p.chunks_done for p in parts)
        row.reject_report = _join_reports(
            [p.reject_report for p in parts], rejects_dir, file_import, row.file_name
        )
        row.status = "done"
        row.finished_at = datetime.now(UTC)
        record_events(
            session,
            [
                {
                    "at": row.as_of,
                    "actor": "system:dispatch",
                    "action": "import_finished",
                    "subject_type": "import",
                    "subject_id": row.id,
                    "origin": None,
                    "data": {"counts": totals, "partitions": [p.id for p in parts]},
                }
            ],
        )
        return ImportState.of(row)


def combine_counts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the partitions' counts (and their referrals per agency)."""
    total: dict[str, Any] = {**ZERO_COUNTS, "referrals": {}}
    referrals: Counter[str] = Counter()
    for counts in parts:
        for key, value in counts.items():
            if key == "referrals":
                referrals.update(value or {})
            elif isinstance(value, int) and not isinstance(value, bool):
                total[key] = int(total.get(key) or 0) + value
    total["referrals"] = dict(sorted(referrals.items()))
    return total


def _join_reports(
    reports: list[str | None], rejects_dir: Path, file_import: int, file_name: str
) -> str | None:
    present = [Path(r) for r in reports if r and Path(r).exists()]
    if not present:
        return None
    stem = Path(file_name).stem[:80] or "leads"
    target = Path(rejects_dir) / f"import-{file_import}-{stem}-rejects.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        for index, report in enumerate(present):
            with report.open(encoding="utf-8-sig", newline="") as part:
                rows = csv.reader(part)
                header = next(rows, None)
                if index == 0 and header:
                    writer.writerow(header)
                writer.writerows(rows)
    return str(target.resolve())
