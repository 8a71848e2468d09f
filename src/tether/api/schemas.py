"""Pydantic models at the HTTP edge: request bodies and the response shapes of DESIGN §7."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# Documented shapes of the bodies that the domain validates (one home for those rules).
class DecisionDoc(Strict):
    decision_id: str
    alert_id: str
    tenant: str
    severity: str | float = Field(description="a word (info, low, medium, high, critical) or 0-100")
    rule_family: str
    data_source: str
    verdict: Literal["close", "escalate"]
    confidence: float | None = None
    model_version: str | None = None
    decided_at: str = Field(description="RFC 3339 with a zone")


class OutcomeDoc(Strict):
    decision_id: str | None = None
    tenant: str | None = None
    alert_id: str | None = None
    disposition: Literal["false_positive", "benign_positive", "true_positive", "undetermined"]
    source: str
    reviewer: str | None = None
    observed_at: str


class AlertDoc(Strict):
    tenant: str
    severity: str | float
    rule_family: str
    data_source: str


def body_doc(model: type[BaseModel], many: bool) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    if many:
        schema = {"type": "array", "items": schema}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# Request bodies validated here.
class SliceCreate(Strict):
    scope: str
    policy: dict[str, Any] = {}


class CanaryStart(Strict):
    signed_off_by: str | None = None
    reason: str | None = None
    if_ready: bool = False
    override_cooldown: bool = False


class WithReason(Strict):
    reason: str


class KillCreate(Strict):
    scope: str
    reason: str


class TokenCreate(Strict):
    role: Literal["viewer", "ingest", "operator", "admin"]
    tenants: list[str] = []
    name: str | None = None


# Responses.
class Answer(Open):
    decision_id: str | None = None
    mode: Literal["killed", "shadow", "canary", "active"]
    execute: bool
    slice_ids: list[str]
    reason: str
    kill_switch_id: str | None = None


class Decisions(Strict):
    results: list[Answer]


class Outcomes(Strict):
    accepted: int
    actions: list[dict[str, Any]]


class Evidence(Open):
    decisions: int
    executed: int
    reviewed: int
    correct: int
    incorrect: int
    missed_tp: int
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    age_days: float


class Shadow(Open):
    decisions: int
    with_outcome: int
    agreement: float | None
    missed_tp: int


class VerdictModel(Open):
    action: str
    reasons: list[str]


class SliceModel(Open):
    id: str
    scope: str
    state: Literal["shadow", "canary", "active", "rolled_back"]
    attempt: int
    canary_started_at: str | None
    promoted_at: str | None
    evidence: Evidence
    shadow: Shadow
    verdict: VerdictModel


class Slices(Strict):
    slices: list[SliceModel]


class Actor(Open):
    type: Literal["system", "user", "token"]
    id: str


class KillSwitchModel(Open):
    id: str
    scope: str
    reason: str
    active: bool
    activated_by: Actor
    activated_at: str
    deactivated_by: Actor | None
    deactivated_at: str | None


class KillSwitches(Strict):
    kill_switches: list[KillSwitchModel]


class AuditEventModel(Strict):
    seq: int
    at: str
    type: str
    actor: dict[str, Any]
    slice_id: str | None
    scope: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Strict):
    events: list[AuditEventModel]
    next_cursor: int | None


class Head(Strict):
    seq: int
    hash: str


class Verification(Strict):
    ok: bool
    events: int
    head: Head
    bad_seq: int | None
    problem: str | None


class TokenModel(Open):
    id: str
    role: str
    tenants: list[str]
    active: bool


class TokenCreated(Open):
    token: TokenModel
    secret: str


class Evaluation(Open):
    results: list[dict[str, Any]]


class ErrorItem(Open):
    loc: list[str | int]
    msg: str
    index: int | None = None


class ErrorEnvelope(Strict):
    error: str
    errors: list[ErrorItem]


_WHY = {
    400: "bad request",
    401: "missing, unknown or revoked token",
    403: "the token's role or tenants do not allow this",
    404: "unknown id (or another tenant's)",
    409: "a transition not allowed, a duplicate scope, or a conflicting replay",
    413: "body over 4 MiB or batch over 10,000 items",
    422: "invalid input: each problem names its field and, in a batch, its index",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope, "description": why} for code, why in _WHY.items()
}
