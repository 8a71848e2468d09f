"""JSON-lines files: items with their line numbers, and errors located by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tether.domain.errors import BadInput, Problem, ReplayConflict, TetherError


def read_jsonl(path: Path) -> tuple[list[Any], list[int]]:
    """Every non-blank line parsed, with its 1-based line number (blank lines count)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput.at("FILE", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput.at("FILE", f"{path} is not UTF-8 text") from None
    items: list[Any] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BadInput(f"line {number}: body: invalid JSON ({exc.msg} at column {exc.colno})") from None
        lines.append(number)
    return items, lines


def locate(exc: TetherError, lines: list[int]) -> TetherError:
    """The same error, its message naming the file line instead of the batch index."""
    if isinstance(exc, BadInput) and exc.problems and exc.problems[0].index is not None:
        p: Problem = exc.problems[0]
        line = lines[p.index] if p.index is not None and p.index < len(lines) else "?"
        where = f"{p.field()}: " if p.loc else ""
        return BadInput(f"line {line}: {where}{p.msg}", exc.problems)
    if isinstance(exc, ReplayConflict) and exc.index is not None and exc.index < len(lines):
        message = exc.message.split(": ", 1)[1] if exc.message.startswith("item ") else exc.message
        return ReplayConflict(f"line {lines[exc.index]}: {message}", exc.index)
    return exc
