"""The `wangjian` command line (see CONTRACT.md): each command in a module of its own."""

from __future__ import annotations

import os

import typer

from wangjian.cli import (
    assist_cmd,
    demo_cmd,
    feedback_cmd,
    init_cmd,
    leads_cmd,
    listed_cmd,
    outbox_cmd,
    report_cmd,
    serve_cmd,
    server_cmd,
    sweep_cmd,
)

app = typer.Typer(
    name="wangjian",
    help="网剑 Wangjian — run a joint online-market enforcement campaign.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """网剑 Wangjian — run a joint online-market enforcement campaign."""
    from wangjian.orchestration import connect, in_process_runs
    from wangjian.settings import disable_prefect_analytics, load_settings

    disable_prefect_analytics()
    if ctx.invoked_subcommand == "demo":
        # The demo narrates the campaign itself; Prefect's run logs stay in the UI.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # Report flow runs to the local server (`wangjian server start`) when one is up.
    connect(load_settings().prefect_home)
    ctx.with_resource(in_process_runs())


init_cmd.register(app)
demo_cmd.register(app)
report_cmd.register(app)
sweep_cmd.register(app)
server_cmd.register(app)
feedback_cmd.register(app)
serve_cmd.register(app)
outbox_cmd.register(app)
leads_cmd.register(app)
leads_cmd.register_referrals(app)
assist_cmd.register(app)
listed_cmd.register(app)


def main() -> None:
    app()
