"""The unified social credit code's check character (GB 32100-2015)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wangjian.domain.credit_code import (
    ALPHABET,
    check_character,
    check_credit_codes,
    is_valid_credit_code,
)

from .lead_factory import credit_code

# The worked example of GB 32100-2015 (a Fuzhou enterprise), and codes of the same shape.
STANDARD_EXAMPLE = "91350100M000100Y43"


def test_the_standards_example_is_valid() -> None:
    assert check_character(STANDARD_EXAMPLE[:17]) == "3"
    assert is_valid_credit_code(STANDARD_EXAMPLE)


@pytest.mark.parametrize(
    "first17",
    [
        "91140105MA0K1234X",  # an enterprise registered by market regulation in the district
        "92140105MA0KABCD5",  # an individual business (个体工商户)
        "12140000405123456",  # a public institution registered by the staffing office
        "5311000050000189X",  # a social organisation registered by civil affairs
    ],
)
def test_computed_check_character_makes_a_valid_code(first17: str) -> None:
    code = first17 + check_character(first17)
    assert is_valid_credit_code(code)
    wrong = ALPHABET[(ALPHABET.index(code[-1]) + 1) % 31]
    assert not is_valid_credit_code(first17 + wrong)


@pytest.mark.parametrize(
    "code, why",
    [
        ("91350100M000100Y4", "17 characters"),
        ("91350100M000100Y433", "19 characters"),
        ("91350100M000100I43", "I is not in the alphabet"),
        ("9135010OM000100Y43", "a letter in the region code"),
        ("91350100m000100y43", "lower case (the validator upper-cases first)"),
        ("91350100M000100Y44", "wrong check character"),
    ],
)
def test_malformed_codes_are_invalid(code: str, why: str) -> None:
    assert not is_valid_credit_code(code), why


_BODY = st.text(alphabet=ALPHABET, min_size=9, max_size=9)
_REGION = st.text(alphabet="0123456789", min_size=6, max_size=6)


@given(
    authority=st.text(alphabet=ALPHABET, min_size=2, max_size=2),
    region=_REGION,
    body=_BODY,
    position=st.integers(0, 17),
    shift=st.integers(1, 30),
)
def test_any_single_substitution_is_caught(
    authority: str, region: str, body: str, position: int, shift: int
) -> None:
    code = credit_code(region=region, body=body, authority=authority)
    assert is_valid_credit_code(code)
    if 2 <= position < 8:  # the region code is digits only
        replacement = str((int(code[position]) + shift) % 10)
        if replacement == code[position]:
            return
    else:
        replacement = ALPHABET[(ALPHABET.index(code[position]) + shift) % 31]
    broken = code[:position] + replacement + code[position + 1 :]
    assert not is_valid_credit_code(broken)


@given(st.lists(st.text(alphabet=ALPHABET + "IOSVZ", min_size=16, max_size=19), max_size=30))
def test_vectorised_check_agrees_with_the_scalar_one(codes: list[str]) -> None:
    codes += [credit_code(body=f"MA0K{i:04d}X") for i in range(5)]
    shaped, valid = check_credit_codes(np.array(codes, dtype=object))
    assert valid.tolist() == [is_valid_credit_code(c) for c in codes]
    assert (shaped | ~valid).all()  # a valid code is well formed
