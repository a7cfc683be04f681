"""Signed links: scoped to a party, expiring, revocable, unforgeable."""

from __future__ import annotations

import time

import pytest

from wangjian.access import TokenRejected, portal_link, read_link_token, sign_link_token


def test_a_token_names_its_party_and_version() -> None:
    token = sign_link_token("k" * 32, party="customs", version=3)
    claims = read_link_token("k" * 32, token, max_age_seconds=60)
    assert (claims.party, claims.version) == ("customs", 3)


def test_forged_and_expired_tokens_are_refused() -> None:
    token = sign_link_token("k" * 32, party="customs", version=1)
    with pytest.raises(TokenRejected, match="forged"):
        read_link_token("other-key" * 4, token, max_age_seconds=60)
    with pytest.raises(TokenRejected, match="forged"):
        read_link_token("k" * 32, token[:-2] + "xx", max_age_seconds=60)
    time.sleep(1.1)
    with pytest.raises(TokenRejected, match="expired"):
        read_link_token("k" * 32, token, max_age_seconds=0)


def test_portal_link_shape() -> None:
    link = portal_link("http://x/", "k" * 32, party="post", version=1, path="referrals/7")
    assert link.startswith("http://x/a/") and link.endswith("/referrals/7")
