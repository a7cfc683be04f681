"""The periodic digest of the shared list to platforms (一处清退、处处关店; Mondays 10:00 by
default, `listed_digest_cron` in config/platforms.yaml): each platform hears once of every
operator newly listed that it hosts or may host, and of delistings it was told of, then the mail."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.send_notifications import send_notifications
from tasks.listed import publish_digest_report, queue_listed_digests
from wangjian.bootstrap import get_app


@flow(name="listed-digest")
def listed_digest(as_of: str | None = None, send: bool = True) -> dict[str, Any]:
    """Queue every platform's digest as of `as_of` (now by default) and send it."""
    moment = get_app().as_of(as_of)
    queued = queue_listed_digests(moment)
    publish_digest_report(queued)
    if send:
        queued["notifications"] = send_notifications(as_of=moment.isoformat())
    return queued
