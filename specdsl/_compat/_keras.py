"""Keras' private structures that importing a model needs: its functional graph and its safe-mode scope.

Keras has no public API to walk a functional model's graph (which layer reads which tensor). Every private name
used for that lives here: ``Sequential._functional``, ``Operation._inbound_nodes``, ``KerasTensor._keras_history``,
``Node.input_tensors`` /
``output_tensors`` and ``serialization_lib.SafeModeScope``. ``tests/compat/test_keras_compat.py`` fails,
naming the Keras version, when an upgrade changes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def functional(model: Any) -> Any | None:
    """The functional graph of a model: the model itself, a built Sequential's inner Functional, or None for a
    model without one (an unbuilt Sequential, a subclassed model)."""
    import keras

    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if hasattr(model, "operations") and hasattr(model, "_inbound_nodes") and getattr(model, "inputs", None):
        return model
    return None


def calls(operation: Any) -> list[Any]:
    """The nodes (calls) of an operation, in the order they were made."""
    return list(operation._inbound_nodes)


def producer_name(tensor: Any) -> str | None:
    """The name of the operation that made a symbolic tensor (an input layer's, for a model input), or None."""
    history = getattr(tensor, "_keras_history", None)
    op = history[0] if history else None
    name = getattr(op, "name", None)
    return str(name) if name else None


def node_inputs(node: Any) -> list[Any]:
    return list(node.input_tensors)


def node_outputs(node: Any) -> list[Any]:
    return list(node.output_tensors)


@contextlib.contextmanager
def safe_mode() -> Iterator[None]:
    """Keras' safe mode for everything loaded within, whatever the loader (the legacy ``.h5`` one takes no
    ``safe_mode`` argument): a Python lambda in a file is refused, never run."""
    from keras.src.saving import serialization_lib

    with serialization_lib.SafeModeScope(True):
        yield
