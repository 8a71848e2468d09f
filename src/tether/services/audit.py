"""The audit trail: list with filters, verify the chain (optionally against a published head), export."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from tether.domain.audit import AuditEvent, ChainReport, verify_chain
from tether.domain.errors import BadInput
from tether.services.context import Context
from tether.store.sql import AuditFilter, Tx, scope_from_text

_PAGE = 5_000


def list_events(ctx: Context, filters: AuditFilter | None = None) -> list[AuditEvent]:
    """Events in seq order; a token limited to tenants sees only events whose scope names one of them."""
    return [e for e in list_events_raw(ctx, filters) if visible(ctx, e)]


def page_events(ctx: Context, filters: AuditFilter, size: int) -> tuple[list[AuditEvent], int | None]:
    """One page of the events the caller may see, and the cursor of the next page (None at the end).

    The cursor is the last seq given: pass it as `after_seq` (or `before_seq` when `newest_first`). A token
    limited to tenants skips others' events, so the scan reads on until the page is full.
    """
    found: list[AuditEvent] = []
    scan = dataclasses.replace(filters, limit=size)
    while True:
        chunk = list_events_raw(ctx, scan)
        for event in chunk:
            if visible(ctx, event):
                found.append(event)
                if len(found) == size:
                    return found, event.seq
        if len(chunk) < size:
            return found, None
        last = chunk[-1].seq
        scan = (
            dataclasses.replace(scan, before_seq=last)
            if scan.newest_first
            else dataclasses.replace(scan, after_seq=last)
        )


def visible(ctx: Context, event: AuditEvent) -> bool:
    """May the caller see this event: unrestricted tokens see all, others their tenants' events."""
    if not ctx.principal.restricted:
        return True
    return event.scope is not None and ctx.principal.sees_scope(scope_from_text(event.scope))


def list_events_raw(ctx: Context, filters: AuditFilter | None = None) -> list[AuditEvent]:
    with ctx.db.transaction(write=False) as conn:
        return Tx(conn).events(filters)


def iter_events(ctx: Context, filters: AuditFilter | None = None) -> Iterator[AuditEvent]:
    """Every matching event in seq order, page by page, so an export never holds the trail in memory."""
    base = filters or AuditFilter()
    after = 0
    while True:
        page = list_events(ctx, AuditFilter(base.slice_id, base.type, base.since, base.until, after, _PAGE))
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].seq


def head(ctx: Context) -> tuple[int, str]:
    ctx.principal.require_unrestricted("the chain's head")
    with ctx.db.transaction(write=False) as conn:
        return Tx(conn).head()


def parse_head(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    digest = digest.strip()
    if (
        not sep
        or not seq.strip().isdigit()
        or len(digest) != 64
        or any(c not in "0123456789abcdefABCDEF" for c in digest)
    ):
        raise BadInput.at("head", "must be SEQ:HASH, e.g. 42:3f1c...(64 hex digits)")
    return int(seq), digest.lower()


def verify(ctx: Context, published_head: tuple[int, str] | None = None) -> ChainReport:
    """Recompute the whole chain; a report naming the first bad seq when it does not hold."""
    ctx.principal.require_unrestricted("verifying the whole chain")
    return verify_chain(iter_events(ctx), published_head)
