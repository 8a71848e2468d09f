"""docs/operations.md as written: its database roles run Tether and cannot touch the audit trail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import PG_SERVER, Cli, decision, outcome

DOC = Path(__file__).parents[1] / "docs" / "operations.md"
RAW_SERVER = PG_SERVER.replace("postgresql+psycopg://", "postgresql://")


def _sql_blocks() -> list[str]:
    """The SQL blocks of the operations guide, in order: roles, schema, grants."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 3, "the guide has three SQL steps: roles, schema, grants"
    return blocks


@pytest.fixture
def roles(pg_database: str) -> Iterator[dict[str, str]]:
    """The guide's roles and database under names of their own (roles are shared by the whole server)."""
    suffix = uuid.uuid4().hex[:8]
    names = {"owner": f"tether_owner_{suffix}", "app": f"tether_app_{suffix}", "db": f"tether_ops_{suffix}"}
    yield names
    with psycopg.connect(f"{RAW_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{names["owner"]}"')
        conn.execute(f'DROP ROLE IF EXISTS "{names["app"]}"')


def _named(sql: str, names: dict[str, str]) -> str:
    sql = sql.replace("tether_owner", names["owner"]).replace("tether_app", names["app"])
    return sql.replace("DATABASE tether ", f"DATABASE {names['db']} ")


def _url(role: str, db: str) -> str:
    return f"{PG_SERVER.replace('://postgres@', f'://{role}@')}/{db}?options=-csearch_path%3Dtether"


def test_the_serving_role_runs_tether_and_cannot_change_the_trail(
    roles: dict[str, str], tmp_path: Path
) -> None:
    """Set up as the guide says: the owner migrates, the serving role gets the guide's grants. As the serving
    role Tether works (slices, decisions, a rollback, audit verify); every way to change or empty the trail,
    and disabling its triggers, is refused by PostgreSQL itself."""
    create_roles, create_schema, grants = (_named(block, roles) for block in _sql_blocks())
    with psycopg.connect(f"{RAW_SERVER}/postgres", autocommit=True) as su:
        for statement in filter(str.strip, create_roles.split(";")):
            su.execute(statement)
    owner_raw = f"{RAW_SERVER.replace('://postgres@', '://' + roles['owner'] + '@')}/{roles['db']}"
    with psycopg.connect(owner_raw, autocommit=True) as owner:
        owner.execute(create_schema)
    Cli(tmp_path, _url(roles["owner"], roles["db"])).run("init")
    with psycopg.connect(owner_raw, autocommit=True) as owner:
        owner.execute(grants)

    app = Cli(tmp_path, _url(roles["app"], roles["db"]))
    sid = app.json("slice", "create", "--scope", "tenant=acme")["id"]
    app.json("canary", "start", sid, "--signed-off-by", "soc-lead", "--reason", "pilot")
    app.json("ingest", "decisions", app.jsonl([decision(1)]))
    actions = app.json("ingest", "outcomes", app.jsonl([outcome(1, "true_positive", source="incident")]))
    assert [a["action"] for a in actions["actions"]] == ["rollback"]
    assert app.json("audit", "verify")["ok"] is True

    app_raw = f"{RAW_SERVER.replace('://postgres@', '://' + roles['app'] + '@')}/{roles['db']}"
    attempts = {
        "UPDATE tether.audit_events SET payload = '{}' WHERE seq = 1": "permission denied",
        "DELETE FROM tether.audit_events": "permission denied",
        "TRUNCATE tether.audit_events": "permission denied",
        "ALTER TABLE tether.audit_events DISABLE TRIGGER USER": "must be owner",
        "DROP TRIGGER audit_events_no_change ON tether.audit_events": "must be owner",
    }
    with psycopg.connect(app_raw, autocommit=True) as conn:
        for statement, refusal in attempts.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
                conn.execute(statement)
    assert app.json("audit", "verify")["ok"] is True
