"""Realistic lead files for the dispatch benchmark (and for anyone who needs a big one).

Mixed categories (most of them market regulation's), a tenth without a category but with a
summary the keywords classify, a few that no keyword matches, 5% of operators registered
outside the jurisdiction (some in regions the directory lacks), 3% suspected crimes, repeated
listings and operators (attached as evidence), 2% duplicate leads and 1% invalid rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np

from wangjian.domain.credit_code import ALPHABET, check_character

# (category, weight, summary fragments that mention it)
CATEGORIES: list[tuple[str, float, list[str]]] = [
    ("trademark", 14, ["销售高仿名牌箱包", "店铺出售山寨运动鞋", "傍名牌商品涉嫌侵犯商标"]),
    ("counterfeit_goods", 12, ["销售假冒伪劣电器", "以次充好销售劣质轮胎", "三无产品大量销售"]),
    (
        "false_advertising",
        12,
        ["宣称产品包治百病", "商品页面使用国家级、最佳等用语", "夸大宣传保健功效"],
    ),
    ("fake_reviews", 8, ["组织刷单提升销量", "好评返现诱导评价", "雇佣水军刷销量"]),
    ("unfair_terms", 3, ["页面声明最终解释权归商家所有", "特价商品概不退换"]),
    ("price", 6, ["先涨后降虚假打折", "未明码标价,结算时加价", "大数据杀熟,老客户价格更高"]),
    ("product_quality", 5, ["儿童玩具抽检不合格", "插线板无3C认证"]),
    ("food_drug", 9, ["网络销售处方药未审核处方", "减肥药添加违禁成分", "无证销售保健食品"]),
    ("consumer_rights", 7, ["拒绝七日无理由退货", "订金不退,售后推诿"]),
    ("unlicensed_operation", 4, ["网店未亮照经营", "未公示营业执照信息"]),
    ("counterfeit_import", 3, ["跨境电商销售假冒进口化妆品", "海淘代购商品涉嫌走私"]),
    ("prohibited_parcel", 1.5, ["快递夹带管制刀具", "寄递违禁品"]),
    ("courier_data_leak", 1, ["快递面单信息被倒卖", "快递信息泄露后遭诈骗电话"]),
    ("fraud", 2, ["以刷单返利为名实施诈骗", "钓鱼链接骗取支付密码"]),
    ("personal_info_theft", 1.5, ["贩卖公民个人信息", "出售身份证信息"]),
    ("pyramid_selling", 1, ["以拉人头方式发展下线", "缴纳入门费后层级返利"]),
    ("patent_counterfeit", 1, ["商品标注伪造的专利号", "假冒专利标识"]),
    ("piracy", 2, ["出售盗版电子书", "翻印教材在网上销售"]),
    ("illegal_site", 1, ["未备案网站售卖商品", "仿冒网站诱导付款"]),
    ("harmful_info", 1, ["商品详情页含低俗内容", "传播谣言引流"]),
    ("prepaid_card", 1, ["健身房储值卡未备案", "美容店会员卡跑路"]),
    ("wildlife", 1, ["网上出售象牙制品", "售卖穿山甲鳞片"]),
    ("tax_evasion", 1, ["网店销售不开票", "主播偷逃税款"]),
    ("tourism", 1, ["不合理低价游强迫购物", "旅行社未经许可经营"]),
]
NEUTRAL = ["消费者投诉商家服务态度差", "网店经营情况异常,请核实", "平台转来的举报线索"]
SOURCES = ["monitoring", "12315", "platform", "agency"]
SOURCE_WEIGHTS = [0.5, 0.25, 0.15, 0.1]
PLATFORMS = ["淘宝", "京东", "拼多多", "抖音", "快手", "美团", "闲鱼", "小红书"]
HOSTS = ["taobao", "jd", "pdd", "douyin", "kuaishou", "meituan", "xianyu", "xhs"]
SHOP_WORDS = ["优品", "好物", "潮流", "精选", "臻选", "惠民", "星辰", "百货", "数码", "母婴"]
# Inside the jurisdiction (config/campaign.yaml: 140105) and outside: other districts of the
# city, other provinces, and regions the directory lacks (held for the office).
HOME = "140105"
ELSEWHERE = ["140106", "140107", "140109", "140121", "110105", "310115", "330106", "440305"]
UNKNOWN = ["710000", "810000"]
HEADER = [
    "lead_id",
    "source",
    "category",
    "summary",
    "platform",
    "shop_name",
    "url",
    "operator_name",
    "credit_code",
    "region_code",
    "found_on",
    "suspected_crime",
    "amount_yuan",
]


def credit_code(rng: np.random.Generator, region: str) -> str:
    body = "".join(rng.choice(list(ALPHABET[:10] + "ABCDEFGH"), size=8))
    first17 = "91" + region + body + "0"
    return first17 + check_character(first17)


def generate_rows(
    rows: int, *, seed: int = 2021, start: int = 0, found_on: date | None = None
) -> Iterator[list[str]]:
    """Lead rows (as strings, in HEADER order), numbered from `start`, mixed as the module says."""
    rng = np.random.default_rng(seed)
    weights = np.array([w for _c, w, _s in CATEGORIES])
    category_index = rng.choice(len(CATEGORIES), size=rows, p=weights / weights.sum())
    kind = rng.random(rows)  # what goes wrong or special with each row
    region_draw = rng.random(rows)
    listing_draw = rng.random(rows)
    operator_pool = [
        (f"太原市{SHOP_WORDS[i % len(SHOP_WORDS)]}商贸有限公司{i}", credit_code(rng, HOME))
        for i in range(max(rows // 4, 10))
    ]
    written: list[tuple[str, str]] = []
    for n in range(rows):
        i = start + n
        code, _weight, fragments = CATEGORIES[category_index[n]]
        source = SOURCES[int(rng.choice(4, p=SOURCE_WEIGHTS))] if i % 7 == 0 else SOURCES[0]
        lead_id = f"{source.upper()[:3]}-{i:08d}"
        if kind[n] < 0.02 and written:  # a duplicate of an earlier lead
            source, lead_id = written[int(rng.integers(len(written)))]
        if i % 50 == 0:  # a sample of earlier leads, for duplicates to repeat
            written.append((source, lead_id))
        fragment = fragments[i % len(fragments)]
        category = code
        summary = f"{PLATFORMS[i % 8]}店铺{fragment},线索编号{i},请依法核查处理。"
        if 0.02 <= kind[n] < 0.11:  # classified from the summary's keywords
            category = ""
        elif 0.11 <= kind[n] < 0.115:  # no keyword: held for the office
            category, summary = "", f"{NEUTRAL[i % 3]}(编号{i})"
        r = region_draw[n]
        region = HOME if r < 0.95 else ELSEWHERE[i % 8] if r < 0.998 else UNKNOWN[i % 2]
        # 3%: the same listing as a recent lead (attached to its referral as evidence).
        listing = int(rng.integers(i - 100, i)) if listing_draw[n] < 0.03 and n > 100 else i
        platform = i % 8
        url = f"https://item.{HOSTS[platform]}.example.com/item/{listing}.html?spm=a{i % 97}"
        operator, code_ = operator_pool[int(rng.integers(len(operator_pool)))]
        if region != HOME:
            operator, code_ = f"外地经营者{i % 5000}有限公司", ""
        elif i % 3 == 0:
            code_ = ""  # operator known by name only
        found = found_on.isoformat() if found_on else f"2021-10-{1 + i % 25:02d}"
        crime = "true" if (i * 7919) % 100 < 3 else "false"
        amount = f"{(i * 37) % 100000 / 100:.2f}" if i % 5 < 3 else ""
        row = [
            lead_id,
            source,
            category,
            summary,
            PLATFORMS[platform],
            f"{SHOP_WORDS[i % 10]}{SHOP_WORDS[(i // 10) % 10]}旗舰店{i % 9973}",
            url,
            operator,
            code_,
            region,
            found,
            crime,
            amount,
        ]
        if kind[n] >= 0.99:  # an invalid row: one field broken
            broken = i % 5
            if broken == 0:
                row[9] = region[:5]
            elif broken == 1:
                row[10] = "2021-13-45"
            elif broken == 2:
                row[8] = (code_ or credit_code(rng, HOME))[:17] + "I"
            elif broken == 3:
                row[2] = "no_such_category"
            else:
                row[0] = ""
        yield row


def generate_leads(path: Path, rows: int, *, seed: int = 2021) -> Path:
    """Write `rows` lead rows to a UTF-8 CSV at `path` (mixed, as the module says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(generate_rows(rows, seed=seed))
    return path
