"""The weights of a plan node, in Keras' layout: their names and shapes, from the plan alone.

A weights file holds each node's arrays exactly as the node's Keras layer holds them (``layer.get_weights()``,
in that order): convolution kernels (kh, kw, in, out), dense kernels (in, out), a depthwise kernel (kh, kw, C, m),
BatchNorm's gamma, beta, moving mean and moving variance. No framework is imported here: a file is checked
against a plan before torch or Keras is touched.

The layout is what each kind's shape rule declares (``node.resolved.weights``, see
:class:`~specdsl.plan.Resolved`), so a new layer kind brings its own; ``tests/weights`` checks every layer case
against the Keras layer and the torch module.
"""

from __future__ import annotations

import math

from ..plan import PlanNode

Shape = tuple[int, ...]
Entries = list[tuple[str, Shape]]


def keras_weights(node: PlanNode) -> Entries:
    """(name, shape) of each weight of a plan node, in the order and layout of its Keras layer's weights.

    >>> keras_weights(specdsl.check("examples/lenet5.yaml")["conv2d"])
    [('kernel', (5, 5, 1, 6)), ('bias', (6,))]

    A rule whose declared weights do not add up to its node's parameters is a bug of the kind, refused here
    rather than read as a wrong layout.
    """
    entries = list(node.resolved.weights)
    declared = sum(math.prod(shape) for _, shape in entries)
    if declared != node.params:
        raise ValueError(
            f"the rule of layer kind `{node.kind}` declares weights of {declared:,} values for a node of "
            f"{node.params:,} parameters; its Resolved(weights=...) must list every weight, in Keras' order."
        )
    return entries
