"""Time as a parameter: every flow takes an `as_of`, so a campaign can be replayed day by day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

SWEEP_TIME = time(9, 0)  # a bare date means 09:00 in the campaign's time zone


class AsOfError(ValueError):
    """An `--as-of` value that is neither an ISO date nor an ISO datetime."""


def parse_as_of(value: str | date | datetime | None, tz: ZoneInfo | str) -> datetime:
    """Read an as-of: ISO date (09:00 local), ISO datetime (local if it has no zone) or now."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    if value is None or value == "":
        return datetime.now(UTC).astimezone(zone)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, SWEEP_TIME, tzinfo=zone)
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), SWEEP_TIME, tzinfo=zone)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AsOfError(
            f"--as-of {value!r} is not an ISO date (2021-11-03) or datetime (2021-11-03T14:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz)
