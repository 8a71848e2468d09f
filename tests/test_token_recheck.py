"""A caller's token read again in the group commit's own transaction: a revocation committed by any process
records nothing for that token's requests after it."""

from __future__ import annotations

from sqlalchemy import func, select

from conftest import decision
from tether.bootstrap import build
from tether.config import Settings
from tether.domain.access import Role
from tether.services import tokens
from tether.services.batching import GroupCommit
from tether.services.context import Context
from tether.store import tables


def _stored(ctx: Context, decision_id: str) -> int:
    with ctx.db.transaction(write=False) as conn:
        query = select(func.count()).where(tables.decisions.c.decision_id == decision_id)
        return int(conn.execute(query).scalar_one())


def _decide(committer: GroupCommit, ctx: Context, d: dict[str, object], token: str) -> object:
    """The answers of one request queued with its caller's secret hash, or the error it got."""
    pending = committer.submit(ctx, [d], token)
    pending.done.wait(timeout=30)
    try:
        return committer.answers(pending)
    except Exception as exc:
        return exc


def test_a_token_revoked_elsewhere_records_nothing_after_the_revocation(ctx: Context, db_url: str) -> None:
    """This process confirmed the token; another revokes it; its next request is refused in the transaction
    and not recorded, while another caller's request is."""
    callers = {}
    for name in ("kept", "gone"):
        token, secret = tokens.create_token(ctx, Role.INGEST.value, name=name)
        principal = tokens.authenticate(ctx, secret)
        assert principal is not None
        callers[name] = (token.id, secret, ctx.acting_as(principal), tokens.hash_secret(secret))
    gone_id, gone_secret, gone, gone_hash = callers["gone"]
    _, _, kept, kept_hash = callers["kept"]
    committer = GroupCommit(ctx.db)
    elsewhere = build(Settings(database_url=db_url, actor="elsewhere"))
    try:
        assert isinstance(_decide(committer, gone, decision("before"), gone_hash), list)
        tokens.revoke_token(elsewhere, gone_id)
        assert isinstance(_decide(committer, gone, decision("after"), gone_hash), tokens.NotAuthenticated)
        assert tokens.recognised(ctx, gone_secret) is None  # this process forgot its confirmation
        assert isinstance(_decide(committer, kept, decision("neighbour"), kept_hash), list)
    finally:
        committer.stop()
        elsewhere.db.dispose()
    assert (_stored(ctx, "d-before"), _stored(ctx, "d-after"), _stored(ctx, "d-neighbour")) == (1, 0, 1)
