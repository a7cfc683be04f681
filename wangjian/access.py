"""Signed links: every notice carries a link scoped to one party (agency or platform), with expiry.

A token signs the party code and the party's `token_version`; bumping the version (per party) or
rotating the secret key (everyone) revokes all earlier links. No passwords for agency contacts.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "wangjian.portal.link"


class TokenRejected(Exception):
    """A link that is forged, expired or revoked; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    party: str
    version: int


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def sign_link_token(secret: str, *, party: str, version: int) -> str:
    return _serializer(secret).dumps({"p": party, "v": version})


def read_link_token(secret: str, token: str, *, max_age_seconds: int) -> LinkClaims:
    """Check a token's signature and age; the caller checks the version against the party's."""
    try:
        data = _serializer(secret).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise TokenRejected("expired") from None
    except BadSignature:
        raise TokenRejected("forged") from None
    if not isinstance(data, dict) or not isinstance(data.get("p"), str):
        raise TokenRejected("forged")
    return LinkClaims(party=data["p"], version=int(data.get("v", 0)))


def portal_link(base_url: str, secret: str, *, party: str, version: int, path: str = "") -> str:
    """The answer link put in a notice: `<base>/a/<token>/<path>`."""
    token = sign_link_token(secret, party=party, version=version)
    return f"{base_url.rstrip('/')}/a/{token}/{path.lstrip('/')}"
