"""JSON shapes of DESIGN §7 for slices, kill switches and answers: serialised in one place."""

from __future__ import annotations

from typing import Any

from tether.domain.model import KillSwitch
from tether.domain.timefmt import iso


def kill_switch_dict(k: KillSwitch) -> dict[str, Any]:
    return {
        "id": k.id,
        "scope": k.scope.text,
        "reason": k.reason,
        "active": k.active,
        "activated_by": k.activated_by.to_dict(),
        "activated_at": iso(k.activated_at),
        "deactivated_by": k.deactivated_by.to_dict() if k.deactivated_by else None,
        "deactivated_at": iso(k.deactivated_at),
        "slice_id": k.slice_id,
    }
