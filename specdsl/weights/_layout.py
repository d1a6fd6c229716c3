"""The weights of each layer kind, in Keras' layout: their names and shapes, from the plan alone.

A weights file holds each node's arrays exactly as the node's Keras layer holds them (``layer.get_weights()``,
in that order): convolution kernels (kh, kw, in, out), dense kernels (in, out), a depthwise kernel (kh, kw, C, m),
BatchNorm's gamma, beta, moving mean and moving variance. No framework is imported here: a file is checked
against a plan before torch or Keras is touched.

Adding a layer kind with weights means one entry in ``WEIGHTS``; ``tests/weights`` checks every registered kind
against the Keras layer and the torch module of every layer case.
"""

from __future__ import annotations

from collections.abc import Callable

from ..plan import PlanNode

Shape = tuple[int, ...]
Entries = list[tuple[str, Shape]]

WEIGHTS: dict[str, Callable[[PlanNode], Entries]] = {}


def _register(kind: str):
    def deco(fn: Callable[[PlanNode], Entries]) -> Callable[[PlanNode], Entries]:
        if kind in WEIGHTS:
            raise ValueError(f"the weights of `{kind}` are already registered")
        WEIGHTS[kind] = fn
        return fn

    return deco


def keras_weights(node: PlanNode) -> Entries:
    """(name, shape) of each weight of a plan node, in the order and layout of its Keras layer's weights.

    >>> keras_weights(specdsl.check("examples/lenet5.yaml")["conv2d"])
    [('kernel', (5, 5, 1, 6)), ('bias', (6,))]
    """
    fn = WEIGHTS.get(node.kind)
    return fn(node) if fn is not None else []


def _bias(layer, n: int) -> Entries:
    return [("bias", (n,))] if layer.use_bias else []


@_register("conv2d")
def _conv2d(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    return [("kernel", (*layer.kernel, c // layer.groups, layer.filters)), *_bias(layer, layer.filters)]


@_register("conv1d")
def _conv1d(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    return [("kernel", (layer.kernel, c // layer.groups, layer.filters)), *_bias(layer, layer.filters)]


@_register("depthwise_conv2d")
def _depthwise(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    m = layer.depth_multiplier
    return [("kernel", (*layer.kernel, c, m)), *_bias(layer, c * m)]


@_register("separable_conv2d")
def _separable(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    m = layer.depth_multiplier
    return [
        ("depthwise_kernel", (*layer.kernel, c, m)),
        ("pointwise_kernel", (1, 1, c * m, layer.filters)),
        *_bias(layer, layer.filters),
    ]


@_register("conv2d_transpose")
def _transpose(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    return [("kernel", (*layer.kernel, layer.filters, c)), *_bias(layer, layer.filters)]


@_register("dense")
def _dense(node: PlanNode) -> Entries:
    layer, n = node.layer, node.input_shapes[0][-1]
    return [("kernel", (n, layer.units)), *_bias(layer, layer.units)]


@_register("batchnorm")
def _batchnorm(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    names = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else [])
    return [(name, (c,)) for name in (*names, "moving_mean", "moving_variance")]


@_register("layernorm")
def _layernorm(node: PlanNode) -> Entries:
    layer, c = node.layer, node.input_shapes[0][-1]
    names = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else [])
    return [(name, (c,)) for name in names]


@_register("bias")
def _bias_layer(node: PlanNode) -> Entries:
    shape = node.input_shapes[0]
    return [("bias", tuple(shape) if node.layer.per == "position" else (shape[-1],))]
