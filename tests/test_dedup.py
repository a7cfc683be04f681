"""Knowing a lead again: listing and operator keys, and which referrals join an open one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wangjian.domain.dedup import (
    KEY_LENGTH,
    listing_key,
    listing_keys,
    match_hash,
    match_hashes,
    operator_keys,
    repeated_in_chunk,
    resolve_attachments,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://item.taobao.com/item.htm?id=5",
        "http://www.Item.Taobao.com/item.htm?id=5",
        "item.taobao.com/item.htm/?id=5#reviews",
        "https://item.taobao.com/item.htm?spm=a1z10.1&id=5&utm_source=wx",
    ],
)
def test_the_same_listing_has_the_same_key(url: str) -> None:
    assert listing_key(url) == "item.taobao.com/item.htm?id=5"


def test_different_listings_differ_and_long_urls_fit() -> None:
    assert listing_key("shop.example.com/item/5") != listing_key("shop.example.com/item/6")
    assert listing_key("https://shop.example.com/Item/5") != listing_key(
        "https://shop.example.com/item/5"
    )
    long = "https://shop.example.com/" + "x" * 3000
    key = listing_key(long)
    assert key is not None and len(key) <= KEY_LENGTH and key == listing_key(long + "#top")
    assert listing_keys(np.array(["", "a.example.com/1"], dtype=object)).tolist() == [
        None,
        "a.example.com/1",
    ]


def test_operator_key_is_the_credit_code_else_the_name_in_its_region() -> None:
    keys = operator_keys(
        np.array(["91350100M000100Y43", "", "", ""], dtype=object),
        np.array(
            ["甲公司", "太原市 某某（小店）商贸有限公司", "太原市某某(小店)商贸有限公司", ""],
            dtype=object,
        ),
        np.array(["350100", "140105", "140105", "140105"], dtype=object),
    )
    assert keys[0] == "cc:91350100M000100Y43"
    assert keys[1] == keys[2] == "name:140105:太原市某某小店商贸有限公司"
    assert keys[3] is None


def test_repeats_within_a_chunk_are_found_by_source_and_id() -> None:
    source = np.array(["a", "a", "b", "a"], dtype=object)
    lead_id = np.array(["1", "2", "1", "1"], dtype=object)
    assert repeated_in_chunk(source, lead_id).tolist() == [False, False, False, True]


def candidates(*rows: tuple[str, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"agency": a, "category": "trademark", "listing_key": key, "operator_key": o}
            for a, key, o in rows
        ]
    )


def test_a_referral_joins_the_first_with_its_listing_or_operator_through_chains() -> None:
    frame = candidates(
        ("samr", "L1", "O1"),  # 0 made
        ("samr", "L2", "O1"),  # 1 joins 0 (operator)
        ("samr", "L2", "O2"),  # 2 joins 1's referral, that is 0 (listing)
        ("police", "L1", "O1"),  # 3 made: another agency
        ("samr", None, "O2"),  # 4 joins 2, that is 0
        ("samr", "L9", None),  # 5 made
    )
    made, target = resolve_attachments(frame, np.full(6, -1))
    assert made.tolist() == [True, False, False, True, False, True]
    assert target.tolist() == [-1, -1, -1, -4, -1, -6]


def test_a_referral_open_in_the_ledger_takes_those_that_match_it() -> None:
    frame = candidates(("samr", "L1", "O1"), ("samr", "L2", "O1"), ("samr", "L3", None))
    made, target = resolve_attachments(frame, np.array([41, -1, -1]))
    assert made.tolist() == [False, False, True]
    assert target.tolist() == [41, 41, -3]


def test_match_hashes_are_of_the_category_and_the_key() -> None:
    categories = np.array(["trademark", "trademark", "price", None, "price"], dtype=object)
    keys = np.array(
        ["a.example.com/1", "a.example.com/1", "a.example.com/1", "x", None], dtype=object
    )
    hashes = match_hashes(categories, keys).tolist()
    assert hashes == [match_hash(c, k) for c, k in zip(categories, keys, strict=True)]
    assert hashes[0] == hashes[1] != hashes[2]  # the same key in another category is another
    assert hashes[4] is None and all(-(2**63) <= h < 2**63 for h in hashes[:4])
    # Stored in the ledger: the value must never change (migration 0003 computed it too).
    assert match_hash("trademark", "a.example.com/1") == -850052117115020916
