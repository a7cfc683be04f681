"""`wangjian report`: the campaign's statistics and report as of a day."""

from __future__ import annotations

from pathlib import Path

import typer

from wangjian.cli.common import app_from_environment, err, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@handle_errors
def report(
    as_of: str | None = typer.Option(None, "--as-of", help="ISO date or datetime (default: now)."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the files (default: var/reports/<date>)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Write statistics.xlsx, report.html and summary.md for the campaign as of a day."""
    app = app_from_environment()
    moment = app.as_of(as_of)  # fail early, before Prefect starts, on a bad --as-of
    from flows.campaign_report import campaign_report

    result = campaign_report(as_of=moment.isoformat(), out_dir=str(out) if out else None)
    if as_json:
        print_json(result)
        return
    err.print(
        f"[green]✓[/] 截至 {moment:%Y-%m-%d %H:%M}: 线索 {result['leads']} 条, 移送 {result['referrals']} 件, "
        f"按期办结率 {result['on_time_rate'] if result['on_time_rate'] is not None else '—'}"
    )
    for kind, path in result["files"].items():
        err.print(f"  {kind:8} {path}")
