"""The one registry pattern every registry of specdsl uses: layer kinds, rules, builders, backends, datasets."""

from __future__ import annotations

import pytest

from specdsl._registry import NotRegistered, Registry
from specdsl.backends import BACKENDS
from specdsl.data import DATASETS
from specdsl.plan import RULES
from specdsl.spec import LAYERS


def test_a_registry_is_a_dict_filled_by_its_decorator_in_order():
    shapes = Registry("shape")

    @shapes.register("square")
    def square():
        return 4

    assert shapes.register("triangle")(len) is len
    assert shapes.add("circle", abs) is abs
    assert list(shapes) == ["square", "triangle", "circle"]
    assert shapes["square"] is square
    assert shapes.get("hexagon") is None and "hexagon" not in shapes
    assert repr(shapes) == "Registry('shape': square, triangle, circle)"


def test_a_name_registered_twice_is_refused_and_the_first_kept():
    shapes = Registry("shape")
    shapes.add("square", 1)
    with pytest.raises(ValueError, match=r"^a shape for `square` is already registered$"):
        shapes.add("square", 2)
    assert shapes["square"] == 1
    named = Registry("shape", duplicate="{what} `{name}` is taken (by {existing!r})")
    named.add("square", 1)
    with pytest.raises(ValueError, match=r"^shape `square` is taken \(by 1\)$"):
        named.register("square")(2)


def test_a_registry_within_another_takes_only_its_names():
    kinds = Registry("kind")
    kinds.add("conv2d", object())
    rules = Registry("rule", within=kinds)
    rules.add("conv2d", len)
    with pytest.raises(ValueError, match=r"^`conv3d` is not a registered kind$"):
        rules.add("conv3d", len)
    assert list(rules) == ["conv2d"]


def test_a_missing_name_suggests_the_nearest():
    shapes = Registry("shape")
    shapes.add("square", 1)
    shapes.add("circle", 2)
    with pytest.raises(NotRegistered) as info:
        shapes["sqare"]
    assert (
        str(info.value)
        == "no shape `sqare` is registered; registered: square, circle. Did you mean `square`?"
    )
    assert isinstance(info.value, KeyError)
    with pytest.raises(KeyError, match=r"^no shape `zzz` is registered; registered: square, circle\.$"):
        shapes["zzz"]
    assert shapes.nearest("cirle") == "circle" and shapes.nearest("zzz") is None


def test_every_registry_of_specdsl_is_one():
    assert {r.what for r in (LAYERS, RULES, BACKENDS, DATASETS)} == {
        "layer kind",
        "rule",
        "backend",
        "dataset",
    }
    assert all(isinstance(r, Registry) for r in (LAYERS, RULES, BACKENDS, DATASETS))
    assert RULES.within is LAYERS
