"""Tasks of the shared list of removed operators: flag a chunk of leads, import a list file a
chunk at a time, take an operator off a list, and queue the platforms' digest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from wangjian.bootstrap import get_app
from wangjian.domain.listed import LIST_KINDS
from wangjian.intake import CHUNK_ROWS, CheckedChunk, FileInfo, RejectReport, read_lead_chunks
from wangjian.intake.columns import LISTED_SCHEMA
from wangjian.intake.listed import validate_listed_chunk
from wangjian.intake.readers import inspect_lead_file
from wangjian.ledger.db import reading, transaction
from wangjian.ledger.dispatch import LeadBatch
from wangjian.ledger.listed import (
    ListedImportState,
    apply_listed_chunk,
    delist_operator,
    finish_listed_import,
    flag_leads,
    open_listed_import,
    platform_names,
    queue_listed_digest,
)

# --- new leads ---------------------------------------------------------------------------------


@task(cache_policy=NO_CACHE)
def flag_listed_operators(batch: LeadBatch) -> LeadBatch:
    """Look the chunk's operators up on the shared list (credit code; platform and shop): a
    listed one makes its lead and referrals high priority, and the referrals' reasons say why."""
    app = get_app()
    with reading(app.engine) as session:  # beside the dispatcher writing the chunk before
        flags = flag_leads(session, app, batch.leads)
    leads = batch.leads.assign(
        priority=flags["priority"].to_numpy(dtype=object),
        listed_operator_id=flags["listed_operator_id"].to_numpy(dtype=object),
    )
    referrals = batch.referrals
    position = referrals["lead"].to_numpy(dtype=np.int64)
    notes = flags["listing_note"].to_numpy(dtype=object)[position]
    reasons = referrals["reason"].to_numpy(dtype=object).copy()
    noted = pd.notna(notes)
    reasons[noted] = [f"{r};{n}" for r, n in zip(reasons[noted], notes[noted], strict=True)]
    referrals = referrals.assign(
        priority=flags["priority"].to_numpy(dtype=object)[position],
        listed_operator_id=flags["listed_operator_id"].to_numpy(dtype=object)[position],
        reason=reasons,
    )
    return LeadBatch(leads, referrals, batch.rejected_rows, batch.last_row, batch.rows)


# --- a list file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedImportPlan:
    """A list import about to run (or found finished): the file, its import, its reject report."""

    file: FileInfo
    state: ListedImportState
    report: RejectReport
    today: date

    @property
    def finished(self) -> bool:
        return self.state.status == "done"


@task(cache_policy=NO_CACHE)
def open_listed_file(path: str, as_of: str | None = None) -> ListedImportPlan:
    """Inspect the list file (hash, encoding, header) and open its import, or find it done; a
    file that cannot be read stops here with nothing written."""
    from prefect.runtime import flow_run

    app = get_app()
    info = inspect_lead_file(path, schema=LISTED_SCHEMA)
    moment = app.as_of(as_of)
    state = open_listed_import(
        app=app,
        file_name=info.path.name,
        sha256=info.sha256,
        as_of=moment,
        flow_run_id=flow_run.get_id(),
    )
    report = RejectReport.for_import(
        app.settings.rejects_dir, import_id=state.id, file_name=info.path.name
    )
    if state.status != "done":
        report.reset()
    return ListedImportPlan(info, state, report, state.as_of.astimezone(app.tz).date())


def read_listed(file: FileInfo, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The list file's rows, a chunk at a time (not a task: see `tasks.intake.read_leads`)."""
    return read_lead_chunks(file, chunk_rows)


@task(cache_policy=NO_CACHE)
def check_listed(raw: pd.DataFrame, report: RejectReport, today: date) -> CheckedChunk:
    """Validate a chunk of the list with the lead files' rules; rejected rows to the report."""
    checked = validate_listed_chunk(raw, platforms=platform_names(get_app()), today=today)
    report.append(checked.rejects)
    return checked


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def apply_listed(
    import_id: int, checked: CheckedChunk, last_row: int, report: RejectReport, actor: str
) -> dict[str, int]:
    """List and delist the chunk's operators in one transaction; rows the ledger refuses (a
    delisting of an operator not on the list) go to the reject report."""
    applied = apply_listed_chunk(
        app=get_app(),
        import_id=import_id,
        valid=checked.valid,
        rejected_rows=checked.rejected_rows,
        last_row=last_row,
        actor=actor,
    )
    report.append(applied.rejects)
    return applied.counts


@task(cache_policy=NO_CACHE)
def close_listed_import(plan: ListedImportPlan) -> dict[str, Any]:
    app = get_app()
    path = plan.report.result()
    state = finish_listed_import(
        app=app,
        import_id=plan.state.id,
        reject_report=str(Path(path).resolve()) if path else None,
    )
    return state.summary(app.tz)


@task(cache_policy=NO_CACHE)
def publish_listed_report(summary: dict[str, Any]) -> None:
    """Artifacts for the office: what the list import did, and its reject report."""
    labels = {
        "listed": "新列入 listed",
        "relisted": "重新列入 listed again",
        "delisted": "移出 delisted",
        "unchanged": "已在名单 already listed",
        "duplicates": "文件内重复 repeated in the file",
        "rejected": "退回 rejected",
    }
    create_table_artifact(
        key="listed-import",
        table=[{"项目 item": label, "数量 count": summary[key]} for key, label in labels.items()],
        description=f"共享名单导入 shared list import — {summary['file']}",
    )
    if summary["reject_report"]:
        create_link_artifact(
            key="listed-reject-report",
            link=f"file://{summary['reject_report']}",
            link_text=f"退回清单 reject report ({summary['rejected']} 行 rows)",
            description=f"未导入的行及原因 — {summary['file']}",
        )


# --- one delisting ------------------------------------------------------------------------------


@task(cache_policy=NO_CACHE)
def delist_listed_operator(
    list_kind: str,
    credit_code: str | None,
    platform: str | None,
    shop_name: str | None,
    shop_id: str | None,
    reason: str | None,
    at: datetime,
    actor: str,
) -> dict[str, Any]:
    """Take an operator off a list: new leads about it are no longer flagged."""
    app = get_app()
    with transaction(app.sessions) as session:
        listing = delist_operator(
            session=session,
            app=app,
            list_kind=list_kind,
            credit_code=credit_code,
            platform=platform,
            shop_name=shop_name,
            shop_id=shop_id,
            reason=reason,
            on=at.astimezone(app.tz).date(),
            actor=actor,
            at=at,
        )
        return {
            "id": listing.id,
            "list_kind": listing.list_kind,
            "delisted_on": listing.delisted_on,
        }


# --- the digest --------------------------------------------------------------------------------


@task(cache_policy=NO_CACHE)
def queue_listed_digests(as_of: datetime) -> dict[str, Any]:
    """Queue each platform's digest of listings it has not been told of (once each)."""
    app = get_app()
    with transaction(app.sessions) as session:
        return queue_listed_digest(session=session, app=app, as_of=as_of)


@task(cache_policy=NO_CACHE)
def publish_digest_report(result: dict[str, Any]) -> None:
    """The office's view of a digest: how many listings went to each platform."""
    names = {p.code: p.name_zh for p in get_app().config.platforms_file.platforms}
    create_table_artifact(
        key="listed-digest",
        table=[
            {"平台 platform": names.get(code, code), "推送 items": count}
            for code, count in result["platforms"].items()
        ]
        or [{"说明": "无平台"}],
        description=(
            f"一处清退、处处关店:共享名单推送 {result['as_of']}(名录:"
            + "、".join(zh for zh, _ in LIST_KINDS.values())
            + ")"
        ),
    )
