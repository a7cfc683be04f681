"""Build the campaign report files as of a day: statistics.xlsx, report.html, summary.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from wangjian.bootstrap import App
from wangjian.reporting import charts
from wangjian.reporting.frames import LedgerFrames, load_frames
from wangjian.reporting.statistics import CampaignStatistics, compute_statistics
from wangjian.reporting.summary import summary_markdown
from wangjian.reporting.workbook import write_workbook
from wangjian.settings import PROJECT_ROOT

PHASE_ZH = {
    "before": "尚未开始",
    "mobilisation": "动员部署",
    "implementation": "组织实施",
    "summary": "总结",
    "after": "已结束",
}


@dataclass
class Report:
    stats: CampaignStatistics
    files: dict[str, Path] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)
    praised: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {**self.stats.headline(), "files": {k: str(v) for k, v in self.files.items()}}


def compute_report(app: App, as_of: datetime) -> tuple[CampaignStatistics, LedgerFrames]:
    frames = load_frames(app.engine, as_of=as_of, as_of_date=as_of.astimezone(app.tz).date())
    return compute_statistics(frames, app.config), frames


def listed_items(frames: LedgerFrames, app: App) -> list[str]:
    """The items listed for supervision, in words, for the report and the bulletin."""
    escalations = frames.escalations
    if escalations.empty:
        return []
    listed = escalations[escalations["step"] == "supervision"]
    names = dict(zip(frames.parties["code"], frames.parties["name_zh"], strict=True))
    referrals = frames.referrals.set_index("id")
    categories = {c.code: c.name_zh for c in app.config.categories_file.categories}
    obligations = frames.obligations.set_index("id")
    out: list[tuple[int, int, str]] = []
    for row in listed.itertuples(index=False):
        party = names.get(str(row.party), str(row.party))
        if row.subject_type == "referral" and row.subject_id in referrals.index:
            referral = referrals.loc[row.subject_id]
            category = categories.get(str(referral["category"]), "未分类")
            text = f"移送件#{row.subject_id}({category})— {party},办理期限{referral['due_on']}"
            out.append((1, int(row.subject_id), text))
        elif row.subject_type == "obligation" and row.subject_id in obligations.index:
            obligation = obligations.loc[row.subject_id]
            text = f"{obligation['title']}({obligation['code']})— {party},报送期限{obligation['due_on']}"
            out.append((0, int(row.subject_id), text))
        else:
            out.append((2, int(row.subject_id), f"{row.subject_type}#{row.subject_id} — {party}"))
    return [text for *_key, text in sorted(set(out))]


def praised_members(stats: CampaignStatistics) -> list[str]:
    """Members that answered everything due on time (at least one referral)."""
    table = stats.tables["表2 成员单位办理情况"]
    table = table[(table["成员单位"] != "合计") & (table["接收移送(件)"].astype(int) > 0)]
    good = table[
        (table["按期签收率"] == "100.0%")
        & (table["按期办结率"].isin(["100.0%", "—"]))
        & (table["逾期未办(件)"].astype(int) == 0)
    ]
    return [str(name) for name in good["成员单位"]]


def build_report(app: App, *, as_of: datetime, out_dir: Path) -> Report:
    """Compute the statistics and write the three report files."""
    stats, frames = compute_report(app, as_of)
    report = Report(stats=stats, listed=listed_items(frames, app), praised=praised_members(stats))
    out_dir.mkdir(parents=True, exist_ok=True)
    report.files["xlsx"] = write_workbook(stats, app.config, out_dir / "statistics.xlsx")
    report.files["html"] = _write_html(app, report, out_dir / "report.html")
    markdown = summary_markdown(stats, app.config, listed=report.listed, praised=report.praised)
    report.files["markdown"] = out_dir / "summary.md"
    report.files["markdown"].write_text(markdown, encoding="utf-8")
    return report


def _write_html(app: App, report: Report, path: Path) -> Path:
    environment = Environment(
        loader=FileSystemLoader(PROJECT_ROOT / "templates" / "report"),
        autoescape=select_autoescape(["html"]),
    )
    stats = report.stats
    local = stats.as_of.astimezone(app.tz)
    tables = [
        (name, {"columns": [str(c) for c in table.columns], "rows": _rows(table)})
        for name, table in stats.tables.items()
    ]
    html = environment.get_template("report.html").render(
        campaign=app.config.campaign,
        office=app.config.campaign.office.name,
        as_of_label=f"{local:%Y年%m月%d日 %H:%M}",
        phase_label=PHASE_ZH[app.config.campaign.phases.phase_on(local.date())],
        stats=stats,
        on_time_label="—" if stats.on_time_rate is None else f"{stats.on_time_rate * 100:.1f}%",
        charts=[
            c
            for c in (
                charts.outcome_chart(stats),
                charts.agency_chart(stats),
                charts.monthly_chart(stats),
                charts.category_chart(stats),
            )
            if c
        ],
        listed=report.listed,
        tables=tables,
    )
    path.write_text(html, encoding="utf-8")
    return path


def _rows(table: pd.DataFrame) -> list[list[object]]:
    return [["" if pd.isna(v) else v for v in row] for row in table.itertuples(index=False)]
