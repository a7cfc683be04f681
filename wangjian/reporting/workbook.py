"""The statistics tables as an XLSX workbook: one sheet per table, Chinese headers (情况统计表)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from wangjian.campaign import CampaignConfig
from wangjian.reporting.statistics import CampaignStatistics

THIN = Side(style="thin", color="999999")
HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")


def write_workbook(stats: CampaignStatistics, config: CampaignConfig, path: Path) -> Path:
    """Write the workbook: a title row, the header row, the data; widths fitted to content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for name, table in stats.tables.items():
        sheet = workbook.create_sheet(title=name[:31])
        title = f"{config.campaign.name}情况统计{name}(截至{stats.as_of:%Y年%m月%d日})"
        sheet.append([title])
        sheet.cell(row=1, column=1).font = Font(bold=True, size=13)
        columns = [str(c) for c in table.columns]
        sheet.append(columns)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = Border(top=THIN, bottom=THIN, left=THIN, right=THIN)
        for row in table.itertuples(index=False):
            sheet.append([_cell(value) for value in row])
        if len(columns) > 1:
            sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(columns))
        for index, column in enumerate(columns, start=1):
            values = [column, *[str(v) for v in table.iloc[:, index - 1].tolist()]]
            width = max(_display_width(v) for v in values) + 2
            sheet.column_dimensions[get_column_letter(index)].width = min(max(width, 8), 48)
        sheet.freeze_panes = "A3"
    workbook.save(path)
    return path


def _cell(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    return value


def _display_width(text: str) -> int:
    """Approximate column width: CJK characters take two cells."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
