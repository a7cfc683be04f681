"""Tasks of assistance requests to platforms (协查): make a batch of requests, record answers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from portal.uploads import DATA_FILES, store_upload
from wangjian.bootstrap import get_app
from wangjian.ledger.assist import (
    AlreadyRequested,
    AnswerFile,
    AssistRefused,
    answer_assistance,
    request_assistance,
)
from wangjian.ledger.db import transaction


@task(cache_policy=NO_CACHE)
def make_assist_requests(requests: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """Make each request (its hour clock and notice), one transaction each: an identical open
    request is found again, not made twice; a refused one says why."""
    app = get_app()
    results: list[dict[str, Any]] = []
    for asked in requests:
        try:
            with transaction(app.sessions) as session:
                made = request_assistance(session=session, app=app, at=at, **asked)
                results.append(
                    {"id": made.id, "created": True, "due_at": made.due_at.astimezone(app.tz)}
                )
        except AlreadyRequested as again:
            results.append({"id": again.existing, "created": False, "reason": again.zh})
        except AssistRefused as refused:
            results.append({"id": None, "created": False, "reason": refused.zh})
    create_table_artifact(
        key="assist-requests",
        table=[{k: str(v) for k, v in r.items()} for r in results] or [{"说明": "无"}],
        description=f"协查请求 assistance requests — {at:%Y-%m-%d %H:%M}",
    )
    return results


@task(cache_policy=NO_CACHE)
def record_assist_answer(
    assist_id: int,
    outcome: str,
    file_path: str | None,
    note: str | None,
    at: datetime,
    actor: str,
) -> dict[str, Any]:
    """The office's record of a platform's answer received another way (a data file it was
    sent, or no such operator): the file is checked and kept like an upload; the clock stops."""
    app = get_app()
    kept = None
    if file_path:
        path = Path(file_path)
        with path.open("rb") as stream:
            kept = store_upload(
                settings=app.settings.portal,
                filename=path.name,
                stream=stream,
                role="assist_answer",
                allowed=DATA_FILES,
                at=at,
            )
    try:
        with transaction(app.sessions) as session:
            request = answer_assistance(
                session=session,
                app=app,
                assist_id=assist_id,
                platform_code=None,
                outcome=outcome,
                file=AnswerFile(kept.path, kept.name, kept.sha256, kept.size) if kept else None,
                note=note,
                actor=actor,
                at=at,
            )
            return {
                "id": request.id,
                "status": request.status,
                "answered_at": at.astimezone(app.tz),
                "file": request.answer_file_name,
            }
    except AssistRefused:
        if kept is not None:
            from portal.uploads import remove_stored

            remove_stored(app.settings.portal, [kept])
        raise
