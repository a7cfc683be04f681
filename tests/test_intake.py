"""Reading and checking lead files: formats, encodings, headers and a corpus of bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wangjian.campaign import CampaignConfig
from wangjian.intake import (
    IntakeError,
    RejectReport,
    inspect_lead_file,
    inspect_lead_header,
    read_lead_chunks,
    validate_lead_chunk,
)
from wangjian.intake.columns import LEAD_COLUMN_NAMES

from .lead_factory import credit_code, lead, write_csv, write_jsonl, write_xlsx


def check_file(
    path: Path, config: CampaignConfig, chunk_rows: int = 50_000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a whole file: (valid rows, reject rows)."""
    info = inspect_lead_file(path)
    valid, rejects = [], []
    for raw in read_lead_chunks(info, chunk_rows):
        checked = validate_lead_chunk(raw, categories=set(config.categories))
        valid.append(checked.valid)
        rejects.append(checked.rejects)
    if not valid:
        return pd.DataFrame(), pd.DataFrame(
            columns=["row", "column", "value", "reason_zh", "reason_en"]
        )
    return pd.concat(valid, ignore_index=True), pd.concat(rejects, ignore_index=True)


# --- formats and encodings ---------------------------------------------------------------------


def test_utf8_csv_is_read_typed(tmp_path: Path, default_config: CampaignConfig) -> None:
    code = credit_code()
    path = write_csv(
        tmp_path / "l.csv",
        [lead(1, credit_code=code, suspected_crime="是", amount_yuan="¥1,234.5"), lead(2)],
    )
    valid, rejects = check_file(path, default_config)
    assert rejects.empty
    first = valid.iloc[0]
    assert first["lead_id"] == "L-00001" and first["row"] == 2
    assert first["credit_code"] == code
    assert first["found_on"] == np.datetime64("2021-10-20")
    assert (
        bool(first["suspected_crime"]) is True and bool(valid.iloc[1]["suspected_crime"]) is False
    )
    assert first["amount_yuan"] == "1234.5"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_bom_and_gb18030_files_read_the_same_as_utf8(
    tmp_path: Path, default_config: CampaignConfig, encoding: str
) -> None:
    rows = [
        lead(1, summary="销售假冒伪劣商品,商标“𠀀”"),
        lead(2, operator_name="太原市小店区某某有限公司"),
    ]
    plain, _ = check_file(write_csv(tmp_path / "u.csv", rows), default_config)
    other_path = write_csv(tmp_path / "o.csv", rows, encoding=encoding)
    info = inspect_lead_file(other_path)
    assert info.encoding == encoding and info.header[0] == "lead_id"  # no BOM in the name
    other, rejects = check_file(other_path, default_config)
    assert rejects.empty
    pd.testing.assert_frame_equal(plain, other)


def test_xlsx_first_sheet_cells_read_as_typed_text(
    tmp_path: Path, default_config: CampaignConfig
) -> None:
    header = list(LEAD_COLUMN_NAMES)
    row = [lead(1)[c] for c in header]
    row[header.index("region_code")] = 140105  # a number cell
    row[header.index("found_on")] = datetime(2021, 10, 20)  # a date cell
    row[header.index("suspected_crime")] = True
    row[header.index("amount_yuan")] = 99.5
    second = [lead(2)[c] for c in header]
    second[header.index("found_on")] = date(2021, 10, 21)
    path = write_xlsx(tmp_path / "l.xlsx", [row, second, [None] * len(header)])
    info = inspect_lead_file(path)
    assert info.format == "xlsx"
    valid, rejects = check_file(path, default_config)
    assert rejects.empty and len(valid) == 2  # the blank row is no lead
    assert valid.iloc[0]["region_code"] == "140105"
    assert bool(valid.iloc[0]["suspected_crime"]) is True
    assert valid.iloc[0]["amount_yuan"] == "99.5"
    assert valid.iloc[1]["found_on"] == np.datetime64("2021-10-21")
    assert valid["row"].tolist() == [2, 3]


def test_json_lines_with_a_broken_line(tmp_path: Path, default_config: CampaignConfig) -> None:
    path = write_jsonl(
        tmp_path / "l.jsonl",
        [lead(1), '{"lead_id": "L-2", oops', "", lead(3, suspected_crime=True, region_code=140105)],
    )
    valid, rejects = check_file(path, default_config)
    assert valid["lead_id"].tolist() == ["L-00001", "L-00003"]
    assert valid["row"].tolist() == [1, 4]  # JSON Lines rows are line numbers
    assert bool(valid.iloc[1]["suspected_crime"]) is True
    assert rejects[["row", "column"]].values.tolist() == [[2, "*"]]
    assert rejects.iloc[0]["reason_en"] == "not a valid JSON object"


# --- files that cannot be used: nothing is imported ---------------------------------------------


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(IntakeError, match="empty"):
        inspect_lead_file(path)
    path.write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(IntakeError, match="empty"):
        inspect_lead_header(path)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", [])
    assert list(read_lead_chunks(inspect_lead_file(path))) == []


@pytest.mark.parametrize(
    "header, message",
    [
        (["id", "name", "region"], "lacks required columns: lead_id, region_code, found_on"),
        ([*LEAD_COLUMN_NAMES[:2], "categroy", *LEAD_COLUMN_NAMES[3:]], "did you mean 'category'"),
        ([*LEAD_COLUMN_NAMES, "lead_id"], "repeated columns"),
    ],
)
def test_wrong_header_is_refused(tmp_path: Path, header: list[str], message: str) -> None:
    path = write_csv(tmp_path / "w.csv", [lead(1)], header=header)
    with pytest.raises(IntakeError, match=message):
        inspect_lead_header(path)
    with pytest.raises(IntakeError, match=message):
        inspect_lead_file(path)


def test_unknown_extra_columns_are_read_past(
    tmp_path: Path, default_config: CampaignConfig
) -> None:
    path = write_csv(
        tmp_path / "x.csv", [lead(1, note="备注")], header=[*LEAD_COLUMN_NAMES, "note"]
    )
    assert inspect_lead_file(path).ignored == ("note",)
    valid, rejects = check_file(path, default_config)
    assert len(valid) == 1 and rejects.empty


def test_text_in_neither_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(",".join(LEAD_COLUMN_NAMES).encode() + b"\n\x81\x30\xff\xfe,\x80\x80\n")
    with pytest.raises(IntakeError, match="neither UTF-8 nor GB18030"):
        inspect_lead_file(path)


def test_not_a_spreadsheet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(IntakeError, match="unreadable XLSX"):
        inspect_lead_file(path)


# --- rows that are rejected, with the reason ---------------------------------------------------


BAD_ROWS = [
    (lead(1, found_on="2021-13-45"), "found_on", "not a valid date"),
    (lead(2, found_on="2021-02-30"), "found_on", "not a valid date"),
    (lead(3, found_on="yesterday"), "found_on", "not a valid date"),
    (lead(4, credit_code="91350100M000100Y44"), "credit_code", "check character"),
    (lead(5, credit_code="91350100M000100I43"), "credit_code", "not a unified social credit code"),
    (lead(6, region_code="14010"), "region_code", "6-digit"),
    (lead(7, region_code="1401O5"), "region_code", "6-digit"),
    (lead(8, category="no_such_thing"), "category", "unknown category"),
    (lead(9, category="", summary=""), "category", "a category or a summary"),
    (lead(10, lead_id=""), "lead_id", "required"),
    (lead(11, found_on=""), "found_on", "required"),
    (lead(12, suspected_crime="maybe"), "suspected_crime", "true or false"),
    (lead(13, amount_yuan="-5"), "amount_yuan", "amount"),
    (lead(14, amount_yuan="12.345"), "amount_yuan", "amount"),
    (lead(15, lead_id="x" * 101), "lead_id", "longer than 100"),
]


def test_each_bad_row_is_rejected_with_its_column_and_reason(
    tmp_path: Path, default_config: CampaignConfig
) -> None:
    rows = [row for row, _c, _r in BAD_ROWS] + [lead(99)]
    valid, rejects = check_file(write_csv(tmp_path / "bad.csv", rows), default_config)
    assert valid["lead_id"].tolist() == ["L-00099"]
    got = {(r.row, r.column): r.reason_en for r in rejects.itertuples()}
    for i, (_row, column, reason) in enumerate(BAD_ROWS):
        assert reason in got[(i + 2, column)], (i, column)
    assert rejects["reason_zh"].str.len().gt(0).all()


def test_accepted_spellings_are_normalised(tmp_path: Path, default_config: CampaignConfig) -> None:
    rows = [
        lead(1, found_on="2021/10/5", category=" Trademark ", credit_code=credit_code().lower()),
        lead(2, found_on="2021年10月6日", region_code="１４０１０５", suspected_crime="TRUE"),
        lead(3, found_on="20211007", amount_yuan="1,000元"),
        lead(4, found_on="2021-10-08 14:30:00"),
    ]
    valid, rejects = check_file(write_csv(tmp_path / "n.csv", rows), default_config)
    assert rejects.empty
    assert valid["found_on"].tolist() == [np.datetime64(f"2021-10-0{d}") for d in (5, 6, 7, 8)]
    assert valid.iloc[0]["category"] == "trademark"
    assert valid.iloc[0]["credit_code"] == credit_code()
    assert valid.iloc[1]["region_code"] == "140105"
    assert valid.iloc[2]["amount_yuan"] == "1000"


def test_ten_percent_bad_rows(tmp_path: Path, default_config: CampaignConfig) -> None:
    rows = [lead(i, region_code="99") if i % 10 == 0 else lead(i) for i in range(1, 1001)]
    valid, rejects = check_file(write_csv(tmp_path / "t.csv", rows), default_config, chunk_rows=128)
    assert len(valid) == 900
    assert rejects["row"].tolist() == [i + 1 for i in range(10, 1001, 10)]


def test_a_50_mb_text_field_is_rejected_not_a_crash(
    tmp_path: Path, default_config: CampaignConfig
) -> None:
    huge = "很长的摘要" * 3_400_000  # 17 million characters, 51 MB of UTF-8
    path = write_csv(tmp_path / "huge.csv", [lead(1), lead(2, summary=huge), lead(3)])
    valid, rejects = check_file(path, default_config)
    assert valid["lead_id"].tolist() == ["L-00001", "L-00003"]
    (reject,) = rejects.itertuples()
    assert (reject.row, reject.column) == (3, "summary")
    assert "17000000" in reject.reason_en and len(reject.value) < 300


def _csv_line(row: dict[str, object], extra: str = "") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([row[c] for c in LEAD_COLUMN_NAMES])
    return buffer.getvalue().removesuffix("\n") + extra


def test_malformed_csv_rows_keep_row_numbers_right(
    tmp_path: Path, default_config: CampaignConfig
) -> None:
    lines = [
        ",".join(LEAD_COLUMN_NAMES),
        _csv_line(lead(2)),
        "",  # row 3: blank, not a lead
        _csv_line(lead(4), ",extra"),  # one field too many
        _csv_line(lead(5, summary="第一行\n第二行")),  # one row over two lines
        _csv_line(lead(6), ",extra,more,fields"),  # far too many
        _csv_line(lead(7)),
    ]
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for chunk_rows in (1, 2, 50):
        valid, rejects = check_file(path, default_config, chunk_rows=chunk_rows)
        assert valid[["lead_id", "row"]].values.tolist() == [
            ["L-00002", 2],
            ["L-00005", 5],
            ["L-00007", 7],
        ]
        assert valid.iloc[1]["summary"] == "第一行\n第二行"
        assert rejects[["row", "column"]].values.tolist() == [[4, "*"], [6, "*"]]


def test_reject_report_is_a_bilingual_csv(tmp_path: Path, default_config: CampaignConfig) -> None:
    _valid, rejects = check_file(
        write_csv(tmp_path / "r.csv", [lead(1, region_code="x")]), default_config
    )
    report = RejectReport.for_import(tmp_path / "rejects", import_id=7, file_name="r.csv")
    assert report.result() is None
    report.append(rejects)
    report.append(rejects)
    raw = report.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    with report.path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["row"] for r in rows] == ["2", "2"]
    assert rows[0]["column"] == "region_code" and rows[0]["value"] == "x"
    assert rows[0]["reason_zh"] == "应为6位数字的行政区划代码"
    assert rows[0]["reason_en"] == "not a 6-digit region code"
    report.reset()
    assert report.result() is None
