"""The Markdown draft of the campaign's summary report (总结报告), filled with the figures."""

from __future__ import annotations

from wangjian.campaign import CampaignConfig
from wangjian.reporting.statistics import OUTCOME_ZH, CampaignStatistics


def _percent(value: object) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]


def summary_markdown(
    stats: CampaignStatistics, config: CampaignConfig, *, listed: list[str], praised: list[str]
) -> str:
    """A draft the office edits: 基本情况 filled in, the other parts with prompts and figures."""
    campaign = config.campaign
    outcomes = "、".join(
        f"{OUTCOME_ZH[code]}{count}件" for code, count in stats.by_outcome.items() if count
    )
    agency_table = stats.tables["表2 成员单位办理情况"]
    lines = [
        f"# {campaign.name}工作总结(草稿)",
        "",
        f"> {campaign.office.name} · 数据截至{stats.as_of:%Y年%m月%d日} · 本稿由系统根据台账自动生成,请核实后修改。",
        "",
        "## 一、基本情况",
        "",
        f"专项行动期间,{campaign.jurisdiction.name}网络市场监管联席会议{len(config.agencies)}个成员单位"
        f"共收到网络市场违法线索{stats.leads}条(另有重复线索{stats.duplicates}条未重复移送),"
        f"按职责分工和属地管理原则移送{stats.referrals}件,其中异地移送{stats.transfers_out}件。"
        f"办理结果:{outcomes or '暂无'}。",
        "",
        f"成员单位按期签收率{_percent(stats.on_time_rates.get('acknowledgement'))},"
        f"按期办结率{_percent(stats.on_time_rate)};逾期未办{stats.overdue}件,"
        f"提级催办{stats.escalated}件次,挂牌督办{stats.listed_for_supervision}件次。",
        "",
    ]
    assist = stats.assist
    if assist.get("requests"):
        median = assist["median_answer_hours"]
        lines += [
            f"向电商平台发出协查函{assist['requests']}件,已答复{assist['answered']}件"
            f"(其中查无此经营者{assist['no_such_operator']}件),"
            f"答复用时中位数{'—' if median is None else median}小时,"
            f"24小时内答复率{_percent(assist['within_24h_share'])}。",
            "",
        ]
    lines += [
        "| 成员单位 | 接收移送 | 已办结 | 按期办结率 | 逾期未办 |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in agency_table.to_dict("records"):
        if row.get("成员单位") == "合计":
            continue
        lines.append(
            f"| {row['成员单位']} | {row['接收移送(件)']} | {row['已办结(件)']} | "
            f"{row['按期办结率']} | {row['逾期未办(件)']} |"
        )
    lines += [
        "",
        "## 二、主要做法和经验",
        "",
        "(请结合各成员单位总结报告补充:线索移送、联合执法、平台协查、信用惩戒等做法。)",
        "",
    ]
    if praised:
        lines += ["表现突出的成员单位(按期签收、按期办结):" + "、".join(praised) + "。", ""]
    lines += ["## 三、存在问题", ""]
    if listed:
        lines += (
            ["以下事项逾期未办,已由领导小组挂牌督办:", ""] + [f"- {item}" for item in listed] + [""]
        )
    else:
        lines += ["(请补充。)", ""]
    lines += [
        "## 四、下一步打算",
        "",
        "(请补充:巩固行动成果、健全长效机制、加强跨区域协作等。)",
        "",
        f"附件:专项行动情况统计表(statistics.xlsx);报送:{campaign.report_to or '上级主管部门'}。",
        "",
    ]
    return "\n".join(lines)
