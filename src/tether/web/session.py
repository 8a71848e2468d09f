"""Dashboard sessions: a signed cookie naming a token, checked against the database on every request.

The cookie is `TOKEN_ID.ISSUED.NONCE.SIGNATURE`, signed with HMAC-SHA256 under a key derived from the
token's stored secret hash, so every replica on the same database can check it, nothing new is stored,
and revoking the token ends its sessions at once. The CSRF token of a session is derived from its nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from tether.domain.access import Principal
from tether.services import dashboard
from tether.services.context import Context

COOKIE = "tether_session"
LOGIN_COOKIE = "tether_login"  # double-submit value that guards the login form itself
MAX_AGE = 12 * 3600  # seconds a session lasts after logging in
_PURPOSE = b"tether dashboard session v1"


@dataclass(frozen=True)
class WebSession:
    """A logged-in dashboard user: the token's principal, and the CSRF token its forms must carry."""

    principal: Principal
    csrf: str

    def csrf_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


def _key(key_material: str) -> bytes:
    return hmac.new(key_material.encode(), _PURPOSE, hashlib.sha256).digest()


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _csrf(key: bytes, nonce: str) -> str:
    return _sign(key, "csrf." + nonce)[:40]


def issue(token_id: str, key_material: str, wall: Callable[[], float] = time.time) -> str:
    """A new cookie value for a token that just logged in."""
    body = f"{token_id}.{int(wall())}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(_key(key_material), body)}"


def read(ctx: Context, cookie: str | None, wall: Callable[[], float] = time.time) -> WebSession | None:
    """The session of a cookie, or None: malformed, badly signed, expired, or its token revoked."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    token_id, issued, nonce, signature = parts
    age = wall() - int(issued)
    if not 0 <= age <= MAX_AGE:
        return None
    found = dashboard.session_of(ctx, token_id)
    if found is None:
        return None
    key = _key(found.key_material)
    if not hmac.compare_digest(signature.encode(), _sign(key, f"{token_id}.{issued}.{nonce}").encode()):
        return None
    return WebSession(found.principal, _csrf(key, nonce))


def login_nonce() -> str:
    return secrets.token_urlsafe(24)
