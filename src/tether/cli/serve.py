"""`tether serve` and `tether token`: run the HTTP API; manage its tokens."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from tether.cli import render
from tether.cli.common import Db, Json, context, handled, out
from tether.domain.errors import BadInput, NotInitialised
from tether.services import setup, tokens, webhooks

token_app = typer.Typer(help="API tokens: create (secret shown once), list, revoke.", no_args_is_help=True)
webhook_app = typer.Typer(
    help="Webhooks: notify a URL of state changes (signed, retried).", no_args_is_help=True
)


@handled
def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes")] = 1,
    evaluate_every: Annotated[
        float | None, typer.Option("--evaluate-every", help="Seconds between evaluation cycles (0: never)")
    ] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="text or json")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve a fresh SQLite database filled by the demo")
    ] = False,
    db: Db = None,
) -> None:
    """Serve the HTTP API, the evaluator loop and webhook deliveries until SIGTERM or Ctrl-C."""
    from tether.api.server import serve

    if log_format is not None and log_format not in ("text", "json"):
        raise BadInput.at("log-format", f"must be text or json, got {log_format!r}")
    if demo:
        db = _demo_database()
    ctx = context(db, require_init=False)
    if not ctx.db.initialised():
        raise NotInitialised("the database has no Tether schema: run `tether init` first")
    env = {"TETHER_DATABASE_URL": ctx.db.url}
    if evaluate_every is not None:
        env["TETHER_EVALUATE_EVERY"] = str(evaluate_every)
    if log_format is not None:
        env["TETHER_LOG_FORMAT"] = log_format
    if demo:
        _token, secret = tokens.create_token(context(db), "admin", name="demo admin")
        render.console.print(f"demo database: {ctx.db.url}")
        render.console.print(f"admin token (shown once): {secret}")
    render.console.print(f"serving on http://{host}:{port}  (OpenAPI at /openapi.json)")
    ctx.db.dispose()
    serve(host, port, workers, env)


def _demo_database() -> str:
    from tether.sim.run import run_scenario
    from tether.sim.scenario import load_scenario

    path = Path(tempfile.mkdtemp(prefix="tether-demo-")) / "demo.db"
    url = f"sqlite:///{path}"
    render.console.print("filling a demo database: 10 virtual days of the default scenario...")
    run_scenario(load_scenario("default").model_copy(update={"days": 10}), seed=0, db_url=url)
    setup.init(context(url, require_init=False))
    return url


@token_app.command("create")
@handled
def token_create(
    role: Annotated[str, typer.Option("--role", help="viewer, ingest, operator or admin")],
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Limit to this tenant; repeatable")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Who or what uses it")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Create a token; its secret is printed once and stored only as a hash."""
    token, secret = tokens.create_token(context(db), role, tenant or [], name)
    data = {"token": token.to_dict(), "secret": secret}
    out(
        as_json,
        data,
        lambda: render.console.print(f"token {token.id} ({token.role.value}); secret, shown once: {secret}"),
    )


@token_app.command("list")
@handled
def token_list(db: Db = None, as_json: Json = False) -> None:
    """List tokens (never their secrets)."""
    found = [t.to_dict() for t in tokens.list_tokens(context(db))]

    def human() -> None:
        for t in found:
            limits = ", ".join(t["tenants"]) or "all tenants"
            state = "active" if t["active"] else f"revoked {t['revoked_at']}"
            render.console.print(f"{t['id']}  {t['role']:<8} {t['name'] or ''}  ({limits})  {state}")

    out(as_json, {"tokens": found}, human)


@token_app.command("revoke")
@handled
def token_revoke(token_id: str, db: Db = None, as_json: Json = False) -> None:
    """Revoke a token at once."""
    data = tokens.revoke_token(context(db), token_id).to_dict()
    out(as_json, data, lambda: render.console.print(f"token {token_id} revoked"))


@webhook_app.command("add")
@handled
def webhook_add(
    url: str,
    events: Annotated[str, typer.Option("--events", help="Comma-separated event types, or *")],
    secret: Annotated[str, typer.Option("--secret", help="HMAC-SHA256 key for X-Tether-Signature")],
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Subscribe a URL to audit events; each delivery is signed and retried with backoff."""
    data = webhooks.add(context(db), url, events.split(","), secret)
    out(
        as_json,
        data,
        lambda: render.console.print(f"webhook {data['id']} -> {url} on {', '.join(data['events'])}"),
    )


@webhook_app.command("list")
@handled
def webhook_list(db: Db = None, as_json: Json = False) -> None:
    """List webhooks."""
    found = webhooks.list_webhooks(context(db))

    def human() -> None:
        for w in found:
            render.console.print(f"{w['id']}  {w['url']}  {', '.join(w['events'])}")

    out(as_json, {"webhooks": found}, human)


@webhook_app.command("remove")
@handled
def webhook_remove(webhook_id: str, db: Db = None) -> None:
    """Remove a webhook (pending deliveries to it stop)."""
    webhooks.remove(context(db), webhook_id)
    render.console.print(f"webhook {webhook_id} removed")


@webhook_app.command("deliveries")
@handled
def webhook_deliveries(
    status: Annotated[str | None, typer.Option("--status", help="pending, delivered or dead")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Deliveries, newest first: pending (with their next try), delivered, dead-lettered."""
    found = webhooks.deliveries(context(db), status)

    def human() -> None:
        for d in found:
            when = d["delivered_at"] or f"next {d['next_at']}"
            error = f"  ({d['last_error']})" if d["last_error"] else ""
            render.console.print(
                f"{d['id']:>6}  {d['webhook_id']}  event {d['event_seq']}  {d['status']:<9} "
                f"tries {d['attempts']}  {when}{error}"
            )

    out(as_json, {"deliveries": found}, human)
