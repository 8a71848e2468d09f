"""A cheaper constructor for the frozen dataclasses made on every decision, answer and outcome."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Give a frozen dataclass an `__init__` that fills the instance's dict directly.

    A frozen dataclass's own `__init__` sets each field through `object.__setattr__` (to get past its
    own guard), which costs about three times as much as a plain assignment; on the hot paths (one per
    decision, answer or outcome) that was a visible share of the work. Same signature, defaults,
    default factories and `__post_init__`; equality, hashing, `replace` and immutability are unchanged.
    Not for classes with `__slots__` (they have no instance dict).
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    scope: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    params, body = [], ["  d = self.__dict__"]
    for f in fields:
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init needs every field positional in __init__")
        if f.default is not dataclasses.MISSING:
            scope[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
            body.append(f"  d[{f.name!r}] = {f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_f_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            body.append(f"  d[{f.name!r}] = _f_{f.name}() if {f.name} is _MISSING else {f.name}")
        else:
            params.append(f.name)
            body.append(f"  d[{f.name!r}] = {f.name}")
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(source, scope)  # generated from the class's own field names, as dataclasses itself does
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - replacing the method the dataclass generated
    return cls
