"""The deadline sweep's stages, each on the whole batch: obligations, the sweep, the office's view."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from wangjian.bootstrap import get_app
from wangjian.ledger.bulletin import OfficeDigest, build_office_digest
from wangjian.ledger.db import transaction
from wangjian.ledger.obligations import open_obligations
from wangjian.ledger.sweep import sweep_deadlines


@task(name="open-member-obligations")
def open_member_obligations(as_of: datetime) -> dict[str, int]:
    """Create members' obligations (and their clocks) the configuration calls for; idempotent."""
    app = get_app()
    with transaction(app.sessions) as session:
        return open_obligations(session=session, app=app, as_of=as_of)


@task(name="sweep-deadlines")
def sweep_clocks(as_of: datetime, subject_types: list[str] | None = None) -> dict[str, Any]:
    """Send every ladder step due by `as_of` to the outbox and move the clocks on (all of
    them, or only those of `subject_types`)."""
    app = get_app()
    with transaction(app.sessions) as session:
        return sweep_deadlines(
            session=session, app=app, as_of=as_of, subject_types=subject_types
        ).as_json()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready rows (numpy numbers and dates made plain)."""
    if frame.empty:
        return [{"说明": "无"}]
    return list(json.loads(frame.to_json(orient="records", force_ascii=False, date_format="iso")))


def write_bulletin(digest: OfficeDigest, reports_dir: Path, day: str) -> Path:
    """Keep the draft bulletin as a file the office can edit (`reports/bulletins/<day>.md`)."""
    path = reports_dir / "bulletins" / f"{day}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest.bulletin, encoding="utf-8")
    return path


@task(name="publish-office-artifacts")
def publish_office_artifacts(as_of: datetime) -> dict[str, Any]:
    """The office's tables and draft bulletin, as Prefect artifacts and a Markdown file."""
    app = get_app()
    with app.sessions() as session:
        digest = build_office_digest(session=session, app=app, as_of=as_of)
    day = as_of.astimezone(app.tz).date().isoformat()
    create_table_artifact(
        key="overdue-by-agency",
        table=_records(digest.overdue_by_agency),
        description=f"# 逾期事项(按单位) {day}",
    )
    create_table_artifact(
        key="escalations-today",
        table=_records(digest.escalations_today),
        description=f"# 今日升级督办 {day}",
    )
    create_table_artifact(
        key="report-status-board",
        table=_records(digest.report_board),
        description=f"# 成员单位报送情况 {day}",
    )
    create_markdown_artifact(
        key="draft-bulletin", markdown=digest.bulletin, description=f"通报(草稿) {day}"
    )
    path = write_bulletin(digest, app.settings.reports_dir, day)
    return {**digest.figures, "bulletin": str(path)}
