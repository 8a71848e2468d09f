"""The global policy: show and set, audited; a change applies to running attempts at once."""

from __future__ import annotations

from typing import Any

from tether.domain.audit import EventType
from tether.domain.errors import BadInput
from tether.domain.model import LIVE_STATES
from tether.domain.policy import Policy, check_fields, policy_from
from tether.services.context import Context, global_policy
from tether.services.lifecycle import emit, recount
from tether.store.engine import retry_transient
from tether.store.sql import Tx


def show_policy(ctx: Context) -> Policy:
    with ctx.db.transaction(write=False) as conn:
        return global_policy(Tx(conn))


@retry_transient
def set_policy(ctx: Context, changes: dict[str, Any]) -> Policy:
    """Change global fields; every slice's merged policy must stay valid; live evidence is re-judged."""
    ctx.principal.require_unrestricted("the global policy")
    checked = check_fields(changes)
    if not checked:
        raise BadInput.at("policy", "give at least one field=value")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        before = global_policy(tx)
        values = {**tx.policy_values(), **checked}
        after = policy_from(values)
        slices = tx.slices(lock=True)
        for s in slices:
            try:
                merged = after.merged(s.policy_overrides)
            except BadInput as exc:
                raise BadInput(
                    f"slice {s.id} ({s.scope}) would have an invalid policy: {exc.message}"
                ) from None
            if s.state in LIVE_STATES:
                tx.save_slice(recount(tx, s, merged))  # capitals depend on thresholds and prior
        tx.set_policy_values({k: after.to_dict()[k] for k in values})
        emit(
            ctx,
            tx,
            EventType.POLICY_CHANGED,
            None,
            {"before": before.to_dict(), "after": after.to_dict(), "changed": checked},
        )
        tx.bump_version()
    return after
