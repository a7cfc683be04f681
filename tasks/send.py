"""Tasks that drain the outbox: compose messages, send one batch per task run, report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from wangjian.bootstrap import get_app
from wangjian.ledger.sending import compose_outbox_messages, outbox_counts, send_batch

# The state of every message lives in the ledger; a cached or retried task run must never
# stand in for the real thing, so these tasks are neither cached nor retried by Prefect.


@task(name="compose-messages", cache_policy=NO_CACHE)
def compose_outbox(as_of: datetime) -> int:
    """Group queued notices into messages (one per recipient and group, split by the cap)."""
    created = compose_outbox_messages(app=get_app(), as_of=as_of)
    get_run_logger().info("composed %d new message(s)", created)
    return created


@contextmanager
def smtp_slot(limit: str | None) -> Iterator[None]:
    """Hold a slot of the named global concurrency limit while talking to the relay (strict: a
    limit configured but missing on the server stops the send rather than going unlimited).
    The lease is renewed while the batch runs; a sender that dies frees its slot within 60 s."""
    if not limit:
        yield
        return
    with concurrency(limit, occupy=1, lease_duration=60, strict=True):
        yield


@task(name="send-outbox", cache_policy=NO_CACHE)
def send_outbox(as_of: datetime, batch_size: int) -> dict[str, Any]:
    """Claim, render and send one batch of due messages; mark each sent, retrying or failed."""
    app = get_app()
    with smtp_slot(app.settings.smtp.concurrency_limit):
        report = send_batch(app=app, mailer=app.mailer, as_of=as_of, limit=batch_size)
    get_run_logger().info(
        "batch: %d claimed, %d sent, %d to retry, %d failed",
        report.claimed,
        report.sent,
        report.retrying,
        report.failed,
    )
    return report.as_dict()


def _cell(value: object) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


@task(name="publish-send-report", cache_policy=NO_CACHE)
def publish_send_report(as_of: datetime, composed: int, totals: dict[str, Any]) -> str:
    """A Markdown artifact for the office: counts, and the permanent failures with the reply."""
    app = get_app()
    with app.sessions() as session:
        waiting = outbox_counts(session=session)
    lines = [
        f"## 通知发送 Notifications — {as_of:%Y-%m-%d %H:%M}",
        "",
        "| | |",
        "|---|---:|",
        f"| 新组成邮件 messages composed | {composed} |",
        f"| 已发送 sent | {totals['sent']} |",
        f"| 待重试 retrying (transient failure) | {totals['retrying']} |",
        f"| 失败 failed (permanent) | {totals['failed']} |",
        f"| 撤回 cancelled (its items resolved meanwhile) | {totals['cancelled']} |",
        f"| 中断后重发 resent after an interrupted send | {totals['resent']} |",
        "",
        "发件箱 outbox now: " + ", ".join(f"{k} {v}" for k, v in waiting.items()),
        "",
        "### 发送失败 Permanent failures (this run)",
        "",
    ]
    failures = totals["failures"]
    if failures:
        lines += [
            "| message | recipient | kind | subject | attempts | server's reply |",
            "|---:|---|---|---|---:|---|",
        ]
        lines += [
            "| "
            + " | ".join(
                _cell(f[k])
                for k in ("message", "recipient", "kind", "subject", "attempts", "reply")
            )
            + " |"
            for f in failures
        ]
        lines += ["", "`wangjian outbox list --status failed` lists every failed message."]
    else:
        lines.append("无 none.")
    markdown = "\n".join(lines)
    create_markdown_artifact(
        markdown=markdown, key="outbox-send", description="Notifications sent, retrying, failed"
    )
    return markdown
