"""Bearer tokens: the caller's principal, and the permission each route needs."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tether.domain.access import Permission, Principal
from tether.services import tokens
from tether.services.context import Context


def base_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


CHALLENGE = {"WWW-Authenticate": "Bearer"}  # sent with every 401
_BEARER = HTTPBearer(auto_error=False, description="A token from `tether token create` (or `tether init`)")


def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER)
) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(401, "missing bearer token", headers=CHALLENGE)
    principal = tokens.authenticate(base_context(request), credentials.credentials.strip())
    if principal is None:
        raise HTTPException(401, "unknown or revoked token", headers=CHALLENGE)
    return principal


def needs(permission: Permission) -> Callable[[Request], Context]:
    """A dependency: the service context acting as the caller, after checking its role."""

    def dependency(request: Request, principal: Principal = Depends(_principal)) -> Context:
        principal.require(permission)
        return base_context(request).acting_as(principal)

    return dependency
