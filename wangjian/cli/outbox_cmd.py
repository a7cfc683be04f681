"""`wangjian outbox`: the e-mails waiting, sent or failed — and sending what is due now."""

from __future__ import annotations

import typer
from rich.table import Table

from wangjian.cli.common import Failure, app_from_environment, err, handle_errors, out, print_json

outbox = typer.Typer(
    help="The outbox of e-mails: list them, send what is due, retry failed ones.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(outbox, name="outbox")


@outbox.command("list")
@handle_errors
def list_messages(
    status: list[str] = typer.Option(
        [], "--status", help="Only these statuses: ready, sending, retry, sent, failed."
    ),
    limit: int = typer.Option(200, min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """List messages with their status, attempts and the server's last reply."""
    from wangjian.ledger import sending

    unknown = sorted(set(status) - set(sending.STATUSES))
    if unknown:
        raise Failure(f"unknown status {', '.join(unknown)} (one of {', '.join(sending.STATUSES)})")
    app = app_from_environment()
    with app.sessions() as session:
        rows = sending.list_messages(session=session, statuses=status, limit=limit)
        counts = sending.outbox_counts(session=session)
    if as_json:
        print_json({"messages": rows, "counts": counts})
        return
    table = Table(
        "id", "状态 status", "类型 kind", "收件人 recipient", "次数", "主题 subject / 回复 reply"
    )
    for row in rows:
        detail = row["subject"] or ""
        if row["last_error"]:
            detail += f"\n[red]{row['last_error']}[/]" if detail else f"[red]{row['last_error']}[/]"
        table.add_row(
            str(row["id"]),
            row["status"],
            row["kind"],
            row["recipient"],
            str(row["attempts"]),
            detail,
        )
    out.print(table)
    err.print(" · ".join(f"{k} {v}" for k, v in counts.items()), highlight=False)


@outbox.command("send")
@handle_errors
def send(
    as_of: str | None = typer.Option(None, "--as-of", help="ISO date or datetime (default now)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Send every message that is due now (runs the send-notifications flow)."""
    from flows.send_notifications import send_notifications

    app = app_from_environment()
    app.as_of(as_of)  # a malformed --as-of stops here, before Prefect starts
    result = send_notifications(as_of=as_of)
    if as_json:
        print_json(result)
        return
    err.print(
        f"[green]✓[/] 发送 sent {result['sent']} · 待重试 retrying {result['retrying']} · "
        f"失败 failed {result['failed']}",
        highlight=False,
    )
    for failure in result["failures"]:
        err.print(f"[red]✗[/] {failure['recipient']}: {failure['reply']}", highlight=False)


@outbox.command("retry")
@handle_errors
def retry(
    ids: list[int] = typer.Argument(..., help="Ids of failed messages (see `outbox list`)."),
    as_of: str | None = typer.Option(None, "--as-of", help="ISO date or datetime (default now)."),
) -> None:
    """Give failed messages another go, e.g. after an address was corrected in the config."""
    from wangjian.ledger.db import transaction
    from wangjian.ledger.sending import requeue_messages

    app = app_from_environment()
    with transaction(app.sessions) as session:
        count = requeue_messages(session=session, ids=ids, as_of=app.as_of(as_of))
    err.print(f"[green]✓[/] {count} message(s) will be sent again by `wangjian outbox send`")
