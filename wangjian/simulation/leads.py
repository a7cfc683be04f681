"""Generated lead files for the demo: realistic rows from `leadgen`'s model (categories,
keyword-only summaries, operators in and out of the jurisdiction, suspected crimes, repeated
listings), in CSV, XLSX or JSON Lines, with lead ids unique across the whole campaign."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

from openpyxl import Workbook

from wangjian.simulation.leadgen import HEADER, generate_rows


def write_lead_file(
    path: Path, *, rows: int, seed: int, start: int, found_on: date, fmt: str = "csv"
) -> Path:
    """Write `rows` leads numbered from `start`, found on `found_on`, as `fmt`."""
    records = list(generate_rows(rows, seed=seed, start=start, found_on=found_on))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(HEADER)
        writer.writerows(records)
        path.write_text(buffer.getvalue(), encoding="utf-8")
    elif fmt == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("线索")
        sheet.append(HEADER)
        for record in records:
            sheet.append(record)
        workbook.save(path)
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for record in records:
                item: dict[str, object] = dict(zip(HEADER, record, strict=True))
                item["suspected_crime"] = item["suspected_crime"] == "true"
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"unknown lead file format {fmt!r}")
    return path
