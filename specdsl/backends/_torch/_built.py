"""What a torch builder returns for a plan node: a :class:`Built`, its module as a :class:`ModuleCall` (evaluated by
``build``, written out by ``source``), how to initialize its parameters as Keras does, and the :class:`Layout` of
each of Keras' weights of the layer in torch's tensors (what ``specdsl.backends._transfer`` carries across).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn


@dataclass(frozen=True)
class ModuleCall:
    """The constructor call of a torch module, ``fn(*args, **kwargs)``: ``make()`` evaluates it, ``code()`` writes it
    as Python source. Arguments may themselves be ModuleCalls (an activation module inside a conv)."""

    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def make(self) -> Any:
        return self.fn(*(_make(a) for a in self.args), **{k: _make(v) for k, v in self.kwargs})

    def code(self) -> str:
        parts = [_literal(a) for a in self.args] + [f"{k}={_literal(v)}" for k, v in self.kwargs]
        return f"{qualname(self.fn)}({', '.join(parts)})"

    def helpers(self) -> list[Callable]:
        """The functions and classes this call uses that are not torch's own: those of ``_modules``, or of the
        module that defines a kind's builder (a plug-in's). Their source goes into generated source."""
        found = [self.fn] if not _is_torch(self.fn) else []
        for value in (*self.args, *(v for _, v in self.kwargs)):
            if isinstance(value, ModuleCall):
                found += value.helpers()
        return found


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ModuleCall:
    """``call(nn.Dropout, 0.5)``: the ModuleCall of ``nn.Dropout(0.5)``."""
    return ModuleCall(fn, args, tuple(kwargs.items()))


def _is_torch(fn: Callable[..., Any]) -> bool:
    return fn.__module__ == "torch" or fn.__module__.startswith("torch.")


def qualname(fn: Callable[..., Any]) -> str:
    """How generated source names ``fn``: ``nn.Conv2d`` for torch's, the bare name for a helper (defined in the
    file: one of ``_modules``, or a builder's own module class)."""
    if not _is_torch(fn):
        return fn.__name__
    if getattr(nn, fn.__name__, None) is fn:
        return f"nn.{fn.__name__}"
    raise ValueError(f"{fn!r} is in torch but not torch.nn, which generated source cannot name")


def _make(value: Any) -> Any:
    return value.make() if isinstance(value, ModuleCall) else value


def _literal(value: Any) -> str:
    if isinstance(value, ModuleCall):
        return value.code()
    if isinstance(value, float) and math.isinf(value):
        return 'float("-inf")' if value < 0 else 'float("inf")'
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return f"[{', '.join(_literal(v) for v in value)}]"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"cannot write {value!r} as a literal")


@dataclass(frozen=True)
class Layout:
    """How one torch tensor maps to the Keras weight it corresponds to (both ways, on numpy arrays)."""

    to_keras: Callable[[np.ndarray], np.ndarray]
    from_keras: Callable[[np.ndarray], np.ndarray]


def _permute(*dims: int) -> Layout:
    inverse = tuple(int(i) for i in np.argsort(dims))
    return Layout(lambda a: a.transpose(dims), lambda a: a.transpose(inverse))


AS_IS = Layout(lambda a: a, lambda a: a)
# conv (out, in, kh, kw) <-> (kh, kw, in, out); transposed conv (in, out, kh, kw) <-> (kh, kw, out, in)
KERNEL_2D = _permute(2, 3, 1, 0)
KERNEL_1D = _permute(2, 1, 0)  # (out, in, k) <-> (k, in, out)
DENSE = _permute(1, 0)  # (out, in) <-> (in, out)
CHANNELS_LAST = Layout(lambda a: np.moveaxis(a, 0, -1), lambda a: np.moveaxis(a, -1, 0))


def depthwise_layout(m: int) -> Layout:
    """Depthwise kernel: torch (C * m, 1, kh, kw) <-> Keras (kh, kw, C, m); output channel c * m + j in both."""
    return Layout(
        lambda a: a.reshape(a.shape[0] // m, m, *a.shape[2:]).transpose(2, 3, 0, 1),
        lambda a: a.transpose(2, 3, 0, 1).reshape(-1, 1, a.shape[0], a.shape[1]),
    )


@dataclass(frozen=True)
class Built:
    """A node's module and what to know about its parameters.

    ``kernels``: (parameter, Keras initializer, fan_in, fan_out) to fill as Keras would, fans as Keras counts them
    for its kernel's shape; ``zeros``: parameters Keras starts at zero (biases); ``keras``: (parameter or buffer,
    layout) in the order of the Keras layer's ``weights``.
    """

    module: ModuleCall
    kernels: tuple[tuple[str, str, int, int], ...] = ()
    zeros: tuple[str, ...] = ()
    keras: tuple[tuple[str, Layout], ...] = ()
