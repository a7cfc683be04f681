"""`wangjian leads import PATH` (through the dispatch-leads flow) and `wangjian referrals list`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import inspect

from wangjian.cli.common import (
    EXIT_PARTIAL,
    Failure,
    InputError,
    app_from_environment,
    err,
    handle_errors,
    print_json,
)

leads = typer.Typer(help="线索 Leads: import a file of leads.", no_args_is_help=True)
referrals = typer.Typer(help="移送 Referrals: list what went where.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(leads, name="leads")


def register_referrals(app: typer.Typer) -> None:
    app.add_typer(referrals, name="referrals")


def _require_ledger(app: Any) -> None:
    if "alembic_version" not in inspect(app.engine).get_table_names():
        raise Failure(
            "数据库尚未初始化,请先运行 `wangjian init` "
            f"(the database {app.engine.url.render_as_string(hide_password=True)} "
            "is not initialised: run `wangjian init`)"
        )


@contextmanager
def _progress_bar(app: Any, enabled: bool) -> Iterator[None]:
    """A progress bar on stderr (a terminal only), fed by the flow's progress reports."""
    if not enabled:
        yield
        return
    console_handlers = [
        h
        for name in ("prefect", "prefect.flow_runs", "prefect.task_runs")
        for h in logging.getLogger(name).handlers
        if type(h).__name__ == "PrefectConsoleHandler"
    ]
    levels = [h.level for h in console_handlers]
    for handler in console_handlers:  # run logs still reach the UI; the bar keeps the terminal
        handler.setLevel(logging.WARNING)
    with Progress(
        TextColumn("[bold]线索导入[/] leads"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("leads", total=None)

        def listener(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        app.extras["progress"] = listener
        try:
            yield
        finally:
            app.extras.pop("progress", None)
            for handler, level in zip(console_handlers, levels, strict=True):
                handler.setLevel(level)


@leads.command("import")
@handle_errors
def import_leads(
    path: Path = typer.Argument(..., help="CSV (UTF-8 or GB18030), XLSX or JSON Lines file."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="ISO date or datetime the leads are received (default: now)."
    ),
    send: bool = typer.Option(True, "--send/--no-send", help="Send the notices at the end."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Validate, deduplicate, route and refer the leads in PATH; queue and send the notices."""
    from flows.dispatch_leads import dispatch_leads
    from wangjian.intake import IntakeError, inspect_lead_header

    app = app_from_environment()
    app.as_of(as_of)  # a bad --as-of stops here, before any work
    _require_ledger(app)
    try:
        inspect_lead_header(path)  # a wrong header fails fast, without starting a flow run
        with _progress_bar(app, err.is_terminal):
            result = dispatch_leads(path=str(path.resolve()), as_of=as_of, send=send)
    except IntakeError as exc:
        raise InputError(str(exc)) from None
    output = {
        key: result[key]
        for key in ("imported", "duplicates", "rejected", "held", "referrals", "reject_report")
    }
    output.update(
        {
            k: result[k]
            for k in ("attached", "import_id", "as_of", "already_imported", "notifications")
            if k in result
        }
    )
    if as_json:
        print_json(output)
    else:
        _print_result(output)
    if result["rejected"]:
        err.print(
            f"退回清单 reject report: {result['reject_report']}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(EXIT_PARTIAL)


def _print_result(result: dict[str, Any]) -> None:
    if result.get("already_imported"):
        err.print("[yellow]![/] 此文件已导入过,以下为当时的结果 (this file was imported before)")
    err.print(
        f"[green]✓[/] 导入 imported {result['imported']} · 重复 duplicates "
        f"{result['duplicates']} · 退回 rejected {result['rejected']} · 待处理 held "
        f"{result['held']} · 并入 attached {result.get('attached', 0)}"
    )
    table = Table("单位 agency", "移送 referrals", title="线索移送 referrals")
    for agency, count in sorted(result["referrals"].items(), key=lambda kv: -kv[1]):
        table.add_row(agency, str(count))
    err.print(table)


@referrals.command("list")
@handle_errors
def list_referrals_command(
    agency: str | None = typer.Option(None, "--agency", help="Only this agency's referrals."),
    status: str | None = typer.Option(None, "--status", help="Only this status (open, …)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The referrals, with their ids, agencies, statuses and due dates."""
    from wangjian.ledger.dispatch import list_referrals

    app = app_from_environment()
    _require_ledger(app)
    with app.sessions() as session:
        rows = list_referrals(session, agency=agency, status=status, limit=limit)
    if as_json:
        print_json({"referrals": rows})
        return
    table = Table(
        "id", "线索 lead", "单位 agency", "类型 kind", "状态 status", "期限 due", title="移送"
    )
    shown = rows if limit else rows[:200]
    for row in shown:
        table.add_row(
            str(row["id"]),
            row["lead_id"],
            row["agency"],
            row["kind"],
            row["status"],
            row["due_on"],
        )
    err.print(table)
    if len(shown) < len(rows):
        err.print(f"… 共 {len(rows)} 条 (of {len(rows)}; use --json or --limit)")
