"""A densely connected block written with ``repeat`` and ``prev`` (each pass concatenates its input with what
it adds) builds DenseNet's graph: the same layers, shapes, counts and concatenations as the Keras model built
here the way ``keras.applications.densenet`` builds its blocks."""

from __future__ import annotations

import pytest

import specdsl

SPEC = """\
name: densenet_tiny
input: [32, 32, 3]
blocks:
  dense_block:
    params: {blocks: null, growth: 12}
    layers:
      - repeat: $blocks
        layers:
          - batchnorm: {epsilon: 1.001e-5}
          - activation: relu
          - conv2d: {filters: "${4 * growth}", kernel: 1, use_bias: false}
          - batchnorm: {epsilon: 1.001e-5}
          - activation: relu
          - conv2d: {filters: $growth, kernel: 3, padding: same, use_bias: false, name: new}
          - concat: {inputs: [prev, new]}
  transition:
    layers:
      - batchnorm: {epsilon: 1.001e-5}
      - activation: relu
      - conv2d: {filters: "${input.channels // 2}", kernel: 1, use_bias: false}
      - avgpool2d: {pool: 2, strides: 2}
layers:
  - conv2d: {filters: 24, kernel: 3, padding: same, use_bias: false}
  - dense_block: {blocks: 3}
  - transition
  - dense_block: {blocks: 4}
  - batchnorm: {epsilon: 1.001e-5}
  - activation: relu
  - global_avgpool2d
  - dense: {units: 10, activation: softmax}
"""


def keras_densenet_tiny():
    keras = pytest.importorskip("keras")
    L = keras.layers

    def conv_block(x, growth):
        x1 = L.BatchNormalization(epsilon=1.001e-5)(x)
        x1 = L.Activation("relu")(x1)
        x1 = L.Conv2D(4 * growth, 1, use_bias=False)(x1)
        x1 = L.BatchNormalization(epsilon=1.001e-5)(x1)
        x1 = L.Activation("relu")(x1)
        x1 = L.Conv2D(growth, 3, padding="same", use_bias=False)(x1)
        return L.Concatenate(axis=3)([x, x1])

    def transition(x):
        x = L.BatchNormalization(epsilon=1.001e-5)(x)
        x = L.Activation("relu")(x)
        x = L.Conv2D(int(x.shape[-1] * 0.5), 1, use_bias=False)(x)
        return L.AveragePooling2D(2, strides=2)(x)

    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(24, 3, padding="same", use_bias=False)(inputs)
    for _ in range(3):
        x = conv_block(x, 12)
    x = transition(x)
    for _ in range(4):
        x = conv_block(x, 12)
    x = L.BatchNormalization(epsilon=1.001e-5)(x)
    x = L.Activation("relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x))


def test_the_dense_blocks_graph_and_counts_are_keras():
    plan = specdsl.check(SPEC)
    model = keras_densenet_tiny()
    import numpy as np

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (plan.params, plan.trainable, plan.non_trainable) == (
        model.count_params(),
        trainable,
        model.count_params() - trainable,
    )
    assert (plan.params, plan.trainable, plan.non_trainable) == (57_022, 55_474, 1_548)

    # layer by layer: class, output shape, parameters; and which layers each concatenation reads
    position = {layer.name: i for i, layer in enumerate(model.layers)}
    keras_rows = [
        (layer.__class__.__name__, tuple(layer.output.shape[1:]), layer.count_params())
        for layer in model.layers
    ]
    spec_rows = [(n.keras_class, n.shape, n.params) for n in plan.nodes]
    assert spec_rows == keras_rows
    keras_concats = [
        sorted(position[node.operation.name] for node in layer._inbound_nodes[0].parent_nodes)
        for layer in model.layers
        if layer.__class__.__name__ == "Concatenate"
    ]
    index = {n.name: i for i, n in enumerate(plan.nodes)}
    spec_concats = [sorted(index[i] for i in n.inputs) for n in plan.nodes if n.kind == "concat"]
    assert spec_concats == keras_concats
    # each pass reads its input (the layer before the repeat, then the pass before's concatenation)
    assert spec_concats == [[1, 7], [8, 14], [15, 21], [26, 32], [33, 39], [40, 46], [47, 53]]
    channels = [n.shape[-1] for n in plan.nodes if n.kind == "concat"]
    assert channels == [36, 48, 60, 42, 54, 66, 78]
