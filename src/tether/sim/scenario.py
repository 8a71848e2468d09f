"""Scenario files (YAML): what the simulated SOC looks like, validated with errors that name the field."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tether.domain.errors import BadInput, Problem
from tether.domain.policy import check_fields

BUILT_IN = ("default", "degrading", "new-tenant", "thin-reviews")
Share = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(_Strict):
    name: str = Field(min_length=1)
    share: Share


class TenantSpec(_Strict):
    name: str = Field(min_length=1)
    alerts_per_day: int = Field(gt=0, le=1_000_000)
    from_day: int = Field(default=0, ge=0)  # a tenant onboarded mid-run


class Override(_Strict):
    """Agent behaviour that differs where the alert matches, from a day on."""

    where: dict[str, str]
    from_day: int = Field(default=0, ge=0)
    close_rate: Fraction | None = None
    close_precision: Fraction | None = None
    benign_share_of_errors: Fraction | None = None


class AgentSpec(_Strict):
    close_rate: Fraction = 0.7
    close_precision: Fraction = 0.995
    benign_share_of_errors: Fraction = 0.9
    overrides: list[Override] = []


class ReviewSpec(_Strict):
    delay_hours: tuple[float, float] = (2, 48)
    follow_sampling: bool = True
    review_rate: Fraction = 0.2
    shadow_analysts_decide: bool = True


class EscalationSpec(_Strict):
    probability: Fraction = 0.5
    delay_hours: tuple[float, float] = (1, 96)


class CanaryStart(_Strict):
    day: int = Field(ge=0)
    scope: str


class OperatorSpec(_Strict):
    start_canary: Literal["when_ready"] | list[CanaryStart] = "when_ready"
    reset_after_rollback_days: float | None = Field(default=3, ge=0)


class Scenario(_Strict):
    name: str = "scenario"
    days: int = Field(default=30, gt=0, le=3650)
    start: datetime = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
    tenants: list[TenantSpec] = Field(min_length=1)
    rule_families: list[Named] = Field(min_length=1)
    data_sources: list[Named] = Field(min_length=1)
    severity: dict[str, Share] = {"low": 0.6, "medium": 0.3, "high": 0.08, "critical": 0.02}
    agent: AgentSpec = AgentSpec()
    reviews: ReviewSpec = ReviewSpec()
    escalations: EscalationSpec = EscalationSpec()
    slices: list[str] = []
    operator: OperatorSpec = OperatorSpec()
    policy: dict[str, Any] = {}

    @field_validator("start")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-03-02T00:00:00Z")
        return value

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            return check_fields(value)
        except BadInput as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _shares(self) -> Scenario:
        for name, items in (("rule_families", self.rule_families), ("data_sources", self.data_sources)):
            total = sum(i.share for i in items)
            if abs(total - 1) > 1e-6:
                raise ValueError(f"{name}: shares add up to {total:g}, not 1")
        if abs(sum(self.severity.values()) - 1) > 1e-6:
            raise ValueError(f"severity: shares add up to {sum(self.severity.values()):g}, not 1")
        return self


def _problems(exc: ValidationError) -> BadInput:
    problems = [Problem(str(e["msg"]), tuple(e["loc"])) for e in exc.errors()]
    first = problems[0]
    where = first.field() or "scenario"
    return BadInput(f"scenario: {where}: {first.msg}", problems)


def parse_scenario(data: object) -> Scenario:
    if not isinstance(data, dict):
        raise BadInput.at("scenario", "must be a YAML mapping")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _problems(exc) from None


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a YAML file."""
    if name_or_path in BUILT_IN:
        text = resources.files("tether.sim").joinpath("scenarios", f"{name_or_path}.yaml").read_text()
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise BadInput.at(
                "scenario", f"{name_or_path!r} is neither a built-in ({', '.join(BUILT_IN)}) nor a file"
            )
        text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInput.at("scenario", f"invalid YAML: {exc}") from None
    return parse_scenario(data)
