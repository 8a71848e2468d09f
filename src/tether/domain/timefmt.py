"""RFC 3339 timestamps: parsing with a required zone, and one canonical UTC text form."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(text: object) -> datetime:
    """An aware UTC datetime from RFC 3339 text; ValueError when the zone is missing or it is malformed."""
    if not isinstance(text, str) or not _RFC3339.match(text.strip()):
        raise ValueError("must be an RFC 3339 timestamp with a zone, e.g. 2026-11-27T10:15:00Z")
    value = text.strip().replace("z", "Z").replace("Z", "+00:00")
    return datetime.fromisoformat(value).astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """Canonical text: UTC with Z, microseconds only when there are some."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
