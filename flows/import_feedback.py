"""Agencies' answers sent as a spreadsheet, read and applied (`wangjian feedback import`)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.feedback import apply_feedback_rows, read_feedback


@flow(name="import-feedback", log_prints=False)
def import_feedback(path: str, as_of: str | None = None) -> dict[str, Any]:
    """Read an agencies' feedback file and apply its acknowledgements, outcomes and requests."""
    feedback = read_feedback(path)
    return apply_feedback_rows(feedback, as_of)
