"""The unified social credit code (统一社会信用代码, GB 32100-2015): its check character.

Eighteen characters: the registration authority (1), the kind of organisation (1), the
administrative division (6 digits), the organisation code (9) and a check character. Every
character but the division comes from a 31-character set that leaves out I, O, S, V and Z;
the check character makes the weighted sum of all eighteen values a multiple of 31.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_CHAR = "[0-9A-HJ-NPQRTUW-Y]"
SHAPE = re.compile(rf"^{_CHAR}{{2}}\d{{6}}{_CHAR}{{10}}$")

# Byte value → character value (-1 outside the alphabet), for the vectorised check.
_VALUES = np.full(256, -1, dtype=np.int64)
for _value, _char in enumerate(ALPHABET):
    _VALUES[ord(_char)] = _value
_WEIGHTS = np.array(WEIGHTS, dtype=np.int64)


def check_character(first17: str) -> str:
    """The check character that completes the first 17 characters of a code."""
    if len(first17) != 17 or any(c not in ALPHABET for c in first17):
        raise ValueError(f"{first17!r} is not 17 characters of the code alphabet")
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    """Whether a code has the right shape and its check character matches."""
    return bool(SHAPE.match(code)) and check_character(code[:17]) == code[17]


def check_credit_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised checks of upper-case codes: (well formed, check character right) per code."""
    codes = np.asarray(codes, dtype=object)
    lengths = np.fromiter(map(len, codes), dtype=np.int64, count=len(codes))
    ascii_ = np.fromiter(map(str.isascii, codes), dtype=bool, count=len(codes))
    candidates = (lengths == 18) & ascii_
    shaped = np.zeros(len(codes), dtype=bool)
    valid = np.zeros(len(codes), dtype=bool)
    if not candidates.any():
        return shaped, valid
    # Eighteen ASCII characters each: the codes pack into a byte matrix, one row a code.
    packed = "".join(codes[candidates].tolist()).encode("ascii")
    matrix = np.frombuffer(packed, dtype=np.uint8).reshape(-1, 18)
    values = _VALUES[matrix]
    digits = (matrix[:, 2:8] >= ord("0")) & (matrix[:, 2:8] <= ord("9"))
    in_alphabet = (values >= 0).all(axis=1) & digits.all(axis=1)
    expected = (31 - (values[:, :17] @ _WEIGHTS) % 31) % 31
    shaped[candidates] = in_alphabet
    valid[candidates] = in_alphabet & (values[:, 17] == expected)
    return shaped, valid


def valid_credit_codes(codes: pd.Series) -> np.ndarray:
    """`is_valid_credit_code` over a Series of upper-case strings, without a Python loop."""
    return check_credit_codes(codes.to_numpy(dtype=object))[1]
