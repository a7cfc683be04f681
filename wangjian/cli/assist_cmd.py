"""`wangjian assist`: assistance requests to platforms (协查) — make one, list them, record an
answer received outside the portal."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from wangjian.cli.common import (
    Failure,
    InputError,
    app_from_environment,
    err,
    handle_errors,
    out,
    print_json,
)

assist = typer.Typer(
    help="协查 Assistance requests to platforms: make, list, record answers.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(assist, name="assist")


@assist.command("request")
@handle_errors
def request(
    platform: str = typer.Option(..., "--platform", help="Platform code (config/platforms.yaml)."),
    referral: int | None = typer.Option(None, "--referral", help="The referral it is about."),
    lead: int | None = typer.Option(
        None, "--lead", help="Or the lead it is about (the ledger's lead id, as in the portal)."
    ),
    ask: list[str] = typer.Option(
        ...,
        "--ask",
        help="What is asked, repeatable: identity, sales, listings, logistics, payments.",
    ),
    detail: str | None = typer.Option(None, "--detail", help="What exactly, in words."),
    basis: str | None = typer.Option(
        None, "--basis", help="Legal basis (default: assist_basis in config/platforms.yaml)."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="ISO date or datetime the request is made; its clock starts then."
    ),
    send: bool = typer.Option(True, "--send/--no-send", help="Send the request by e-mail now."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Ask a platform for data about the shop of a referral or a lead (协查函), on an hour clock."""
    from flows.request_assistance import request_assistance

    app = app_from_environment()
    app.as_of(as_of)  # a bad --as-of stops here, before a flow run starts
    if (referral is None) == (lead is None):
        raise InputError("give --referral or --lead (one of them)")
    result = request_assistance(
        platform=platform,
        asked=ask,
        referral_id=referral,
        lead_id=lead,
        detail=detail,
        legal_basis=basis,
        as_of=as_of,
        send=send,
    )
    if result["id"] is None:
        raise Failure(result["reason"])
    sent = (result.get("notifications") or {}).get("sent", 0)
    if as_json:
        print_json({**result, "notifications_sent": sent})
        return
    if result["created"]:
        err.print(
            f"[green]✓[/] 协查请求 {result['id']} → {platform},"
            f"答复期限 due {result['due_at']:%Y-%m-%d %H:%M}; 发出邮件 sent {sent}",
            highlight=False,
        )
    else:
        err.print(f"[yellow]![/] {result['reason']}", highlight=False)


@assist.command("list")
@handle_errors
def list_requests(
    platform: str | None = typer.Option(None, "--platform", help="Only this platform's."),
    status: str | None = typer.Option(
        None, "--status", help="open, overdue, answered, no_such_operator."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="Judge 'overdue' as of (now)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The assistance requests, open and overdue first, with their due times and answers."""
    from wangjian.ledger.assist import list_assist_requests

    app = app_from_environment()
    moment = app.as_of(as_of)
    with app.sessions() as session:
        rows = list_assist_requests(session, app, now=moment, platform_code=platform, status=status)
    if as_json:
        print_json({"assists": [_plain(r) for r in rows]})
        return
    table = Table(
        "id", "平台 platform", "移送 referral", "状态 status", "期限 due", "答复 answered", "用时 h"
    )
    for r in rows:
        state = r["status"] + (" [red](overdue)[/]" if r["overdue"] else "")
        table.add_row(
            str(r["id"]),
            r["platform"],
            str(r["referral_id"] or "—"),
            state,
            f"{r['due_at']:%Y-%m-%d %H:%M}",
            f"{r['answered_at']:%Y-%m-%d %H:%M}" if r["answered_at"] else "—",
            str(r["answer_hours"] if r["answer_hours"] is not None else "—"),
        )
    out.print(table)


def _plain(row: dict[str, object]) -> dict[str, object]:
    keys = (
        "id",
        "platform",
        "referral_id",
        "lead_id",
        "asked",
        "status",
        "overdue",
        "requested_at",
        "due_at",
        "answered_at",
        "answer_hours",
        "answer_file_name",
        "answer_note",
    )
    return {k: row[k] for k in keys}


@assist.command("answer")
@handle_errors
def answer(
    assist_id: int = typer.Argument(..., help="The request's id."),
    file: Path | None = typer.Option(
        None, "--file", help="The data file the platform sent (XLSX, CSV, ZIP or PDF)."
    ),
    no_such_operator: bool = typer.Option(
        False, "--no-such-operator", help="The platform holds no such operator."
    ),
    note: str | None = typer.Option(None, "--note", help="How it came, what it says."),
    as_of: str | None = typer.Option(None, "--as-of", help="When the answer came (now)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Record a platform's answer that came outside the portal; its clock stops."""
    from agencies.errors import Refused
    from flows.record_assist_answer import record_assist_answer_flow
    from wangjian.ledger.assist import ANSWERED, NO_SUCH_OPERATOR, AssistRefused

    app = app_from_environment()
    app.as_of(as_of)
    if no_such_operator and file is not None:
        raise InputError("--no-such-operator takes no --file")
    if not no_such_operator and file is None and not note:
        raise InputError("give --file (or a --note on how the data came), or --no-such-operator")
    if file is not None and not file.is_file():
        raise InputError(f"{file}: no such file")
    try:
        result = record_assist_answer_flow(
            assist_id=assist_id,
            outcome=NO_SUCH_OPERATOR if no_such_operator else ANSWERED,
            file_path=str(file.resolve()) if file else None,
            note=note,
            as_of=as_of,
        )
    except (AssistRefused, Refused) as refused:  # the ledger's refusal, or the file checks'
        raise Failure(f"{refused.zh} ({refused.en})") from None
    if as_json:
        print_json(result)
    else:
        err.print(f"[green]✓[/] 协查请求 {assist_id}: {result['status']}", highlight=False)
