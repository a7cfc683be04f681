"""Why the ledger refuses an answer, said in Chinese and English (for the portal and reject reports)."""

from __future__ import annotations


class Refused(Exception):
    """An answer the ledger cannot take: a wrong state, a missing field, a bad value."""

    def __init__(self, zh: str, en: str, *, column: str | None = None) -> None:
        super().__init__(en)
        self.zh, self.en, self.column = zh, en, column

    def in_language(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class NotFound(Refused):
    """No such item for this party: the same answer whether it is missing or someone else's."""

    def __init__(self, zh: str = "未找到该事项", en: str = "no such item") -> None:
        super().__init__(zh, en)
