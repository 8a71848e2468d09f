"""quick_init: the faster constructor behaves as the frozen dataclass's own."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from tether.domain.frozen import quick_init


@quick_init
@dataclass(frozen=True)
class Sample:
    name: str
    count: int = 0
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.__dict__["doubled"] = self.count * 2


def test_it_takes_the_same_arguments_defaults_and_factories() -> None:
    a, b = Sample("x"), Sample("x", 3, ["t"])
    assert (a.name, a.count, a.tags) == ("x", 0, [])
    assert (b.name, b.count, b.tags) == ("x", 3, ["t"])
    assert Sample("y").tags is not Sample("y").tags  # a new list each time, as the factory gives
    assert Sample(name="z", count=2).count == 2
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample("x", colour="red")  # type: ignore[call-arg]


def test_equality_replace_post_init_and_immutability_are_unchanged() -> None:
    a = Sample("x", 2)
    assert a == Sample("x", 2) and a != Sample("x", 3)
    assert a.__dict__["doubled"] == 4
    c = dataclasses.replace(a, count=5)
    assert (c.count, c.__dict__["doubled"]) == (5, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.count = 1  # type: ignore[misc]
    assert repr(a) == "Sample(name='x', count=2, tags=[])"


def test_keyword_only_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="positional"):

        @quick_init
        @dataclass(frozen=True)
        class KeywordOnly:
            name: str = field(kw_only=True)
