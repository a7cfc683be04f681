"""Knowing a lead again: duplicates, and leads that add evidence to a referral already open.

- The same `lead_id` from the same `source` is a duplicate: counted, never referred again.
- A lead about the same listing (its URL, normalised) or the same operator (its credit code,
  else its name in its region) and category as a referral still open with an agency adds
  evidence to that referral instead of being referred to the agency twice.

Pure functions over numpy arrays, so a chunk is handled in a few vectorised steps.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

KEY_LENGTH = 300  # the ledger's listing_key / operator_key columns

_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/?#]*)([^?#]*)(?:\?([^#]*))?", re.I)
# Parameters that say where a click came from, not what was listed.
_TRACKING = ("spm=", "utm_", "scm=", "from=", "share", "ref=", "src=", "pvid=", "tracelog=")
_NAME_NOISE = re.compile(r"[\s\W_]+")


def _fit(key: str) -> str:
    """Keys longer than the column are replaced by their digest (still equal when equal)."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def listing_key(url: str) -> str | None:
    """A listing's identity from its URL: no scheme, www, fragment or click-tracking."""
    text = url.strip()
    if not text:
        return None
    match = _URL.match(text)
    if match is None:  # pragma: no cover - the pattern matches any string
        return _fit(text)
    host, path, query = match.groups()
    key = host.lower() + path.rstrip("/")
    if query:
        kept = [p for p in query.split("&") if p and not p.lower().startswith(_TRACKING)]
        if kept:
            key += "?" + "&".join(kept)
    return _fit(key)


def listing_keys(urls: np.ndarray) -> np.ndarray:
    out = np.full(len(urls), None, dtype=object)
    given = urls != ""
    # Listing URLs repeat (that is the point): normalise each distinct one once.
    distinct = pd.unique(urls[given])
    mapping = {u: listing_key(u) for u in distinct}
    out[given] = pd.Series(urls[given], dtype=object).map(mapping).to_numpy(dtype=object)
    return out


def operator_name_key(name: str) -> str:
    """An operator's name for comparison: full-width folded, no spaces or punctuation."""
    return _NAME_NOISE.sub("", unicodedata.normalize("NFKC", name)).casefold()


def operator_keys(credit_codes: np.ndarray, names: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """An operator's identity: its credit code, else its normalised name within its region.

    A name alone is weak (two shops may share one); the region keeps namesakes elsewhere apart.
    """
    out = np.full(len(credit_codes), None, dtype=object)
    coded = credit_codes != ""
    out[coded] = np.char.add("cc:", credit_codes[coded].astype(str)).astype(object)
    named = ~coded & (names != "")
    if named.any():
        distinct = pd.unique(names[named])
        mapping = {n: operator_name_key(n) for n in distinct}
        normalised = pd.Series(names[named], dtype=object).map(mapping).to_numpy(dtype=object)
        keys = [
            _fit(f"name:{r}:{n}") if n else None
            for r, n in zip(regions[named], normalised, strict=True)
        ]
        out[named] = keys
    return out


def identity_keys(lead: Any) -> tuple[str | None, str | None]:
    """The listing key and operator key of one lead (anything with the lead file's fields)."""

    def text(name: str) -> str:
        return str(getattr(lead, name, None) or "")

    operator = operator_keys(
        np.array([text("credit_code")], dtype=object),
        np.array([text("operator_name")], dtype=object),
        np.array([text("region_code")], dtype=object),
    )[0]
    return listing_key(text("url")), operator


def match_hash(category: str | None, key: str | None) -> int | None:
    """A signed 64-bit digest of (category, key): what the ledger indexes to find the open
    referrals about a listing or an operator. Eight bytes instead of a URL keep that index, into
    which every referral goes at a random place, a fraction of the size; a match is confirmed on
    the key itself, so a collision costs a lookup, never a wrong attachment."""
    if key is None or pd.isna(key):
        return None
    return _digest(f"{category or ''}\x1f{key}")


def _digest(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


def match_hashes(categories: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """`match_hash` of each (category, key) pair (None where there is no key), each distinct
    pair hashed once."""
    out = np.full(len(keys), None, dtype=object)
    has = ~pd.isna(keys)
    if has.any():
        named = pd.Series(categories[has], dtype=object).fillna("").to_numpy(dtype=object)
        codes, distinct = pd.factorize(named + "\x1f" + keys[has])  # as match_hash joins them
        out[has] = np.array([_digest(text) for text in distinct], dtype=object)[codes]
    return out


def repeated_in_chunk(source: np.ndarray, lead_id: np.ndarray) -> np.ndarray:
    """Which rows repeat an earlier row's (source, lead_id) in the same chunk."""
    frame = pd.DataFrame({"source": source, "lead_id": lead_id})
    return frame.duplicated(keep="first").to_numpy()


def resolve_attachments(
    candidates: pd.DataFrame, known: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which candidate referrals to make, and which add evidence to another referral instead.

    `candidates` (in file order, a lead's main referral first) has columns agency, category,
    listing_key, operator_key; `known[i]` is the id of a referral already open in the ledger
    that candidate i matches (-1 if none). A candidate matching an earlier candidate of the
    chunk on (agency, category, listing) or (agency, category, operator) follows it, through any
    chain, to the referral that is made or already open.

    Returns (`made`: bool per candidate, `target`: for the others, the ledger id (>= 0) or the
    position of the candidate whose referral they join, encoded as -(position + 1)).
    """
    m = len(candidates)
    pointer = np.arange(m)
    terminal = known >= 0
    for key in ("listing_key", "operator_key"):
        values = candidates[key].to_numpy(dtype=object)
        has = ~pd.isna(values)
        if not has.any():
            continue
        group = pd.DataFrame(
            {
                "agency": candidates["agency"].to_numpy(dtype=object)[has],
                "category": candidates["category"].to_numpy(dtype=object)[has],
                "key": values[has],
            }
        )
        positions = np.flatnonzero(has)
        groups = group.groupby(["agency", "category", "key"], sort=False).ngroup().to_numpy()
        _unique, first = np.unique(groups, return_index=True)
        leader = positions[first[groups]]  # the group's first candidate, in file order
        earlier = (leader < positions) & ~terminal[positions]
        pointer[positions[earlier]] = np.minimum(pointer[positions[earlier]], leader[earlier])
    while True:  # pointer jumping: every chain ends at a terminal or a made candidate
        jumped = pointer[pointer]
        if (jumped == pointer).all():
            break
        pointer = jumped
    made = (pointer == np.arange(m)) & ~terminal
    target = np.where(terminal[pointer], known[pointer], -(pointer + 1))
    target[made] = -1 - np.flatnonzero(made)
    return made, target
