"""`wangjian init`: create or migrate the database and load `config/`; safe to run again."""

from __future__ import annotations

import typer

from wangjian.cli.common import app_from_environment, err, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("init")(init)


@handle_errors
def init(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Create or migrate the database, load the campaign configuration (agencies, calendar)."""
    from wangjian.ledger.setup import initialise_ledger

    app = app_from_environment()
    result = initialise_ledger(app)
    if as_json:
        print_json(result)
        return
    parties = result["parties"]
    err.print(
        f"[green]✓[/] {app.config.campaign.name} — 数据库 {result['database']} "
        f"schema {result['schema']}; parties +{parties['added']} ~{parties['updated']} "
        f"-{parties['retired']}"
    )
    if "warning" in result:
        err.print(f"[yellow]![/] {result['warning']}")
