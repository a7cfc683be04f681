"""Tasks of the feedback import: read a file, apply its rows (one batch each)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from agencies.feedback import FeedbackFile, apply_feedback, read_feedback_file
from wangjian.bootstrap import get_app


@task(name="read-feedback", cache_policy=NO_CACHE)
def read_feedback(path: str) -> FeedbackFile:
    """Read and check a feedback file (a wrong header or an unreadable file stops the run)."""
    return read_feedback_file(path)


@task(name="apply-feedback", cache_policy=NO_CACHE)
def apply_feedback_rows(feedback: FeedbackFile, as_of: str | None) -> dict[str, Any]:
    """Apply the rows: good ones go through, bad ones go to the reject report."""
    app = get_app()
    return apply_feedback(app=app, feedback=feedback, as_of=app.as_of(as_of)).as_json()
