"""The columns of a lead file (CONTRACT.md) and of a list of removed operators, with limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    max_length: int
    label_zh: str


# Limits follow the ledger's columns; a summary is free text but a 50 MB cell is not a summary.
LEAD_COLUMNS: tuple[Column, ...] = (
    Column("lead_id", True, 100, "线索编号"),
    Column("source", False, 40, "来源"),
    Column("category", False, 40, "类别"),
    Column("summary", False, 20_000, "摘要"),
    Column("platform", False, 100, "平台"),
    Column("shop_name", False, 200, "店铺名称"),
    Column("url", False, 2000, "链接"),
    Column("operator_name", False, 200, "经营者名称"),
    Column("credit_code", False, 18, "统一社会信用代码"),
    Column("region_code", True, 6, "行政区划代码"),
    Column("found_on", True, 40, "发现日期"),
    Column("suspected_crime", False, 10, "涉嫌犯罪"),
    Column("amount_yuan", False, 30, "涉案金额"),
)

COLUMNS_BY_NAME = {c.name: c for c in LEAD_COLUMNS}
LEAD_COLUMN_NAMES = tuple(c.name for c in LEAD_COLUMNS)
REQUIRED_COLUMNS = tuple(c.name for c in LEAD_COLUMNS if c.required)


@dataclass(frozen=True)
class FileSchema:
    """The columns a kind of file has: the readers check its header and read these."""

    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


LEAD_SCHEMA = FileSchema(LEAD_COLUMNS)

# The shared list of removed and sanctioned operators (一处清退、处处关店), `wangjian listed import`.
LISTED_COLUMNS: tuple[Column, ...] = (
    Column("list_kind", True, 20, "名录类型"),
    Column("action", False, 10, "操作"),
    Column("credit_code", False, 18, "统一社会信用代码"),
    Column("operator_name", False, 200, "经营者名称"),
    Column("platform", False, 100, "平台"),
    Column("shop_name", False, 200, "店铺名称"),
    Column("shop_id", False, 100, "店铺编号"),
    Column("region_code", False, 6, "行政区划代码"),
    Column("reason", False, 2000, "原因"),
    Column("listed_on", False, 40, "列入日期"),
    Column("delisted_on", False, 40, "移出日期"),
)
LISTED_SCHEMA = FileSchema(LISTED_COLUMNS)
