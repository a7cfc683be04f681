"""Flow `send_notifications`: drain the outbox — every due notice told once, by e-mail.

Dispatch and the daily sweep call it as a subflow after queuing their notices; on its own it
also picks up messages whose retry has come.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from tasks.send import compose_outbox, publish_send_report, send_outbox
from wangjian.bootstrap import get_app
from wangjian.ledger.sending import BatchReport


def _run_name() -> str:
    as_of = flow_run.parameters.get("as_of")
    return f"send-notifications-{as_of or 'now'}"


@flow(name="send-notifications", flow_run_name=_run_name)
def send_notifications(
    as_of: str | datetime | None = None, batch_size: int | None = None
) -> dict[str, Any]:
    """Compose the queued notices into messages, send them batch by batch, report to the office."""
    app = get_app()
    when = app.as_of(as_of)
    size = batch_size or app.settings.mail_batch_size
    composed = compose_outbox(when)
    totals = BatchReport()
    while True:
        batch = BatchReport(**send_outbox(when, size))
        totals.add(batch)
        if batch.claimed < size:  # a short batch: nothing due is left
            break
    publish_send_report(when, composed, totals.as_dict())
    return {"as_of": when.isoformat(), "composed": composed, **totals.as_dict()}
