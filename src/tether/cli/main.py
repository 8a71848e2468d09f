"""The `tether` typer app: parse, call one service, render; errors become one line and an exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tether.cli import render
from tether.cli.common import GLOBAL, As, Db, Json, Reason, SliceRef, context, handled, out
from tether.cli.files import locate, read_jsonl
from tether.cli.serve import serve_cmd, token_app, webhook_app
from tether.cli.simulate import simulate_cmd
from tether.domain.audit import canonical_json
from tether.domain.errors import BadInput, TetherError
from tether.domain.policy import parse_assignments
from tether.domain.timefmt import parse_time
from tether.domain.views import kill_switch_dict
from tether.services import audit, decide, evaluate, gate, kills, lifecycle, outcomes, policy, queries, setup
from tether.services.context import Context
from tether.store.sql import AuditFilter

app = typer.Typer(
    help="Tether: progressive autonomy for AI triage agents.", no_args_is_help=True, add_completion=False
)
slice_app = typer.Typer(help="Slices: scopes whose autonomy Tether manages.", no_args_is_help=True)
canary_app = typer.Typer(help="Canaries: start, promote (forced), roll back.", no_args_is_help=True)
kill_app = typer.Typer(help="Kill switches: stop autonomy on a scope at once.", no_args_is_help=True)
policy_app = typer.Typer(help="The global rollout policy.", no_args_is_help=True)
ingest_app = typer.Typer(help="Ingest decisions or outcomes from JSON-lines files.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
for sub, name in (
    (slice_app, "slice"),
    (canary_app, "canary"),
    (kill_app, "kill"),
    (policy_app, "policy"),
    (ingest_app, "ingest"),
    (audit_app, "audit"),
):
    app.add_typer(sub, name=name)


@app.callback()
def main(db: Db = None, actor: As = None) -> None:
    """Tether decides, alert by alert, whether an AI triage agent's decision may be executed."""
    GLOBAL.db, GLOBAL.actor = db, actor


@app.command("init")
@handled
def init_cmd(db: Db = None, as_json: Json = False) -> None:
    """Create or migrate the schema; on a fresh database print the first admin token (once)."""
    result = setup.init(context(db, require_init=False))
    data = {"initialised": True, "token": result.created_token, "token_id": result.token_id}

    def human() -> None:
        render.console.print("database ready.")
        if result.created_token:
            render.console.print(f"first admin token ({result.token_id}), shown once: {result.created_token}")

    out(as_json, data, human)


def _show_slice(ctx: Context, s: Any, as_json: bool) -> None:
    view = queries.view_of(ctx, s)
    out(as_json, view, lambda: render.slice_detail(view))


def _policy_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput.at("policy-file", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        return parse_assignments(lines)
    if not isinstance(data, dict):
        raise BadInput.at("policy-file", "must hold a JSON object of policy fields")
    return data


@slice_app.command("create")
@handled
def slice_create(
    scope: Annotated[str, typer.Option("--scope", help="e.g. tenant=acme,rule_family=phishing")],
    policy_file: Annotated[
        Path | None, typer.Option("--policy-file", help="JSON object of policy overrides")
    ] = None,
    db: Db = None,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Create a slice in shadow for a scope."""
    ctx = context(db, actor)
    _show_slice(ctx, lifecycle.create_slice(ctx, scope, _policy_file(policy_file)), as_json)


@slice_app.command("list")
@handled
def slice_list(
    state: Annotated[str | None, typer.Option("--state", help="Only slices in this state.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only slices naming this tenant.")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """List slices with their evidence."""
    slices = queries.list_slices(context(db), state, tenant)
    out(as_json, {"slices": slices}, lambda: render.slices_table(slices))


@slice_app.command("show")
@handled
def slice_show(slice_id: SliceRef, db: Db = None, as_json: Json = False) -> None:
    """Show one slice: state, evidence with its interval, shadow evidence, verdict."""
    ctx = context(db)
    view = queries.get_slice(ctx, queries.slice_id_of(ctx, slice_id))
    out(as_json, view, lambda: render.slice_detail(view))


@slice_app.command("policy")
@handled
def slice_policy(
    slice_id: SliceRef,
    assignments: Annotated[list[str], typer.Option("--set", help="field=value; repeatable")],
    db: Db = None,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Override policy fields for one slice."""
    ctx = context(db, actor)
    _show_slice(
        ctx,
        lifecycle.set_slice_policy(ctx, queries.slice_id_of(ctx, slice_id), parse_assignments(assignments)),
        as_json,
    )


@slice_app.command("recall")
@handled
def slice_recall(slice_id: SliceRef, db: Db = None, as_json: Json = False) -> None:
    """List the attempt's executed closures that have no outcome yet (re-triage them after a rollback)."""
    ctx = context(db)
    data = queries.recall(ctx, queries.slice_id_of(ctx, slice_id))

    def human() -> None:
        render.console.print(
            f"{data['scope']} ({data['state']}, attempt {data['attempt']}): "
            f"{len(data['closures'])} closures without an outcome"
        )
        for c in data["closures"]:
            render.console.print(f"  {c['decided_at']}  {c['tenant']}  {c['alert_id']}  ({c['decision_id']})")

    out(as_json, data, human)


@slice_app.command("reset")
@handled
def slice_reset(
    slice_id: SliceRef, reason: Reason, db: Db = None, actor: As = None, as_json: Json = False
) -> None:
    """Return a rolled-back slice to shadow and release its kill switch."""
    ctx = context(db, actor)
    _show_slice(ctx, lifecycle.reset(ctx, queries.slice_id_of(ctx, slice_id), reason), as_json)


@canary_app.command("start")
@handled
def canary_start(
    slice_id: SliceRef,
    signed_off_by: Annotated[str | None, typer.Option("--signed-off-by", help="Who signs off.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why.")] = None,
    if_ready: Annotated[
        bool, typer.Option("--if-ready", help="Start only if go-live criteria hold.")
    ] = False,
    override_cooldown: Annotated[
        bool, typer.Option("--override-cooldown", help="Start before the cool-down ends (needs --reason).")
    ] = False,
    db: Db = None,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Start a canary: on the go-live criteria (--if-ready) or an explicit sign-off."""
    ctx = context(db, actor)
    s = lifecycle.start_canary(
        ctx,
        queries.slice_id_of(ctx, slice_id),
        signed_off_by=signed_off_by,
        reason=reason,
        if_ready=if_ready,
        override_cooldown=override_cooldown,
    )
    _show_slice(ctx, s, as_json)


@canary_app.command("promote")
@handled
def canary_promote(
    slice_id: SliceRef, reason: Reason, db: Db = None, actor: As = None, as_json: Json = False
) -> None:
    """Force a promotion (admin), with a reason."""
    ctx = context(db, actor)
    _show_slice(ctx, lifecycle.promote(ctx, queries.slice_id_of(ctx, slice_id), reason), as_json)


@canary_app.command("rollback")
@handled
def canary_rollback(
    slice_id: SliceRef, reason: Reason, db: Db = None, actor: As = None, as_json: Json = False
) -> None:
    """Roll a canary or active slice back now; its scope is killed."""
    ctx = context(db, actor)
    _show_slice(ctx, lifecycle.roll_back(ctx, queries.slice_id_of(ctx, slice_id), reason), as_json)


@kill_app.command("activate")
@handled
def kill_activate(
    scope: Annotated[str, typer.Option("--scope", help="Scope to kill; empty kills everything.")],
    reason: Reason,
    db: Db = None,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Activate a kill switch: no autonomy on the scope, effective at once."""
    k = kill_switch_dict(kills.activate(context(db, actor), scope, reason))
    out(
        as_json,
        k,
        lambda: render.console.print(f"kill switch {k['id']} active on {k['scope'] or '(everything)'}"),
    )


@kill_app.command("deactivate")
@handled
def kill_deactivate(
    kill_id: str, reason: Reason, db: Db = None, actor: As = None, as_json: Json = False
) -> None:
    """Deactivate a kill switch (a rollback's switch is released by `slice reset`)."""
    k = kill_switch_dict(kills.deactivate(context(db, actor), kill_id, reason))
    out(as_json, k, lambda: render.console.print(f"kill switch {k['id']} deactivated"))


@kill_app.command("list")
@handled
def kill_list(
    active: Annotated[bool, typer.Option("--active", help="Only active switches.")] = False,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """List kill switches, active and past."""
    found = [kill_switch_dict(k) for k in queries.list_kill_switches(context(db), active)]
    out(as_json, {"kill_switches": found}, lambda: render.kill_table(found))


@app.command("gate")
@handled
def gate_cmd(
    tenant: Annotated[str, typer.Option("--tenant")],
    severity: Annotated[str, typer.Option("--severity", help="A word or a number 0-100.")],
    rule_family: Annotated[str, typer.Option("--rule-family")],
    data_source: Annotated[str, typer.Option("--data-source")],
    dim: Annotated[list[str] | None, typer.Option("--dim", help="name=value for extra dimensions")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Ask the gate (read-only): which mode would this alert get?"""
    alert: dict[str, object] = {
        "tenant": tenant,
        "severity": severity,
        "rule_family": rule_family,
        "data_source": data_source,
    }
    for item in dim or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise BadInput.at("dim", f"{item!r} is not name=value")
        alert[name.strip()] = value.strip()
    ctx = context(db)
    answer = decide.DecisionAnswer("", gate.gate(ctx, alert)).to_dict()
    del answer["decision_id"]
    out(as_json, answer, lambda: render.console.print(render.answer_line(answer)))


@ingest_app.command("decisions")
@handled
def ingest_decisions(file: Path, db: Db = None, as_json: Json = False) -> None:
    """Resolve and record the agent's decisions from a JSON-lines file (all or nothing)."""
    items, lines = read_jsonl(file)
    ctx = context(db)
    try:
        answers = [a.to_dict() for a in decide.decide(ctx, items)]
    except TetherError as exc:
        raise locate(exc, lines) from None

    out(as_json, {"results": answers}, lambda: render.answers_summary(answers))


@ingest_app.command("outcomes")
@handled
def ingest_outcomes(file: Path, db: Db = None, as_json: Json = False) -> None:
    """Record outcomes from a JSON-lines file; rollbacks they trigger happen at once."""
    items, lines = read_jsonl(file)
    ctx = context(db)
    try:
        result = outcomes.record_outcomes(ctx, items).to_dict()
    except TetherError as exc:
        raise locate(exc, lines) from None

    def human() -> None:
        render.console.print(f"{result['accepted']} outcomes recorded")
        for action in result["actions"]:
            render.console.print(
                f"  ROLLBACK {action['slice_id']} ({action['scope']}): {'; '.join(action['reasons'])}"
            )

    out(as_json, result, human)


@app.command("evaluate")
@handled
def evaluate_cmd(
    now: Annotated[str | None, typer.Option("--now", help="Evaluate at this RFC 3339 time.")] = None,
    recompute: Annotated[
        bool, typer.Option("--recompute", help="Rebuild counters; report differences.")
    ] = False,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Promote, roll back or hold every slice in canary or active, as the evidence says."""
    result = evaluate.evaluate(context(db, now=now), recompute=recompute).to_dict()

    def human() -> None:
        if not result["results"]:
            render.console.print("no slice in canary or active")
        for r in result["results"]:
            render.console.print(f"{r['slice_id']} ({r['scope']}): {r['action']} — {'; '.join(r['reasons'])}")
        if "recompute" in result:
            diffs = result["recompute"]["differences"]
            render.console.print(
                "counters match the stored decisions and outcomes"
                if not diffs
                else f"counters differed on {len(diffs)} slice(s) and were rebuilt"
            )

    out(as_json, result, human)


@policy_app.command("show")
@handled
def policy_show(db: Db = None, as_json: Json = False) -> None:
    """Show the global policy."""
    data = policy.show_policy(context(db)).to_dict()
    out(as_json, data, lambda: render.key_values(data))


@policy_app.command("set")
@handled
def policy_set(
    assignments: Annotated[list[str], typer.Argument(help="field=value ...")],
    db: Db = None,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Change global policy fields (validated; applies to running attempts at once)."""
    data = policy.set_policy(context(db, actor), parse_assignments(assignments)).to_dict()
    out(as_json, data, lambda: render.console.print("policy updated"))


def _time(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise BadInput.at(name, str(exc)) from None


@audit_app.command("list")
@handled
def audit_list(
    slice_id: Annotated[str | None, typer.Option("--slice")] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339, exclusive")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """List audit events, filtered."""
    filters = AuditFilter(slice_id, type_, _time(since, "since"), _time(until, "until"))
    events = [e.to_dict() for e in audit.list_events(context(db), filters)]
    out(as_json, {"events": events}, lambda: render.events_table(events))


@audit_app.command("verify")
@handled
def audit_verify(
    head: Annotated[str | None, typer.Option("--head", help="SEQ:HASH published earlier")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Recompute the hash chain; exit 1 naming the first bad seq."""
    published = audit.parse_head(head) if head else None
    report = audit.verify(context(db), published)
    data = {
        "ok": report.ok,
        "events": report.count,
        "head": {"seq": report.head_seq, "hash": report.head_hash},
        "bad_seq": report.bad_seq,
        "problem": report.problem,
    }
    if as_json:
        render.print_json(data)
    elif report.ok:
        render.console.print(
            f"audit chain verified: {report.count} events, head {report.head_seq}:{report.head_hash}"
        )
    if not report.ok:
        typer.echo(f"error: audit chain broken at seq {report.bad_seq}: {report.problem}", err=True)
        raise typer.Exit(1)


@audit_app.command("head")
@handled
def audit_head(db: Db = None, as_json: Json = False) -> None:
    """Print the chain's head to publish it (SIEM, log, signature)."""
    seq, digest = audit.head(context(db))
    out(as_json, {"seq": seq, "hash": digest}, lambda: render.console.print(f"{seq}:{digest}"))


@audit_app.command("export")
@handled
def audit_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (else stdout)")] = None,
    db: Db = None,
) -> None:
    """Export the whole trail as JSON lines, in seq order."""
    ctx = context(db)
    stream = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for event in audit.iter_events(ctx):
            stream.write(canonical_json(event.to_dict()) + "\n")
    finally:
        if output:
            stream.close()


app.command("simulate")(simulate_cmd)
app.command("serve")(serve_cmd)
app.add_typer(token_app, name="token")
app.add_typer(webhook_app, name="webhook")


def run() -> None:
    """Console entry point."""
    app()
