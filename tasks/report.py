"""Report stages: build the statistics and files, then publish them to the Prefect UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from wangjian.bootstrap import get_app
from wangjian.reporting.build import build_report


@task(name="build-report-files")
def build_report_files(as_of: str | None, out_dir: str | None) -> dict[str, Any]:
    """Compute the statistics as of the day and write statistics.xlsx, report.html, summary.md."""
    app = get_app()
    moment = app.as_of(as_of)
    folder = Path(out_dir) if out_dir else app.settings.reports_dir / moment.date().isoformat()
    report = build_report(app, as_of=moment, out_dir=folder)
    return {
        **report.as_json(),
        "tables": {
            name: table.astype(str).to_dict("records")
            for name, table in report.stats.tables.items()
        },
        "summary_markdown": report.files["markdown"].read_text(encoding="utf-8"),
    }


@task(name="publish-report-artifacts")
def publish_report_artifacts(report: dict[str, Any]) -> None:
    """Tables, the summary draft and links to the files, for the office in the Prefect UI."""
    day = report["as_of"][:10]
    for name in ("表1 总体情况", "表2 成员单位办理情况", "表6 办理结果", "表7 异地移送"):
        create_table_artifact(
            key=_key(name), table=report["tables"][name], description=f"{name}(截至{day})"
        )
    create_markdown_artifact(
        key="campaign-summary-draft",
        markdown=report["summary_markdown"],
        description=f"总结报告草稿(截至{day})",
    )
    for kind, path in report["files"].items():
        create_link_artifact(
            key=f"campaign-report-{kind}",
            link=Path(path).resolve().as_uri(),
            link_text=Path(path).name,
            description=f"报告文件(截至{day})",
        )


def _key(name: str) -> str:
    number = name.split()[0].removeprefix("表")
    return f"campaign-statistics-table-{number}"
