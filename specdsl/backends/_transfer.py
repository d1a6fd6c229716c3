"""Carry weights between the torch and Keras models of one plan, so that both compute the same function.

Each torch builder records, for its node, which tensors of its module hold the Keras layer's weights and how
their layouts differ (``Built.keras`` in the torch backend: conv OIHW <-> HWIO, depthwise (C*m, 1, kh, kw) <->
(kh, kw, C, m), separable's two kernels, transposed conv (in, out, kh, kw) <-> (kh, kw, out, in), dense
(out, in) <-> (in, out), BatchNorm's gamma, beta and moving statistics, a per-position bias (C, H, W) <->
(H, W, C)), in the order of the Keras layer's ``get_weights()``. The functions here walk the plan and copy
node by node, matching layers by name (the Keras layer of a node is named as the node; the torch tensors live
under the node's attribute name in ``state_dict``). They work with any torch module having the state_dict
keys of the torch backend's model, including one built from its generated source.

torch and keras are imported only when these functions run.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendError
from ..plan import Plan, PlanNode


def torch_to_keras(plan: Plan, torch_model: Any, keras_model: Any) -> Any:
    """Copy every node's weights (BatchNorm moving mean and variance included) from torch into Keras.

    Args:
        plan: the plan both models were built from.
        torch_model: the torch backend's model of the plan (or a module with its state_dict keys).
        keras_model: the Keras backend's model of the plan.

    Returns:
        ``keras_model``, its weights replaced.

        >>> torch_to_keras(plan, specdsl.build(plan, "torch"), specdsl.build(plan, "keras"))
    """
    state = torch_model.state_dict()
    for node, layer, entries in _pairs(plan, keras_model):
        arrays = [
            layout.to_keras(_torch_tensor(state, node, key).detach().cpu().numpy()) for key, layout in entries
        ]
        dtypes = [w.dtype for w in layer.weights]
        try:
            layer.set_weights([a.astype(dtype) for a, dtype in zip(arrays, dtypes, strict=True)])
        except ValueError as e:
            raise _mismatch(node, e) from e
    return keras_model


def keras_to_torch(plan: Plan, keras_model: Any, torch_model: Any) -> Any:
    """Copy every node's weights (BatchNorm moving statistics included) from Keras into torch; the inverse of
    :func:`torch_to_keras`. Returns ``torch_model``."""
    import numpy as np
    import torch

    state = torch_model.state_dict()  # shares storage with the module's parameters and buffers
    for node, layer, entries in _pairs(plan, keras_model):
        for (key, layout), array in zip(entries, layer.get_weights(), strict=True):
            target = _torch_tensor(state, node, key)
            value = np.ascontiguousarray(layout.from_keras(np.asarray(array)))
            if tuple(value.shape) != tuple(target.shape):
                raise _mismatch(
                    node,
                    f"Keras' `{key}` becomes {tuple(value.shape)}, but torch holds {tuple(target.shape)}",
                )
            with torch.no_grad():
                target.copy_(torch.from_numpy(value).to(target.dtype))
    return torch_model


def _pairs(plan: Plan, keras_model: Any):
    """(node, its Keras layer, the torch backend's [(state_dict key, layout)]) for every node with weights."""
    from ._torch import attribute_names, build_node

    names = attribute_names(plan)
    for node in plan.layers:
        entries = build_node(node).keras
        layer = keras_model.get_layer(node.name)
        if len(entries) != len(layer.weights):
            raise _mismatch(
                node,
                f"the Keras layer holds {len(layer.weights)} weights "
                f"({', '.join(w.name for w in layer.weights) or 'none'}), but the torch backend maps "
                f"{len(entries)} ({', '.join(key for key, _ in entries) or 'none'})",
            )
        if entries:
            yield node, layer, [(f"{names[node.name]}.{key}", layout) for key, layout in entries]


def _torch_tensor(state: dict, node: PlanNode, key: str):
    if key not in state:
        raise _mismatch(
            node, f"the torch model has no `{key}` (is it the torch backend's model of this plan?)"
        )
    return state[key]


def _mismatch(node: PlanNode, detail: Any) -> BackendError:
    return BackendError(
        f"cannot carry the weights of `{node.name}` between torch and Keras: {detail}.",
        loc=node.loc,
        path=f"{node.path} ({node.kind})",
    )
