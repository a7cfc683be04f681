"""Charts for the HTML report, drawn with matplotlib as SVG with text kept as text.

Keeping text as SVG text (not paths) lets the reader's browser render the Chinese labels with
its own CJK fonts, so the report needs no font on the machine that makes it.
"""

from __future__ import annotations

import io
import logging
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from wangjian.reporting.statistics import OUTCOME_ZH, OUTCOMES, CampaignStatistics

PALETTE = ["#1f5fa8", "#e07b39", "#4b9a5a", "#b83a4b", "#7b5ea7", "#8c8c8c", "#c9a227"]

plt.rcParams.update(
    {
        "svg.fonttype": "none",
        "font.family": [
            "Noto Sans CJK SC",
            "Source Han Sans SC",
            "Microsoft YaHei",
            "PingFang SC",
            "WenQuanYi Micro Hei",
            "SimHei",
            "DejaVu Sans",
        ],
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
    }
)
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def _svg(figure: plt.Figure) -> str:
    buffer = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing CJK glyphs on this machine: the browser has them
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def outcome_chart(stats: CampaignStatistics) -> str:
    """Horizontal bars: how referrals ended (办理结果)."""
    codes = [*OUTCOMES, "pending"]
    values = [stats.by_outcome.get(code, 0) for code in codes]
    figure, axis = plt.subplots(figsize=(7, 3.2))
    bars = axis.barh([OUTCOME_ZH[c] for c in codes][::-1], values[::-1], color=PALETTE[0])
    axis.bar_label(bars, padding=3)
    axis.set_title("办理结果(件)")
    return _svg(figure)


def agency_chart(stats: CampaignStatistics) -> str:
    """Stacked bars per member agency: decided on time, decided late, pending, overdue."""
    table = stats.tables["表2 成员单位办理情况"]
    table = table[table["成员单位"] != "合计"]
    if table.empty:
        return ""
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    received = table["接收移送(件)"].astype(int)
    decided = table["已办结(件)"].astype(int)
    overdue = table["逾期未办(件)"].astype(int)
    pending = (received - decided - overdue).clip(lower=0)
    labels = table["成员单位"].tolist()
    axis.barh(labels, decided, color=PALETTE[2], label="已办结")
    axis.barh(labels, pending, left=decided, color=PALETTE[5], label="办理中")
    axis.barh(labels, overdue, left=decided + pending, color=PALETTE[3], label="逾期未办")
    axis.invert_yaxis()
    axis.legend(loc="lower right", frameon=False)
    axis.set_title("成员单位办理情况(件)")
    return _svg(figure)


def monthly_chart(stats: CampaignStatistics) -> str:
    """Leads and referrals per month."""
    table = stats.tables["表4 月度情况"]
    table = table[table["月份"] != "合计"]
    if table.empty:
        return ""
    figure, axis = plt.subplots(figsize=(7, 3))
    positions = range(len(table))
    axis.bar(
        [p - 0.2 for p in positions],
        table["收到线索(条)"],
        width=0.4,
        color=PALETTE[0],
        label="收到线索",
    )
    axis.bar(
        [p + 0.2 for p in positions], table["移送(件)"], width=0.4, color=PALETTE[1], label="移送"
    )
    axis.set_xticks(list(positions), table["月份"].tolist())
    axis.legend(frameon=False)
    axis.set_title("月度线索与移送")
    return _svg(figure)


def category_chart(stats: CampaignStatistics, top: int = 10) -> str:
    """The most frequent violation categories."""
    table = stats.tables["表3 违法类别"]
    table = table[table["违法类别"] != "合计"].head(top)
    if table.empty:
        return ""
    figure, axis = plt.subplots(figsize=(7, 0.4 * len(table) + 1))
    bars = axis.barh(
        table["违法类别"].tolist()[::-1],
        pd.Series(table["线索(条)"]).astype(int).tolist()[::-1],
        color=PALETTE[4],
    )
    axis.bar_label(bars, padding=3)
    axis.set_title(f"线索最多的{len(table)}类违法行为(条)")
    return _svg(figure)
