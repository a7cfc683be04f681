"""The office records a platform's answer to an assistance request that came another way."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.assist import record_assist_answer
from wangjian.bootstrap import get_app


@flow(name="record-assist-answer", log_prints=False)
def record_assist_answer_flow(
    assist_id: int,
    outcome: str,
    file_path: str | None = None,
    note: str | None = None,
    as_of: str | None = None,
    actor: str = "office:cli",
) -> dict[str, Any]:
    """Record the data file received (or that the platform holds no such operator)."""
    moment = get_app().as_of(as_of)
    return record_assist_answer(assist_id, outcome, file_path, note, moment, actor)
