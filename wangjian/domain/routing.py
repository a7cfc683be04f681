"""Where a lead goes, and why: pure rules, table-driven from the campaign configuration.

- By kind of violation (按职责分工): the category's agency (`agencies.yaml`). A lead without a
  category is classified from its summary by the keywords of `categories.yaml`, the first
  category in file order whose keyword appears winning; no keyword, no category: held for the
  office to classify by hand.
- By place (属地管理): an operator registered outside the jurisdiction is transferred out to
  that region's regulator (the most specific entry of `regions.yaml`), not referred locally; a
  region the directory lacks: held for the office.
- A suspected crime also goes to the police (行政执法与刑事司法衔接), as a referral of kind
  `crime`; when the category is the police's already, its one referral is of kind `crime`.

Every referral carries the rule that decided it and a sentence in Chinese saying why. The
rules run on whole chunks (pandas), not lead by lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from wangjian.campaign import CampaignConfig
from wangjian.campaign.models import region_matches

CRIME_AGENCY = "police"

# Referral kinds (each has an SLA policy in sla.yaml) and the rules that make them.
KIND_REFERRAL, KIND_CRIME, KIND_TRANSFER = "referral", "crime", "transfer_out"
RULE_OWNER = "category_owner"  # the category's agency
RULE_CRIME_OWNER = "crime_category_owner"  # the category is the police's and a crime is suspected
RULE_CRIME = "crime_coreferral"  # a suspected crime, also to the police
RULE_TRANSFER = "transfer_out"  # operator registered elsewhere, to that region's regulator

ORIGIN_GIVEN, ORIGIN_KEYWORDS = "given", "keywords"

HOLD_UNCLASSIFIED = "未填写类别,且摘要未匹配任何类别关键词,待办公室人工分类"
HOLD_NO_OWNER = "类别“{name}”({code})在本行动中没有负责的成员单位,待办公室指定"
HOLD_NO_REGULATOR = "经营者所在地区{region}不在本辖区,且名录中没有该地区的监管部门,待办公室处理"


@dataclass(frozen=True)
class RoutingTable:
    """The routing rules of one campaign, read once from its configuration."""

    owner: dict[str, str]  # category → agency code
    category_names: dict[str, str]
    agency_names: dict[str, str]
    keywords: tuple[tuple[str, tuple[str, ...]], ...]  # (category, keywords), in file order
    jurisdiction_name: str
    jurisdiction_patterns: tuple[str, ...]
    regulators: dict[str, tuple[str, str]] = field(repr=False)  # directory code → (party, name)
    crime_agency: str | None = CRIME_AGENCY

    @classmethod
    def from_config(cls, config: CampaignConfig) -> RoutingTable:
        jurisdiction = config.campaign.jurisdiction
        agencies = config.agencies
        return cls(
            owner=dict(config.category_owner),
            category_names={c.code: c.name_zh for c in config.categories.values()},
            agency_names={a.code: a.name_zh for a in agencies.values()},
            keywords=tuple(
                (c.code, tuple(k.casefold() for k in c.keywords))
                for c in config.categories_file.categories
                if c.keywords
            ),
            jurisdiction_name=jurisdiction.name,
            jurisdiction_patterns=tuple(jurisdiction.region_codes),
            regulators={r.region_code: (r.code, r.name_zh) for r in config.regions.regulators},
            crime_agency=CRIME_AGENCY if CRIME_AGENCY in agencies else None,
        )

    def covers(self, region_code: str) -> bool:
        """Whether the jurisdiction covers a region (`xx0000` a province, `xxxx00` a city)."""
        return any(region_matches(p, region_code) for p in self.jurisdiction_patterns)

    def regulator_for(self, region_code: str) -> tuple[str, str] | None:
        """(party code, name) of the most specific regulator listed for a region, if any."""
        for candidate in (region_code, region_code[:4] + "00", region_code[:2] + "0000"):
            if candidate in self.regulators:
                return self.regulators[candidate]
        return None

    @cached_property
    def _any_keyword(self) -> re.Pattern[str] | None:
        words = sorted({k for _c, ks in self.keywords for k in ks}, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, words))) if words else None

    def classify(self, summary: str) -> tuple[str, str] | None:
        """(category, keyword) for a summary: the first category in order with a keyword in it."""
        text = summary.casefold()
        any_keyword = self._any_keyword
        if any_keyword is None or any_keyword.search(text) is None:
            return None
        for code, words in self.keywords:
            for word in words:
                if word in text:
                    return code, word
        return None


@dataclass
class Routing:
    """The outcome for a chunk: per lead (aligned with the input) and the referrals to make."""

    category: np.ndarray  # final category or None
    category_origin: np.ndarray  # given | keywords | None
    held: np.ndarray  # bool
    hold_reason: np.ndarray  # str or None
    referrals: pd.DataFrame  # lead (position), agency, kind, rule, reason, category

    @property
    def held_count(self) -> int:
        return int(self.held.sum())


REFERRAL_COLUMNS = ["lead", "agency", "kind", "rule", "reason", "category"]


def classify_leads(
    table: RoutingTable, *, category: np.ndarray, summary: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill in missing categories from summaries: (category, origin, keyword) per lead."""
    category = category.copy()
    category[category == ""] = None
    origin = np.full(len(category), ORIGIN_GIVEN, dtype=object)
    origin[pd.isna(category)] = None
    keyword = np.full(len(category), None, dtype=object)
    missing = np.flatnonzero(pd.isna(category) & (summary != ""))
    if len(missing):
        found = [table.classify(s) for s in summary[missing]]
        hits = np.array([f is not None for f in found], dtype=bool)
        chosen = missing[hits]
        category[chosen] = [f[0] for f in found if f is not None]
        keyword[chosen] = [f[1] for f in found if f is not None]
        origin[chosen] = ORIGIN_KEYWORDS
    return category, origin, keyword


def _lookup(values: np.ndarray, table: Mapping[str, Any]) -> np.ndarray:
    """`table[v]` for each value (None where absent), at C speed for a chunk."""
    return pd.Series(values, dtype=object).map(table).to_numpy(dtype=object)


def route_leads(table: RoutingTable, leads: pd.DataFrame) -> Routing:
    """Route a chunk of validated leads (columns category, summary, region_code, suspected_crime)."""
    n = len(leads)
    category, origin, keyword = classify_leads(
        table,
        category=leads["category"].to_numpy(dtype=object),
        summary=leads["summary"].to_numpy(dtype=object),
    )
    regions = leads["region_code"].to_numpy(dtype=object)
    crime = leads["suspected_crime"].to_numpy(dtype=bool)

    unique_regions = pd.unique(regions)
    inside = _lookup(regions, {r: table.covers(r) for r in unique_regions}).astype(bool)
    outside = [r for r in unique_regions if not table.covers(r)]
    regulator = _lookup(regions, {r: table.regulator_for(r) for r in outside})
    regulator[inside] = None

    classified = ~pd.isna(category)
    owner = _lookup(category, table.owner)  # type: ignore[arg-type]
    has_owner = ~pd.isna(owner)
    has_regulator = ~pd.isna(regulator)

    hold_reason = np.full(n, None, dtype=object)
    hold_reason[~classified] = HOLD_UNCLASSIFIED
    no_owner = classified & inside & ~has_owner
    hold_reason[no_owner] = [
        HOLD_NO_OWNER.format(name=table.category_names.get(c, c), code=c)
        for c in category[no_owner]
    ]
    no_regulator = classified & ~inside & ~has_regulator
    hold_reason[no_regulator] = [HOLD_NO_REGULATOR.format(region=r) for r in regions[no_regulator]]
    held = ~pd.isna(hold_reason)

    # Reasons are few distinct sentences: built once per category (or region), then looked up.
    names = {c: f"“{name}”({c})" for c, name in table.category_names.items()}
    agency_of = {c: table.agency_names.get(a, a) for c, a in table.owner.items()}
    keyword_note = np.full(n, "", dtype=object)
    by_keyword = origin == ORIGIN_KEYWORDS
    keyword_note[by_keyword] = [f";类别依摘要关键词“{k}”判定" for k in keyword[by_keyword]]
    police = table.crime_agency
    parts: list[pd.DataFrame] = []

    local = ~held & inside
    crime_owned = local & crime & (owner == police) if police else np.zeros(n, dtype=bool)
    plain = local & ~crime_owned
    for mask, kind, rule, sentence in (
        (plain, KIND_REFERRAL, RULE_OWNER, "类别{cat}属{agency}职责,按职责分工移送"),
        (
            crime_owned,
            KIND_CRIME,
            RULE_CRIME_OWNER,
            "类别{cat}属{agency}职责,且线索标注涉嫌犯罪,按行刑衔接移送",
        ),
    ):
        if mask.any():
            idx = np.flatnonzero(mask)
            sentences = {c: sentence.format(cat=names[c], agency=agency_of[c]) for c in table.owner}
            reasons = _lookup(category[idx], sentences) + keyword_note[idx]
            parts.append(_referrals(idx, owner[idx], kind, rule, reasons, category[idx]))

    transfer = ~held & ~inside
    if transfer.any():
        idx = np.flatnonzero(transfer)
        where = {
            r: f"经营者所在地区{r}不在本辖区({table.jurisdiction_name}),按属地管理移送{reg[1]}"
            for r in outside
            if (reg := table.regulator_for(r)) is not None
        }
        what = {c: f";类别{label}" for c, label in names.items()}
        reasons = _lookup(regions[idx], where) + _lookup(category[idx], what) + keyword_note[idx]
        agencies = _lookup(regions[idx], {r: table.regulator_for(r)[0] for r in where})  # type: ignore[index]
        parts.append(
            _referrals(idx, agencies, KIND_TRANSFER, RULE_TRANSFER, reasons, category[idx])
        )

    also_police = plain & crime & (owner != police) if police else np.zeros(n, dtype=bool)
    if also_police.any():
        idx = np.flatnonzero(also_police)
        police_name = table.agency_names.get(police or "", police)
        sentences = {
            c: f"线索标注涉嫌犯罪,依行政执法与刑事司法衔接规定同时移送{police_name}"
            f"(类别{names[c]}由{agency_of[c]}主办)"
            for c in table.owner
        }
        reasons = _lookup(category[idx], sentences)
        agencies = np.full(len(idx), police, dtype=object)
        parts.append(_referrals(idx, agencies, KIND_CRIME, RULE_CRIME, reasons, category[idx]))

    if parts:
        referrals = pd.concat(parts, ignore_index=True).sort_values(
            ["lead", "order"], kind="stable", ignore_index=True
        )
    else:
        referrals = pd.DataFrame({c: pd.Series(dtype=object) for c in [*REFERRAL_COLUMNS, "order"]})
    return Routing(
        category=category,
        category_origin=origin,
        held=held,
        hold_reason=hold_reason,
        referrals=referrals.drop(columns=["order"]),
    )


def _referrals(
    lead: np.ndarray,
    agency: np.ndarray,
    kind: str,
    rule: str,
    reason: np.ndarray,
    category: np.ndarray,
) -> pd.DataFrame:
    # A lead's main referral sorts before its crime co-referral.
    return pd.DataFrame(
        {
            "lead": lead.astype(np.int64),
            "agency": agency,
            "kind": kind,
            "rule": rule,
            "reason": reason,
            "category": category,
            "order": 1 if rule == RULE_CRIME else 0,
        }
    )
