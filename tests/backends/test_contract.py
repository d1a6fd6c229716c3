"""Every registered backend meets the Backend contract: the same functions, formats and one builder per kind."""

from __future__ import annotations

import inspect

import pytest

import specdsl
from specdsl._registry import Registry
from specdsl.backends import BACKENDS, Backend, get_backend
from specdsl.spec import LAYERS

SPEC = {"input": [6, 6, 2], "layers": [{"conv2d": {"filters": 3, "kernel": 3, "padding": "same"}}, "flatten"]}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_backend_meets_the_contract(name, tmp_path):
    backend = get_backend(name)
    assert isinstance(backend, Backend)
    assert isinstance(backend.BUILDERS, Registry) and backend.BUILDERS.within is LAYERS
    assert sorted(backend.BUILDERS) == sorted(LAYERS)  # one builder for every kind
    assert backend.FORMATS[0] == "source" and all(isinstance(f, str) for f in backend.FORMATS)
    for function in ("build", "source", "export"):
        contract = inspect.signature(getattr(Backend, function))
        theirs = inspect.signature(getattr(backend, function))
        assert list(theirs.parameters)[: len(contract.parameters) - 1] == list(contract.parameters)[1:], (
            function
        )
    plan = specdsl.check(SPEC)
    assert backend.source(plan) == backend.source(plan)
    path = backend.export(plan, tmp_path, "source")
    assert path.read_text() == backend.source(plan)
    assert backend.build(plan) is not None
