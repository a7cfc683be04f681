"""`wangjian demo`: a whole campaign on the embedded defaults (SQLite, mailbox folder, local Prefect)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from wangjian.cli.common import err, handle_errors


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    workdir: Path = typer.Option(
        Path("demo-output"), help="Where the demo keeps its database, mail and reports."
    ),
) -> None:
    """Simulate a whole campaign in accelerated time on the embedded defaults."""
    from wangjian.bootstrap import build_app
    from wangjian.domain.deadlines import compute_due
    from wangjian.ledger.setup import initialise_ledger
    from wangjian.settings import load_settings

    workdir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        database_url=f"sqlite:///{workdir / 'wangjian.db'}",
        mailbox_dir=workdir / "mailbox",
        reports_dir=workdir / "reports",
        rejects_dir=workdir / "rejects",
    )
    app = build_app(settings)
    result = initialise_ledger(app)
    campaign = app.config.campaign
    err.rule(f"[bold]{campaign.name}[/]")
    phases = Table("阶段 phase", "起 from", "止 to", title="工作步骤")
    for name, label in (
        ("mobilisation", "动员部署"),
        ("implementation", "组织实施"),
        ("summary", "总结"),
    ):
        window = getattr(campaign.phases, name)
        phases.add_row(f"{label} {name}", str(window.start), str(window.end))
    err.print(phases)
    members = Table("代码", "成员单位", "负责类别", title=f"成员单位 ({len(app.config.agencies)})")
    for agency in app.config.agencies.values():
        members.add_row(agency.code, agency.name_zh, ", ".join(agency.categories) or "—")
    err.print(members)
    start = app.as_of(campaign.phases.implementation.start)
    for kind in ("referral", "crime", "transfer_out"):
        policy = app.config.policy(kind)
        due = compute_due(app.calendar, start, policy.outcome, tz=app.tz)
        err.print(f"[bold]{policy.title}[/]: {due.explain()}")
    err.print(f"[green]✓[/] ledger {result['database']} (schema {result['schema']})")
    app.dispose()
