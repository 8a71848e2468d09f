"""A Python client for Tether's HTTP API that fails closed: no answer from Tether means do not execute.

    client = TetherClient("http://tether:8000", token="tth_...", timeout=2.0)
    answer = client.decide({...})          # Answer(mode, execute, slice_ids, reason, ...)
    if answer.execute:
        close_the_alert()

On a timeout, a connection error or a 5xx, `decide` and `gate` return answers with `execute=False`
and reason `unreachable` or `error`, and `record_outcomes` returns `accepted=0` with that reason:
none of them raises for those. A 4xx (bad input, bad token, conflict) raises a typed ClientError.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

UNREACHABLE = "unreachable"
ERROR = "error"


@dataclass(frozen=True)
class Answer:
    """Tether's answer for one decision or gate question."""

    mode: str
    execute: bool
    slice_ids: tuple[str, ...]
    reason: str
    decision_id: str | None = None
    kill_switch_id: str | None = None

    @classmethod
    def fail_closed(cls, reason: str, decision_id: str | None = None) -> Answer:
        return cls("shadow", False, (), reason, decision_id)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        return cls(
            str(data["mode"]),
            data["execute"] is True,  # anything but a literal true does not execute
            tuple(data.get("slice_ids") or ()),
            str(data.get("reason", "")),
            data.get("decision_id"),
            data.get("kill_switch_id"),
        )


@dataclass(frozen=True)
class OutcomesReceipt:
    accepted: int
    actions: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None  # set when Tether could not be reached: nothing was recorded, send again


class ClientError(Exception):
    """A 4xx from Tether: the request itself is wrong; retrying it unchanged will not help."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body.get('error', body)}")
        self.status, self.body = status, body
        self.errors: list[dict[str, Any]] = list(body.get("errors") or [])


class BadRequest(ClientError):
    """422/400: bad input; `errors` names the field and the batch index."""


class Unauthorized(ClientError):
    """401: missing, unknown or revoked token."""


class Forbidden(ClientError):
    """403: the token's role or tenants do not allow this."""


class NotFound(ClientError):
    """404."""


class Conflict(ClientError):
    """409: a decision_id replayed with a different body, or a transition not allowed."""


class TooLarge(ClientError):
    """413: body or batch over the limit."""


_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: BadRequest,
}


class _Unavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


T = TypeVar("T")


def _parsed(read: Callable[[], T]) -> T:
    """A 200 whose body is not Tether's answer is an error: fail closed rather than guess."""
    try:
        return read()
    except (KeyError, TypeError, IndexError, ValueError, AttributeError):
        raise _Unavailable(ERROR) from None


class TetherClient:
    """Thread-safe (one keep-alive connection per thread)."""

    def __init__(self, base_url: str, token: str, timeout: float = 2.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._token, self.timeout = token, timeout
        self._local = threading.local()

    # public API ------------------------------------------------------------
    def decide(self, decisions: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Send one decision (returns an Answer) or a list (returns a list of Answers, same order)."""
        batch = [decisions] if isinstance(decisions, dict) else list(decisions)
        try:
            body = self._call("POST", "/v1/decisions", batch)
            answers = _parsed(lambda: [Answer.from_json(r) for r in body["results"]])
            if len(answers) != len(batch):
                raise _Unavailable(ERROR)
        except _Unavailable as exc:
            answers = [Answer.fail_closed(exc.reason, d.get("decision_id")) for d in batch]
        return answers[0] if isinstance(decisions, dict) else answers

    def gate(self, alert: dict[str, Any]) -> Answer:
        """Read-only: the mode this alert would get; fails closed."""
        try:
            body = self._call("POST", "/v1/gate", alert)
            return _parsed(lambda: Answer.from_json(body))
        except _Unavailable as exc:
            return Answer.fail_closed(exc.reason)

    def record_outcomes(self, outcomes: list[dict[str, Any]]) -> OutcomesReceipt:
        """Report what alerts really were; rollbacks they trigger come back in `actions`."""
        try:
            body = self._call("POST", "/v1/outcomes", outcomes)
            return _parsed(lambda: OutcomesReceipt(int(body["accepted"]), list(body["actions"])))
        except _Unavailable as exc:
            return OutcomesReceipt(0, [], exc.reason)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # transport -------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _call(self, method: str, path: str, payload: Any) -> dict[str, Any]:
        data = json.dumps(payload).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        for attempt in range(2):  # a kept-alive connection the server closed gets one fresh retry
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                break
            except TimeoutError:
                self.close()
                raise _Unavailable(UNREACHABLE) from None
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise _Unavailable(UNREACHABLE) from None
        if status >= 500:
            raise _Unavailable(ERROR)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise _Unavailable(ERROR) from None
        if status >= 400:
            raise _BY_STATUS.get(status, ClientError)(status, body if isinstance(body, dict) else {})
        return body if isinstance(body, dict) else {}
