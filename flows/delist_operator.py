"""Take one operator off a list of the shared list of removed operators (by hand)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.listed import delist_listed_operator
from wangjian.bootstrap import get_app


@flow(name="delist-operator", log_prints=False)
def delist_operator_flow(
    list_kind: str,
    credit_code: str | None = None,
    platform: str | None = None,
    shop_name: str | None = None,
    shop_id: str | None = None,
    reason: str | None = None,
    as_of: str | None = None,
    actor: str = "office:cli",
) -> dict[str, Any]:
    """Delist an operator named by credit code, or by platform and shop."""
    moment = get_app().as_of(as_of)
    return delist_listed_operator(
        list_kind, credit_code, platform, shop_name, shop_id, reason, moment, actor
    )
