"""`wangjian feedback import`: agencies answering by spreadsheet, with a reject report."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from agencies.feedback import UnreadableFile, import_feedback_file, parse_day, read_feedback_file
from wangjian.bootstrap import App
from wangjian.cli import app as cli
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import Extension, Import, Referral

from .factories import AT, make_referral

AS_OF = AT + timedelta(days=2)
HEADER = ["referral_id", "action", "outcome", "case_number", "decided_on", "note"]


def _write_csv(path: Path, rows: list[list[object]], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _referrals(app: App, n: int, **values: object) -> list[int]:
    with transaction(app.sessions) as session:
        return [make_referral(session, app, **values).id for _ in range(n)]  # type: ignore[arg-type]


def test_good_rows_are_applied_and_bad_rows_rejected_with_reasons(app: App, tmp_path: Path) -> None:
    a, b, c, d = _referrals(app, 4, agency="customs")
    path = _write_csv(
        tmp_path / "海关反馈.csv",
        [
            HEADER,
            [a, "acknowledge", "", "", "", ""],
            [b, "outcome", "case_filed", "津关缉违字〔2021〕12号", "2021/10/26", "已立案"],
            [c, "outcome", "case_filed", "", "2021-10-26", ""],  # no case number
            [d, "outcome", "fined", "", "", ""],  # unknown outcome code
            [999999, "acknowledge", "", "", "", ""],  # no such referral
            [a, "outcome", "no_violation", "", "26 Oct", ""],  # bad date
            ["abc", "acknowledge", "", "", "", ""],
            [d, "extend", "", "", "", "需调取报关单"],
        ],
    )
    result = import_feedback_file(app=app, path=path, as_of=AS_OF)
    assert (result.applied, len(result.rejects)) == (3, 5)
    assert [(r.row, r.column) for r in result.rejects] == [
        (4, "case_number"),
        (5, "outcome"),
        (6, "referral_id"),
        (7, "decided_on"),
        (8, "referral_id"),
    ]
    assert result.reject_report is not None
    with result.reject_report.open(encoding="utf-8-sig") as handle:
        report = list(csv.DictReader(handle))
    assert report[0]["row"] == "4" and "立案" in report[0]["reason"]
    assert "case number" in report[0]["reason_en"] and report[1]["value"] == "fined"
    with app.sessions() as session:
        statuses = {r.id: r.status for r in session.scalars(select(Referral))}
        assert statuses == {a: "acknowledged", b: "closed", c: "open", d: "open"}
        clock = clock_of(session, subject_type="referral", subject_id=b)
        assert clock is not None and clock.status == "met"
        [event] = history(session, subject_type="referral", subject_id=a)
        assert (
            event.origin == "feedback file 海关反馈.csv row 2" and event.actor == "agency:customs"
        )
        extension = session.scalar(select(Extension))
        # Without a `days` column an extension asks for all the frozen policy allows.
        assert extension is not None and (extension.referral_id, extension.days) == (d, 15)


def test_the_same_file_twice_is_a_no_op(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    [a] = _referrals(app, 1)
    path = _write_csv(tmp_path / "f.csv", [HEADER, [a, "acknowledge", "", "", "", ""]])
    assert import_feedback_file(app=app, path=path, as_of=AS_OF).applied == 1
    again = import_feedback_file(app=app, path=path, as_of=AS_OF)
    assert again.already_imported and again.applied == 0 and not again.rejects


def test_gb18030_csv_and_xlsx_files_are_read(tmp_path: Path) -> None:
    gbk = _write_csv(
        tmp_path / "gbk.csv",
        [HEADER, [7, "outcome", "no_violation", "", "", "经核查无违法行为"]],
        encoding="gb18030",
    )
    assert read_feedback_file(gbk).rows == [
        (
            2,
            dict(
                zip(
                    HEADER,
                    ["7", "outcome", "no_violation", "", "", "经核查无违法行为"],
                    strict=True,
                )
            ),
        )
    ]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([8, "outcome", "info_removed", None, AT.replace(tzinfo=None), "平台已下架"])
    book.save(tmp_path / "f.xlsx")
    [(number, values)] = read_feedback_file(tmp_path / "f.xlsx").rows
    assert (
        number == 2
        and values["referral_id"] == "8"
        and values["decided_on"] == "2021-10-25T10:00:00"
    )
    assert parse_day(values["decided_on"]) == AT.date()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("referal_id,action\n1,acknowledge\n", "unknown column"),
        ("action,note\nacknowledge,x\n", "'referral_id' is missing"),
        ("referral_id,action,action\n1,acknowledge,outcome\n", "repeated"),
        ("", "empty"),
    ],
)
def test_a_wrong_header_refuses_the_whole_file(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UnreadableFile, match=reason):
        read_feedback_file(path)


def test_a_broken_xlsx_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04not really a zip")
    with pytest.raises(UnreadableFile, match="XLSX"):
        read_feedback_file(path)


@pytest.mark.prefect
def test_the_command_runs_a_flow_and_exits_2_on_rejects_1_on_a_bad_header(
    sqlite_app: App, tmp_path: Path, prefect_harness: None
) -> None:
    app = sqlite_app
    [a] = _referrals(app, 1)
    path = _write_csv(
        tmp_path / "f.csv",
        [HEADER, [a, "acknowledge", "", "", "", ""], [a, "outcome", "bogus", "", "", ""]],
    )
    runner = CliRunner()
    result = runner.invoke(
        cli, ["feedback", "import", str(path), "--as-of", "2021-10-27", "--json"]
    )
    assert result.exit_code == 2, result.output
    payload = json.loads(result.stdout)
    assert (payload["applied"], payload["rejected"]) == (1, 1)
    assert Path(payload["reject_report"]).is_file()
    bad = tmp_path / "bad.csv"
    bad.write_text("id,what\n1,2\n", encoding="utf-8")
    refused = runner.invoke(cli, ["feedback", "import", str(bad), "--json"])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "wrong header" in refused.stderr
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Import)) == 1
