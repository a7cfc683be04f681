"""The shared list of removed and sanctioned operators (一处清退、处处关店): pure rules.

An operator is *listed* when a platform removed it (平台清退) or when it is on the
abnormal-operation list (经营异常名录) or the serious-violation list (严重违法失信名单). It is
known by its unified social credit code and, on a platform, by its shop (the shop's id, else its
name). Leads name platforms freely (淘宝, 淘宝网, Taobao), so platform names are folded to the
configured platform's code where one matches, and shop names are compared without spaces,
punctuation or full-width forms.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from wangjian.campaign.models import Platform, region_matches
from wangjian.domain.dedup import operator_name_key

REMOVED = "removed_by_platform"
ABNORMAL = "abnormal_operation"
SERIOUS = "serious_violation"

LIST_KINDS: dict[str, tuple[str, str]] = {
    REMOVED: ("平台清退", "removed by a platform"),
    ABNORMAL: ("经营异常名录", "abnormal-operation list"),
    SERIOUS: ("严重违法失信名单", "serious-violation (credit) list"),
}
# What a list file may write in its `list_kind` column.
KIND_WORDS: dict[str, str] = {
    **{code: code for code in LIST_KINDS},
    "平台清退": REMOVED,
    "被平台清退": REMOVED,
    "清退": REMOVED,
    "经营异常名录": ABNORMAL,
    "列入经营异常名录": ABNORMAL,
    "严重违法失信名单": SERIOUS,
    "严重违法失信企业名单": SERIOUS,
    "列入严重违法失信名单": SERIOUS,
}
LIST, DELIST = "list", "delist"
ACTION_WORDS: dict[str, str] = {
    "": LIST,
    LIST: LIST,
    "列入": LIST,
    DELIST: DELIST,
    "移出": DELIST,
    "移除": DELIST,
    "解除": DELIST,
}
# When a lead's operator is on more than one list, the graver listing is the one noted.
SEVERITY = {SERIOUS: 0, REMOVED: 1, ABNORMAL: 2}

# The digest tells a platform about an operator it hosts (its own removal, or its shop), or may
# host (removed elsewhere, or sanctioned).
HOSTS, MAY_HOST = "hosts", "may_host"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


class PlatformNames:
    """Platform names as leads and lists write them, folded to the configured platform's code."""

    def __init__(self, platforms: Iterable[Platform]) -> None:
        self.names: dict[str, str] = {}
        for platform in platforms:
            for name in (platform.code, platform.name_zh, platform.name_en, *platform.aliases):
                self.names[_fold(name)] = platform.code

    def key(self, text: str | None) -> str | None:
        """The platform's code, or the name itself normalised for a platform not configured."""
        if not text or not text.strip():
            return None
        folded = _fold(text)
        return self.names.get(folded) or operator_name_key(folded) or None

    def keys(self, values: np.ndarray) -> np.ndarray:
        """`key` of every value (each distinct value once)."""
        series = pd.Series(values, dtype=object)
        distinct = pd.unique(series.dropna())
        return series.map({v: self.key(v) for v in distinct}).to_numpy(dtype=object)


def shop_key(name: str | None) -> str | None:
    """A shop's name for comparison (no spaces, punctuation or full-width forms)."""
    if not name:
        return None
    return operator_name_key(name)[:200] or None


def shop_keys(values: np.ndarray) -> np.ndarray:
    series = pd.Series(values, dtype=object)
    distinct = pd.unique(series.dropna())
    return series.map({v: shop_key(v) for v in distinct}).to_numpy(dtype=object)


def identity_key(
    kind: str,
    *,
    credit_code: str | None,
    platform: str | None,
    shop_id: str | None,
    shop: str | None,
) -> str:
    """Who a listing is about, unique per list: a removal is per platform, a sanction per code."""
    if credit_code:
        who = f"cc:{credit_code}"
    elif shop_id:
        who = f"id:{shop_id.strip()}"
    elif shop:
        who = f"shop:{shop}"
    else:
        raise ValueError("a listing needs a credit code, a shop id or a shop name")
    if kind == REMOVED or not credit_code:
        who = f"{platform or '?'}|{who}"
    return who[:300]


def listing_note(kind: str, *, listed_on: date, platform_name: str | None) -> str:
    """Why a referral about a listed operator is urgent, as its reason says it."""
    day = f"{listed_on.year}年{listed_on.month}月{listed_on.day}日"
    if kind == REMOVED:
        where = f"被{platform_name}" if platform_name else "被电商平台"
        listed = f"该经营者已于{day}{where}清退(一处清退、处处关店)"
    elif kind == ABNORMAL:
        listed = f"该经营者已于{day}被列入经营异常名录"
    else:
        listed = f"该经营者已于{day}被列入严重违法失信名单"
    return f"{listed},按重点线索从快核查。"


def relation(
    platform: Platform, *, listed_platform: str | None, region_code: str | None
) -> str | None:
    """Whether a platform hosts a listed operator, may host it, or need not hear of it."""
    if listed_platform == platform.code:
        return HOSTS
    elsewhere = bool(platform.hosts_regions and region_code) and not any(
        region_matches(p, region_code or "") for p in platform.hosts_regions
    )
    return None if elsewhere else MAY_HOST
