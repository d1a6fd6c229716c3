"""Taking a plan's weights out of a torch or Keras model, and putting them in, in Keras' layout.

The torch side uses what the torch backend records for each node (``Built.keras``: the state_dict keys holding
the Keras layer's weights and their layout conversions), so it works with the torch backend's model of the plan
or any module with its state_dict keys (one built from its generated source). The Keras side reads and sets the
layer named as each node. torch and keras are imported only when a model of theirs is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backends import get_backend
from ..errors import WeightsError
from ..plan import Plan, PlanNode
from ._fit import weighted_nodes


def is_torch(model: Any) -> bool:
    # a Keras 3 model on the torch backend is an nn.Module too: Keras is told apart first
    return not is_keras(model) and hasattr(model, "state_dict") and hasattr(model, "named_parameters")


def is_keras(model: Any) -> bool:
    return hasattr(model, "get_layer") and hasattr(model, "layers")


def get_arrays(model: Any, plan: Plan) -> dict[str, list[np.ndarray]]:
    """Every weighted node's arrays from ``model`` (a torch or Keras model of ``plan``), in Keras' layout."""
    if is_torch(model):
        state = model.state_dict()
        return {
            node.name: [
                layout.to_keras(_tensor(state, node, key).detach().cpu().numpy()) for key, layout in entries
            ]
            for node, entries in _torch_entries(plan)
        }
    if is_keras(model):
        layers = _keras_layers(model, plan)
        return {
            node.name: [np.asarray(w) for w in layers[node.name].get_weights()]
            for node in weighted_nodes(plan)
        }
    raise WeightsError(_not_a_model(model))


def set_arrays(
    model: Any,
    plan: Plan,
    arrays: Mapping[str, Sequence[np.ndarray]],
    nodes: Sequence[PlanNode] | None = None,
) -> Any:
    """Put each weighted node's arrays (Keras' layout) into ``model``, cast to its dtype. Returns ``model``.

    ``nodes``: only these weighted nodes (a backbone's), the others keeping their weights; default: every one."""
    if is_torch(model):
        import torch

        state = model.state_dict()  # shares storage with the module's parameters and buffers
        for node, entries in _torch_entries(plan, nodes):
            for (key, layout), array in zip(entries, arrays[node.name], strict=True):
                target = _tensor(state, node, key)
                value = np.array(
                    layout.from_keras(np.asarray(array)), order="C"
                )  # a copy: a file's arrays are read-only
                if tuple(value.shape) != tuple(target.shape):
                    raise _node_error(
                        node,
                        f"`{key}` of the torch model is {tuple(target.shape)}, but the weights give {value.shape}",
                    )
                with torch.no_grad():
                    target.copy_(torch.from_numpy(value).to(target.dtype))
        return model
    if is_keras(model):
        layers = _keras_layers(model, plan)
        for node in weighted_nodes(plan) if nodes is None else nodes:
            layer = layers[node.name]
            dtypes = [w.dtype for w in layer.weights]
            try:
                layer.set_weights(
                    [np.asarray(a).astype(d) for a, d in zip(arrays[node.name], dtypes, strict=True)]
                )
            except ValueError as e:
                raise _node_error(node, f"the Keras layer refuses them: {e}") from None
        return model
    raise WeightsError(_not_a_model(model))


def _torch_entries(plan: Plan, nodes: Sequence[PlanNode] | None = None):
    torch_backend: Any = get_backend("torch")  # its builders say which tensors hold each node's weights
    names = torch_backend.attribute_names(plan)
    for node in weighted_nodes(plan) if nodes is None else nodes:
        yield (
            node,
            [(f"{names[node.name]}.{key}", layout) for key, layout in torch_backend.build_node(node).keras],
        )


def _tensor(state: dict, node: PlanNode, key: str):
    if key not in state:
        raise _node_error(
            node, f"the torch model has no `{key}` (is it the torch backend's model of this plan?)"
        )
    return state[key]


def _keras_layers(model: Any, plan: Plan) -> dict[str, Any]:
    layers = {layer.name: layer for layer in model.layers}
    for node in weighted_nodes(plan):
        if node.name not in layers:
            raise _node_error(
                node,
                "the Keras model has no layer of that name (is it the Keras backend's model of this plan?)",
            )
    return layers


def _node_error(node: PlanNode, detail: str) -> WeightsError:
    return WeightsError(
        f"cannot carry the weights of `{node.name}`: {detail}.",
        loc=node.loc,
        path=f"{node.path} ({node.kind})",
    )


def _not_a_model(model: Any) -> str:
    return f"expected a torch nn.Module or a Keras model, but got {type(model).__name__}."
