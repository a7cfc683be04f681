"""Ask a platform for data about a shop (协查函): the request and its hour clock, then the mail."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.send_notifications import send_notifications
from tasks.assist import make_assist_requests
from wangjian.bootstrap import get_app


@flow(name="request-assistance", log_prints=False)
def request_assistance(
    platform: str,
    asked: list[str],
    referral_id: int | None = None,
    lead_id: int | None = None,
    detail: str | None = None,
    legal_basis: str | None = None,
    as_of: str | None = None,
    actor: str = "office:cli",
    send: bool = True,
) -> dict[str, Any]:
    """Make one assistance request (`as_of` starts its clock; now by default) and send it."""
    moment = get_app().as_of(as_of)
    (result,) = make_assist_requests(
        [
            {
                "platform_code": platform,
                "referral_id": referral_id,
                "lead_id": lead_id,
                "asked": asked,
                "detail": detail,
                "legal_basis": legal_basis,
                "actor": actor,
            }
        ],
        moment,
    )
    if send and result["created"]:
        result["notifications"] = send_notifications(as_of=moment.isoformat())
    return result
