"""`wangjian feedback import PATH`: agencies' answers from a spreadsheet (CSV or XLSX)."""

from __future__ import annotations

from pathlib import Path

import typer

from wangjian.cli.common import (
    EXIT_PARTIAL,
    InputError,
    app_from_environment,
    err,
    handle_errors,
    print_json,
)

feedback_app = typer.Typer(
    help="Agencies' answers by spreadsheet (for those who reply by file, not the portal).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")


@feedback_app.command("import")
@handle_errors
def import_(
    path: Path = typer.Argument(..., help="CSV (UTF-8 or GB18030) or XLSX feedback file."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="ISO date or datetime the answers are recorded at (default: now)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Apply acknowledgements, outcomes, extension requests and returns from a file."""
    from agencies.feedback import UnreadableFile
    from flows.import_feedback import import_feedback

    app = app_from_environment()
    app.as_of(as_of)  # a bad --as-of fails here, before a flow run starts
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        result = import_feedback(path=str(path.resolve()), as_of=as_of)
    except UnreadableFile as exc:
        raise InputError(str(exc)) from None
    if as_json:
        print_json(result)
    elif result["already_imported"]:
        err.print(
            f"[yellow]![/] {path.name}: 此文件已导入过 already imported (import {result['import_id']})"
        )
    else:
        err.print(
            f"[green]✓[/] 已处理 applied {result['applied']}, 退回 rejected {result['rejected']}"
        )
    if result["rejected"]:
        err.print(f"退回明细 reject report: {result['reject_report']}")
        raise typer.Exit(EXIT_PARTIAL)
