"""Lead rows and lead files for tests: valid by default, broken on purpose by overrides."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wangjian.domain.credit_code import check_character
from wangjian.intake.columns import LEAD_COLUMN_NAMES

HOME = "140105"  # the default campaign's jurisdiction (config/campaign.yaml)


def credit_code(region: str = HOME, body: str = "MA0K1234X", authority: str = "91") -> str:
    """A well-formed code: authority and kind, region, organisation code, check character."""
    first17 = authority + region + body
    return first17 + check_character(first17)


def lead(n: int = 1, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "lead_id": f"L-{n:05d}",
        "source": "monitoring",
        "category": "trademark",
        "summary": f"店铺销售高仿名牌箱包(第{n}条)",
        "platform": "淘宝",
        "shop_name": f"优品旗舰店{n}",
        "url": f"https://item.taobao.example.com/item/{n}.html",
        "operator_name": f"太原市优品商贸有限公司{n}",
        "credit_code": "",
        "region_code": HOME,
        "found_on": "2021-10-20",
        "suspected_crime": "false",
        "amount_yuan": "1200.50",
    }
    row.update(overrides)
    return row


def write_csv(
    path: Path,
    rows: Iterable[dict[str, Any]],
    *,
    encoding: str = "utf-8",
    header: list[str] | None = None,
) -> Path:
    columns = header or list(LEAD_COLUMN_NAMES)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
    return path


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(
                (row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n"
            )
    return path


def write_xlsx(path: Path, rows: Iterable[list[Any]], header: list[str] | None = None) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header or list(LEAD_COLUMN_NAMES))
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path
