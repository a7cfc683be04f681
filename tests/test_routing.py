"""Routing: by category to its agency, by place to another region's regulator, crimes to the
police, summaries classified by keyword, and the leads held for the office — each with a why."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from wangjian.campaign import CampaignConfig, load_config
from wangjian.domain.routing import (
    HOLD_UNCLASSIFIED,
    ORIGIN_GIVEN,
    ORIGIN_KEYWORDS,
    RoutingTable,
    route_leads,
)
from wangjian.settings import PROJECT_ROOT

CONFIG = load_config(PROJECT_ROOT / "config")
TABLE = RoutingTable.from_config(CONFIG)


def leads(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {"category": "", "summary": "", "region_code": "140105", "suspected_crime": False}
    return pd.DataFrame([{**base, **row} for row in rows])


def referrals_of(
    frame: pd.DataFrame, table: RoutingTable = TABLE
) -> list[tuple[int, str, str, str]]:
    routing = route_leads(table, frame)
    return [(r.lead, r.agency, r.kind, r.rule) for r in routing.referrals.itertuples(index=False)]


@pytest.mark.parametrize("category, agency", sorted(CONFIG.category_owner.items()))
def test_every_category_goes_to_its_agency(category: str, agency: str) -> None:
    routing = route_leads(TABLE, leads({"category": category}))
    (referral,) = routing.referrals.itertuples(index=False)
    assert (referral.agency, referral.kind, referral.rule) == (agency, "referral", "category_owner")
    assert referral.category == category
    assert CONFIG.agencies[agency].name_zh in referral.reason
    assert CONFIG.categories[category].name_zh in referral.reason
    assert routing.category_origin.tolist() == [ORIGIN_GIVEN]


def test_every_configured_category_has_an_agency() -> None:
    assert set(CONFIG.category_owner) == set(CONFIG.categories)


@pytest.mark.parametrize(
    "region, regulator",
    [
        ("110105", "reg-110000"),  # Beijing: the province's regulator
        ("140106", "reg-140106"),  # a district of the city with its own entry
        ("140199", "reg-140100"),  # a district without one: the city's
        ("140202", "reg-140000"),  # another city of the province: the province's
    ],
)
def test_operator_elsewhere_is_transferred_to_that_regions_regulator(
    region: str, regulator: str
) -> None:
    routing = route_leads(TABLE, leads({"category": "trademark", "region_code": region}))
    (referral,) = routing.referrals.itertuples(index=False)
    assert (referral.agency, referral.kind, referral.rule) == (
        regulator,
        "transfer_out",
        "transfer_out",
    )
    assert region in referral.reason and "属地管理" in referral.reason
    assert CONFIG.regulator_for(region) is not None
    assert CONFIG.regulator_for(region).code == regulator  # type: ignore[union-attr]


def test_routing_table_finds_the_same_regulator_as_the_config() -> None:
    codes = [
        "110000",
        "110105",
        "140000",
        "140100",
        "140106",
        "140181",
        "140199",
        "440305",
        "710000",
    ]
    for code in codes:
        expected = CONFIG.regulator_for(code)
        found = TABLE.regulator_for(code)
        assert (found[0] if found else None) == (expected.code if expected else None), code


def test_operator_in_a_region_without_a_regulator_is_held() -> None:
    routing = route_leads(TABLE, leads({"category": "trademark", "region_code": "710000"}))
    assert routing.referrals.empty
    assert routing.held.tolist() == [True]
    assert "710000" in routing.hold_reason[0] and "待办公室" in routing.hold_reason[0]


def test_suspected_crime_also_goes_to_the_police() -> None:
    got = referrals_of(leads({"category": "counterfeit_goods", "suspected_crime": True}))
    assert got == [
        (0, "samr", "referral", "category_owner"),
        (0, "police", "crime", "crime_coreferral"),
    ]


def test_a_police_category_with_a_suspected_crime_is_one_crime_referral() -> None:
    got = referrals_of(leads({"category": "fraud", "suspected_crime": True}, {"category": "fraud"}))
    assert got == [
        (0, "police", "crime", "crime_category_owner"),
        (1, "police", "referral", "category_owner"),
    ]


def test_a_crime_elsewhere_is_transferred_only() -> None:
    got = referrals_of(
        leads({"category": "trademark", "region_code": "310115", "suspected_crime": True})
    )
    assert got == [(0, "reg-310000", "transfer_out", "transfer_out")]


def test_without_police_in_the_campaign_a_crime_is_not_coreferred() -> None:
    table = dataclasses.replace(TABLE, crime_agency=None)
    got = referrals_of(leads({"category": "trademark", "suspected_crime": True}), table)
    assert got == [(0, "samr", "referral", "category_owner")]


@pytest.mark.parametrize(
    "summary, category, keyword",
    [
        ("网店销售高仿名牌包", "trademark", "高仿"),
        ("代购的进口化妆品疑似假冒", "counterfeit_import", "进口"),  # earlier in the file wins
        ("以刷单返利为名骗取钱财", "fraud", "骗取"),  # fraud comes before fake_reviews
        ("使用goip设备群发短信", "fraud", "goip"),  # keywords match whatever the case
        ("商家组织刷单提升销量", "fake_reviews", "刷单"),
    ],
)
def test_summary_without_category_is_classified_by_keyword(
    summary: str, category: str, keyword: str
) -> None:
    routing = route_leads(TABLE, leads({"summary": summary}))
    assert routing.category.tolist() == [category]
    assert routing.category_origin.tolist() == [ORIGIN_KEYWORDS]
    (referral,) = routing.referrals.itertuples(index=False)
    assert referral.agency == CONFIG.category_owner[category]
    assert f"关键词“{keyword}”" in referral.reason


def test_a_given_category_is_not_reclassified() -> None:
    routing = route_leads(TABLE, leads({"category": "price", "summary": "高仿名牌包"}))
    assert routing.category.tolist() == ["price"]
    assert routing.category_origin.tolist() == [ORIGIN_GIVEN]


def test_summary_matching_no_keyword_is_held_for_the_office() -> None:
    routing = route_leads(
        TABLE, leads({"summary": "消费者反映商家态度不好"}, {"category": "price"})
    )
    assert routing.held.tolist() == [True, False]
    assert routing.hold_reason.tolist() == [HOLD_UNCLASSIFIED, None]
    assert routing.category[0] is None and routing.category_origin[0] is None
    assert routing.referrals["lead"].tolist() == [1]


def test_a_category_without_an_agency_is_held() -> None:
    owner = {c: a for c, a in TABLE.owner.items() if c != "wildlife"}
    table = dataclasses.replace(TABLE, owner=owner)
    routing = route_leads(table, leads({"category": "wildlife"}))
    assert routing.held.tolist() == [True]
    assert "wildlife" in routing.hold_reason[0]


def test_a_chunk_routes_all_at_once(default_config: CampaignConfig) -> None:
    rng = np.random.default_rng(7)
    categories = sorted(default_config.categories)
    frame = leads(
        *(
            {
                "category": categories[int(rng.integers(len(categories)))],
                "region_code": "140105" if rng.random() < 0.9 else "330106",
                "suspected_crime": bool(rng.random() < 0.1),
            }
            for _ in range(2000)
        )
    )
    routing = route_leads(TABLE, frame)
    referrals = routing.referrals
    assert not routing.held.any()
    # Each lead: one main referral, and one to the police for a crime at home outside its remit.
    home = frame["region_code"].eq("140105").to_numpy()
    police = frame["category"].map(TABLE.owner).eq("police").to_numpy()
    crime = frame["suspected_crime"].to_numpy()
    expected = len(frame) + int((home & crime & ~police).sum())
    assert len(referrals) == expected
    assert referrals.groupby(["lead", "agency"]).size().max() == 1
    assert referrals["reason"].str.len().min() > 10
    assert referrals["lead"].is_monotonic_increasing
