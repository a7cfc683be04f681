"""`wangjian demo`: a whole campaign on the embedded defaults (SQLite, mailbox folder, local Prefect)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import typer

from wangjian.cli.common import err, handle_errors


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    workdir: Path = typer.Option(
        Path("demo-output"), help="Where the demo keeps its database, mail and reports."
    ),
    leads: int = typer.Option(
        2400, min=10, help="How many leads arrive over the implementation phase."
    ),
    seed: int = typer.Option(2021, help="Seed of the simulation (same seed, same campaign)."),
    until: str | None = typer.Option(
        None, help="Stop after this day (ISO date), for a shortened run."
    ),
    keep_ui: bool = typer.Option(
        False, "--keep-ui", help="Leave the Prefect UI and the portal up to explore."
    ),
) -> None:
    """Replay a whole campaign in accelerated time: leads, referrals, answers, escalations, report."""
    from wangjian.simulation.demo import run_demo

    last = date.fromisoformat(until) if until else None
    result = run_demo(
        workdir,
        leads=leads,
        seed=seed,
        keep_ui=keep_ui,
        until=last,
        say=lambda line: err.print(line, highlight=False),
    )
    final = result.final
    err.rule("[bold]网剑行动 演示完成 demo finished")
    err.print(
        f"模拟 {result.days} 个工作日,{result.lead_files} 个线索文件共 {result.leads_sent} 条线索;"
        f"用时 {result.seconds:.0f} 秒"
    )
    if final:
        outcomes = final.get("by_outcome", {})
        err.print(
            f"线索 {final.get('leads')} 条 → 移送 {final.get('referrals')} 件;"
            f"按期办结率 {final.get('on_time_rate')};挂牌督办 {final.get('listed_for_supervision')} 件"
        )
        err.print(
            f"  立案 {outcomes.get('case_filed', 0)}, 责令改正 {outcomes.get('ordered_to_correct', 0)},"
            f" 督促清理 {outcomes.get('info_removed', 0)}, 移送外地 {outcomes.get('transferred_out', 0)},"
            f" 办理中 {outcomes.get('pending', 0)}"
        )
        for kind, path in (final.get("files") or {}).items():
            err.print(f"  报告 {kind:8} {Path(path).resolve()}")
    err.print(f"  邮件 mailbox  {(workdir / 'mailbox').resolve()}  ({result.mails} 封 .eml)")
    err.print(f"  台账 ledger   {(workdir / 'wangjian.db').resolve()}")
    if keep_ui and result.ui_url:
        err.print(f"  Prefect UI   {result.ui_url}   (停止: wangjian server stop,或 Ctrl-C)")
        _serve_portal(workdir)
    else:
        err.print("  Prefect UI   rerun with --keep-ui to explore the flow runs and artifacts")


def _serve_portal(workdir: Path) -> None:
    """Keep the agency portal up on the demo's ledger until Ctrl-C (the Prefect UI stays too)."""
    import uvicorn

    from portal.app import create_app
    from wangjian.bootstrap import build_app
    from wangjian.simulation.demo import demo_settings

    app = build_app(demo_settings(workdir))
    err.print(
        f"  门户 portal   {app.settings.portal.base_url}/office  (用户 {app.settings.portal.office_user})"
    )
    try:
        uvicorn.run(create_app(app), host="127.0.0.1", port=8765, log_level="warning")
    except KeyboardInterrupt:
        time.sleep(0)
