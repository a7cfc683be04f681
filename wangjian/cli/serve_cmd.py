"""`wangjian serve`: the agency portal (FastAPI, server-rendered pages) on uvicorn."""

from __future__ import annotations

import typer

from wangjian.cli.common import Failure, app_from_environment, err, handle_errors


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8765, help="Port to listen on."),
) -> None:
    """Run the portal where agencies answer their referrals and the office oversees them."""
    import uvicorn

    from portal import create_app
    from portal.security import access_log_config

    app = app_from_environment()
    try:
        app.settings.check_secrets()
    except ValueError as exc:
        raise Failure(str(exc)) from None
    err.print(
        f"[green]✓[/] portal on http://{host}:{port}/ — links in notices use "
        f"{app.settings.portal.base_url}"
    )
    # proxy_headers: behind a reverse proxy the client's address (for the event trail) comes
    # from X-Forwarded-For, trusted only from the proxies uvicorn is told about.
    uvicorn.run(
        create_app(app),
        host=host,
        port=port,
        proxy_headers=True,
        log_level="info",
        log_config=access_log_config(),
    )
