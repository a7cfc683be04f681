"""`wangjian server start|stop|status`: a local Prefect server (and its UI) for the commands."""

from __future__ import annotations

import typer

from wangjian.cli.common import err, handle_errors, print_json

server_app = typer.Typer(help="A local Prefect server: the UI, and instant starts for commands.")


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")


def _home():  # type: ignore[no-untyped-def]
    from wangjian.settings import load_settings

    return load_settings().prefect_home


@server_app.command("start")
@handle_errors
def start(port: int = typer.Option(4200, help="Port of the API and UI.")) -> None:
    """Start a Prefect server in the background (kept until `wangjian server stop`)."""
    from wangjian.orchestration import start_server

    server = start_server(_home(), port=port)
    err.print(f"[green]✓[/] Prefect UI: {server.url}  (API {server.api_url})")


@server_app.command("stop")
@handle_errors
def stop() -> None:
    """Stop the local Prefect server."""
    from wangjian.orchestration import stop_server

    err.print("stopped" if stop_server(_home()) else "no local server was running")


@server_app.command("status")
@handle_errors
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Say whether the local Prefect server is up, and where."""
    from wangjian.orchestration import running_server

    server = running_server(_home())
    if as_json:
        print_json({"running": bool(server), "url": server.url if server else None})
    else:
        err.print(f"Prefect UI: {server.url}" if server else "no local server is running")
