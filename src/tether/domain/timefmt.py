"""RFC 3339 timestamps: parsing with a required zone, and one canonical UTC text form."""

from __future__ import annotations

from datetime import UTC, datetime

_HINT = "must be an RFC 3339 timestamp with a zone, e.g. 2026-11-27T10:15:00Z"


def parse_time(text: object) -> datetime:
    """An aware UTC datetime from RFC 3339 text; ValueError when the zone is missing or it is malformed."""
    if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt ":
        raise ValueError(_HINT)
    try:
        text = text.strip()
        moment = datetime.fromisoformat(text[:-1] + "Z" if text.endswith("z") else text)
    except ValueError:
        raise ValueError(_HINT) from None
    if moment.tzinfo is None:
        raise ValueError(_HINT)
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """Canonical text: UTC with Z, microseconds only when there are some."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds") + "Z"
