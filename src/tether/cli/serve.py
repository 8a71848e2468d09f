"""`tether serve` and `tether token`: run the HTTP API; manage its tokens."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from tether.cli import render
from tether.cli.common import Db, Json, context, handled, out
from tether.services import setup, tokens

token_app = typer.Typer(help="API tokens: create (secret shown once), list, revoke.", no_args_is_help=True)


@handled
def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes")] = 1,
    evaluate_every: Annotated[
        float, typer.Option("--evaluate-every", help="Seconds between evaluation cycles (0: never)")
    ] = 60.0,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve a fresh SQLite database filled by the demo")
    ] = False,
    db: Db = None,
) -> None:
    """Serve the HTTP API (and run the evaluator loop) until SIGTERM or Ctrl-C."""
    from tether.api.server import serve

    if demo:
        db = _demo_database()
    ctx = context(db, require_init=False)
    if not ctx.db.initialised():
        raise typer.BadParameter(
            "the database has no Tether schema: run `tether init` first", param_hint="--db"
        )
    os.environ["TETHER_DATABASE_URL"] = ctx.db.url
    if demo:
        _token, secret = tokens.create_token(context(db), "admin", name="demo admin")
        render.console.print(f"demo database: {ctx.db.url}")
        render.console.print(f"admin token (shown once): {secret}")
    render.console.print(f"serving on http://{host}:{port}  (OpenAPI at /openapi.json)")
    ctx.db.dispose()
    serve(host, port, workers, evaluate_every)


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
