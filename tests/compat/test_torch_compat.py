"""specdsl/_compat/_torch.py against the installed torch: the exception torch.compile raises when its backend
fails is one of those compile_errors() names (each failure names torch's version)."""

from __future__ import annotations

import torch

from specdsl._compat import _torch

WHO = f"torch {torch.__version__}"


def test_a_failing_backend_raises_one_of_the_compile_errors():
    def broken(gm, example_inputs):
        raise RuntimeError("this backend compiles nothing")

    model = torch.compile(torch.nn.Linear(2, 2), backend=broken)
    try:
        model(torch.ones(1, 2))
    except _torch.compile_errors() as e:
        assert "this backend compiles nothing" in str(e), WHO
    else:
        raise AssertionError(f"{WHO}: a failing torch.compile backend raised nothing")


def test_errors_of_the_model_itself_are_not_compile_errors():
    assert not issubclass(ValueError, _torch.compile_errors()), WHO
    assert all(issubclass(e, Exception) for e in _torch.compile_errors()), WHO
