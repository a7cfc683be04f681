"""`wangjian sweep`: the daily deadline pass, run through the `deadline-sweep` Prefect flow."""

from __future__ import annotations

import typer

from wangjian.cli.common import app_from_environment, err, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


@handle_errors
def sweep(
    as_of: str | None = typer.Option(
        None, "--as-of", help="ISO date (09:00 in the campaign's zone) or datetime; default now."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The daily deadline pass: reminders, overdue notices, escalations (referrals and reports)."""
    app = app_from_environment()
    moment = app.as_of(as_of)  # a bad --as-of stops here, before any flow starts
    from flows.deadline_sweep import deadline_sweep

    result = deadline_sweep(as_of=moment.isoformat())
    if as_json:
        print_json(result)
        return
    err.print(
        f"[green]✓[/] 截至 {moment:%Y-%m-%d %H:%M}: 提醒 {result['reminders']}, "
        f"逾期通知 {result['overdue_notices']}, 告知分管领导 {result['escalations']}, "
        f"挂牌督办 {result['listed_for_supervision']}; 发出邮件 {result['notifications_sent']}"
    )
    office = result.get("office", {})
    if office.get("bulletin"):
        err.print(f"  通报草稿 draft bulletin: {office['bulletin']}")
