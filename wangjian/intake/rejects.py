"""The reject report: a CSV of the rows not imported — row, column, value, reason (中文, English).

Written as the chunks are checked, with a BOM so that Excel opens the Chinese right. A rerun of
the same file writes it afresh (resumed chunks are checked again), so it always covers the
whole file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wangjian.intake.validate import REJECT_COLUMNS

HEADER = ["row", "column", "value", "reason_zh", "reason_en"]


@dataclass(frozen=True)
class RejectReport:
    path: Path

    @classmethod
    def for_import(cls, directory: Path, *, import_id: int, file_name: str) -> RejectReport:
        stem = Path(file_name).stem[:80] or "leads"
        return cls(Path(directory) / f"import-{import_id}-{stem}-rejects.csv")

    def reset(self) -> None:
        """Start the report afresh (a rerun rewrites it whole)."""
        self.path.unlink(missing_ok=True)

    def append(self, rejects: pd.DataFrame) -> int:
        """Add reject rows; returns how many were written."""
        if rejects.empty:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self.path.open("a", encoding="utf-8-sig" if new else "utf-8", newline="") as handle:
            if new:
                csv.writer(handle).writerow(HEADER)
            rejects[REJECT_COLUMNS].to_csv(handle, header=False, index=False)
        return len(rejects)

    def result(self) -> Path | None:
        """The report's path, or None when no row was rejected."""
        return self.path if self.path.exists() else None
