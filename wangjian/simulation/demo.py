"""`wangjian demo`: a whole campaign replayed day by day in accelerated time.

Embedded defaults only: a fresh SQLite ledger, mail written to a mailbox folder, and a local
Prefect server (started here and stopped at the end, or kept with --keep-ui). Each simulated
working day the top-level `campaign` flow runs the day's phase as a subflow — mobilisation,
implementation (with the day's lead file) or summary — then the simulated members answer.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from wangjian.bootstrap import App, build_app, use_app
from wangjian.ledger.setup import initialise_ledger
from wangjian.orchestration import (
    LocalServer,
    flush_to_server,
    in_process_runs,
    start_server,
    stop_server,
)
from wangjian.settings import PortalSettings, Settings, SmtpSettings, load_settings
from wangjian.simulation.leads import write_lead_file
from wangjian.simulation.members import SimulatedCampaign
from wangjian.simulation.platforms import SimulatedPlatforms, write_listed_file

FORMATS = ("csv", "xlsx", "jsonl")


@dataclass
class DemoResult:
    workdir: Path
    ui_url: str | None
    days: int = 0
    lead_files: int = 0
    leads_sent: int = 0
    final: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    mails: int = 0


def demo_settings(workdir: Path) -> Settings:
    """The embedded defaults, all inside the demo's folder."""
    return load_settings(
        database_url=f"sqlite:///{workdir / 'wangjian.db'}",
        mailbox_dir=workdir / "mailbox",
        reports_dir=workdir / "reports",
        rejects_dir=workdir / "rejects",
        prefect_home=workdir / "prefect",
        smtp=SmtpSettings(host=None),
        portal=PortalSettings(upload_dir=workdir / "uploads"),
    )


def _prefect_api() -> str | None:
    """The Prefect API this process already reports to (environment, profile or test harness)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def lead_plan(app: App, total: int) -> dict[date, int]:
    """How many leads arrive on each working day of the implementation phase (rising, then easing)."""
    window = app.config.campaign.phases.implementation
    days = []
    day = window.start
    while day <= window.end:
        if app.calendar.is_workday(day):
            days.append(day)
        day += timedelta(days=1)
    weights = [
        1.0 + 0.6 * min(i, len(days) - 1 - i) / max(len(days) / 2, 1) for i in range(len(days))
    ]
    scale = total / sum(weights)
    plan = {d: max(1, round(w * scale)) for d, w in zip(days, weights, strict=True)}
    return plan


def run_demo(
    workdir: Path,
    *,
    leads: int = 2400,
    seed: int = 2021,
    keep_ui: bool = False,
    until: date | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Replay the default campaign from mobilisation to the final report."""
    started = time.perf_counter()
    if workdir.exists():
        stop_server(workdir / "prefect")
        for part in ("wangjian.db", "wangjian.db-wal", "wangjian.db-shm"):
            (workdir / part).unlink(missing_ok=True)
        for folder in ("mailbox", "reports", "rejects", "uploads", "leads"):
            shutil.rmtree(workdir / folder, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(workdir)
    server: LocalServer | None = None
    if not _prefect_api():
        say("• starting a local Prefect server (UI) …")
        server = start_server(settings.prefect_home)
        os.environ["PREFECT_API_URL"] = server.api_url
    result = DemoResult(workdir=workdir, ui_url=server.url if server else _prefect_api())
    app = build_app(settings)
    try:
        with use_app(app), in_process_runs():
            initialise_ledger(app)
            result = _replay(app, result, leads=leads, seed=seed, until=until, say=say)
    finally:
        app.dispose()
        if server and not keep_ui:
            flush_to_server()
            stop_server(settings.prefect_home)
            os.environ.pop("PREFECT_API_URL", None)
            result.ui_url = None
    result.mails = len(list((workdir / "mailbox").glob("*.eml")))
    result.seconds = time.perf_counter() - started
    return result


def _replay(
    app: App,
    result: DemoResult,
    *,
    leads: int,
    seed: int,
    until: date | None,
    say: Callable[[str], None],
) -> DemoResult:
    from flows.campaign import campaign
    from flows.import_listed_operators import import_listed_operators

    members = SimulatedCampaign(app, seed=seed)
    platforms = SimulatedPlatforms(app, seed=seed)
    plan = lead_plan(app, leads)
    list_on = sorted(plan)[min(4, len(plan) - 1)] if plan else None
    day, last = members.first_day(), until or members.last_day()
    phase_seen = None
    lead_index = 0
    week = WeekTally()
    while day <= last:
        as_of = datetime.combine(day, clock_time(9, 0), tzinfo=app.tz)
        files = []
        if day in plan:
            fmt = FORMATS[len(plan) and result.lead_files % len(FORMATS)]
            path = result.workdir / "leads" / f"leads-{day.isoformat()}.{fmt}"
            write_lead_file(
                path,
                rows=plan[day],
                seed=seed + lead_index,
                start=lead_index,
                found_on=day - timedelta(days=1),
                fmt=fmt,
            )
            lead_index += plan[day]
            result.lead_files += 1
            result.leads_sent += plan[day]
            files.append(str(path))
        if day == list_on:
            # The office shares the merchants removed elsewhere; later leads about them are flagged.
            listed = write_listed_file(
                result.workdir / "leads" / f"listed-{day.isoformat()}.csv",
                lead_indices=range(lead_index, lead_index + leads),
                listed_on=day,
            )
            import_listed_operators(path=str(listed), as_of=as_of.isoformat(), actor="office")
            say(f"  {day}: 共享清退名录(一处清退、处处关店)已导入")
        phase = app.config.campaign.phases.phase_on(day)
        if app.calendar.is_workday(day) or files or day == last:
            outcome = campaign(as_of=as_of.isoformat(), lead_files=files)
            result.days += 1
            if phase != phase_seen:
                say(f"• {day} — {PHASE_LINES.get(phase, phase)}")
                phase_seen = phase
            week.add(outcome)
            if outcome.get("report"):
                result.final = outcome["report"]
        if phase == "implementation" and app.calendar.is_workday(day):
            platforms.ask(day)
        platforms.answer(day)
        week.answers(members.act(day))
        if day.weekday() == 6 or day == last:
            if week.days:
                say(week.line(day))
            week = WeekTally()
        day += timedelta(days=1)
    if not result.final:
        from flows.campaign_report import campaign_report

        final_at = datetime.combine(last, clock_time(18, 0), tzinfo=app.tz)
        result.final = campaign_report(
            as_of=final_at.isoformat(), out_dir=str(app.settings.reports_dir / "final")
        )
    return result


@dataclass
class WeekTally:
    """What a simulated week brought, for one line of narration."""

    days: int = 0
    leads: int = 0
    referrals: int = 0
    reminders: int = 0
    escalations: int = 0
    listed: int = 0
    mails: int = 0
    outcomes: int = 0

    def add(self, outcome: dict[str, Any]) -> None:
        sweep = outcome.get("sweep") or {}
        self.days += 1
        self.reminders += int(sweep.get("reminders", 0)) + int(sweep.get("overdue_notices", 0))
        self.escalations += int(sweep.get("escalations", 0))
        self.listed += int(sweep.get("listed_for_supervision", 0))
        self.mails += int(sweep.get("notifications_sent", 0))
        for dispatched in outcome.get("dispatched", []):
            self.leads += int(dispatched.get("imported", 0))
            self.referrals += sum((dispatched.get("referrals") or {}).values())

    def answers(self, actions: Any) -> None:
        self.outcomes += actions.outcomes

    def line(self, day: date) -> str:
        return (
            f"  {day:%m-%d}止一周 线索 {self.leads:>4} 移送 {self.referrals:>4} 办结 {self.outcomes:>4}"
            f" 提醒 {self.reminders:>3} 催办 {self.escalations:>3} 督办 {self.listed:>3}"
            f" 邮件 {self.mails:>3}"
        )


PHASE_LINES = {
    "mobilisation": "动员部署:印发方案、分解任务,成员单位报送实施方案",
    "implementation": "组织实施:每日接收线索文件、移送、期限巡检、提醒与督办",
    "summary": "总结:核对总结材料、催报、汇总统计、形成报告",
    "after": "行动结束",
}
