"""Who may do what: roles, and the tenants a restricted token sees (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tether.domain.errors import Forbidden
from tether.domain.model import Actor, ActorType
from tether.domain.scope import Scope


class Role(StrEnum):
    VIEWER = "viewer"
    INGEST = "ingest"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"  # slices, kill switches, audit, policy
    INGEST = "ingest"  # decisions, outcomes, gate
    OPERATE = "operate"  # canary start, rollback, reset, kill switches, slice creation
    ADMINISTER = "administer"  # forced promotion, policy, tokens


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.INGEST: frozenset({Permission.INGEST}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a token's id, name, role and the tenants it is limited to (empty: all)."""

    id: str
    name: str | None
    role: Role
    tenants: frozenset[str] = frozenset()

    @property
    def restricted(self) -> bool:
        return bool(self.tenants)

    @property
    def actor(self) -> Actor:
        return Actor(ActorType.TOKEN, self.id, self.name)

    def require(self, permission: Permission) -> None:
        if permission not in GRANTS[self.role]:
            raise Forbidden(f"role {self.role.value} may not {permission.value}")

    def require_unrestricted(self, what: str) -> None:
        if self.restricted:
            raise Forbidden(f"{what} needs a token that is not limited to tenants")

    def sees_tenant(self, tenant: str | None) -> bool:
        return not self.restricted or (tenant is not None and tenant in self.tenants)

    def sees_scope(self, scope: Scope) -> bool:
        """A slice or kill switch belongs to the tenant its scope names; others need an unrestricted token."""
        return self.sees_tenant(scope.value("tenant"))

    def require_tenants(self, tenants: Iterable[str]) -> None:
        outside = sorted({t for t in tenants if not self.sees_tenant(t)})
        if outside:
            raise Forbidden(f"this token may not write for tenant {outside[0]!r}")


ADMIN_CLI = Principal("cli", None, Role.ADMIN)
