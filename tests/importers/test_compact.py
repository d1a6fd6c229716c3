"""The compact form: blocks with params and repeat where runs of one structure follow each other, planning node by
node to the flat form."""

from __future__ import annotations

import keras
import pytest

from specdsl.importers import import_model
from specdsl.importers._compact_params import parametrize

L = keras.layers


def _vgg():
    inp = keras.Input((32, 32, 3))
    x = inp
    for i, (filters, convs) in enumerate([(16, 2), (32, 2), (64, 3)], 1):
        for j in range(convs):
            x = L.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv{j + 1}")(x)
        x = L.MaxPooling2D(name=f"block{i}_pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(64, activation="relu", name="fc1")(x)
    x = L.Dense(64, activation="relu", name="fc2")(x)
    return keras.Model(inp, L.Dense(10, activation="softmax", name="predictions")(x), name="vgg_small")


def _resnet():
    inp = keras.Input((32, 32, 3))
    x = L.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    for filters, blocks, strides in [(16, 2, 1), (32, 3, 2)]:
        for b in range(blocks):
            s = strides if b == 0 else 1
            shortcut = x if b else L.BatchNormalization()(L.Conv2D(filters, 1, strides=s, use_bias=False)(x))
            y = L.Conv2D(filters, 3, strides=s, padding="same", use_bias=False)(x)
            y = L.ReLU()(L.BatchNormalization()(y))
            y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(y))
            x = L.ReLU()(L.Add()([shortcut, y]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x), name="resnet_small")


def _counts(plan):
    return plan.params, plan.trainable, plan.non_trainable


def test_vgg_stages_become_one_block_with_a_repeat():
    model = _vgg()
    imported = import_model(model)
    assert imported.compact
    assert imported.text.split("input: [32, 32, 3]\n")[1] == (
        "blocks:\n"
        "  stage:\n"
        "    params: {n: null, filters: null}\n"
        "    layers:\n"
        "      - repeat: $n\n"
        "        layers:\n"
        "          - conv2d: {filters: $filters, kernel: 3, padding: same, activation: relu}\n"
        "      - maxpool2d\n"
        "layers:\n"
        "  - stage: {n: 2, filters: 16}\n"
        "  - stage: {n: 2, filters: 32}\n"
        "  - stage: {n: 3, filters: 64}\n"
        "  - flatten\n"
        "  - dense: {units: 64, activation: relu, name: fc1}\n"
        "  - dense: {units: 64, activation: relu, name: fc2}\n"
        "  - dense: {units: 10, activation: softmax, name: predictions}\n"
    )
    # 448 + 2,320 + 4,640 + 9,248 + 18,496 + 2 x 36,928 (convs) + 65,600 + 4,160 + 650 (dense)
    assert (
        _counts(imported.plan)
        == _counts(imported.flat_plan)
        == (179_418, 179_418, 0)
        == (model.count_params(), model.count_params(), 0)
    )
    assert len(imported.flat_text.splitlines()) == 18


def test_residual_blocks_share_a_block_and_the_projection_has_its_own():
    model = _resnet()
    imported = import_model(model)
    assert imported.text.split("input: [32, 32, 3]\n")[1] == (
        "blocks:\n"
        "  conv_bn:\n"
        "    params: {filters: null, kernel: null, strides: 1, padding: valid}\n"
        "    layers:\n"
        "      - conv2d: {filters: $filters, kernel: $kernel, strides: $strides, padding: $padding, use_bias: false}\n"
        "      - batchnorm\n"
        "  residual:\n"
        "    params: {filters: null, strides: 1}\n"
        "    layers:\n"
        "      - conv_bn: {filters: $filters, kernel: 1, strides: $strides, name: b1}\n"
        "      - conv_bn: {filters: $filters, kernel: 3, strides: $strides, padding: same, inputs: input}\n"
        "      - activation: relu\n"
        "      - conv_bn: {filters: $filters, kernel: 3, padding: same, name: b2}\n"
        "      - add: {inputs: [b1, b2]}\n"
        "      - activation: relu\n"
        "  residual2:\n"
        "    params: {filters: null}\n"
        "    layers:\n"
        "      - conv_bn: {filters: $filters, kernel: 3, padding: same}\n"
        "      - activation: relu\n"
        "      - conv_bn: {filters: $filters, kernel: 3, padding: same, name: b1}\n"
        "      - add: {inputs: [input, b1]}\n"
        "      - activation: relu\n"
        "layers:\n"
        "  - conv_bn: {filters: 16, kernel: 3, padding: same}\n"
        "  - activation: relu\n"
        "  - residual: {filters: 16}\n"
        "  - residual2: {filters: 16}\n"
        "  - residual: {filters: 32, strides: 2}\n"
        "  - residual2: {filters: 32}\n"
        "  - residual2: {filters: 32}\n"
        "  - global_avgpool2d\n"
        "  - dense: 10\n"
    )
    assert _counts(imported.plan) == _counts(imported.flat_plan) == (62_714, 62_074, 640)
    assert model.count_params() == 62_714
    flat = import_model(_resnet(), flat=True)
    assert not flat.compact and flat.text == flat.flat_text and len(flat.text.splitlines()) == 48


def test_a_model_without_repetition_stays_flat():
    inp = keras.Input((8,))
    model = keras.Model(inp, L.Dense(2)(L.Dense(4, activation="relu")(inp)))
    imported = import_model(model)
    assert not imported.compact and imported.text == imported.flat_text


@pytest.mark.parametrize(
    "uses, labels, params, forms, values",
    [
        # equal values are params of one name; an integer multiple reads its base
        (
            [[64, 64, 256], [128, 128, 512]],
            ["filters"] * 3,
            ["filters"],
            ["$filters", "$filters", "${filters * 4}"],
            [[64], [128]],
        ),
        # a value that never differs is written as it is
        ([[3, 1], [3, 2]], ["kernel", "strides"], ["strides"], [3, "$strides"], [[1], [2]]),
        # values of other arguments are not related, even when they look like multiples
        (
            [[1, 2], [2, 4]],
            ["strides", "filters"],
            ["strides", "filters"],
            ["$strides", "$filters"],
            [[1, 2], [2, 4]],
        ),
        # two unrelated values of one argument get two names
        (
            [[32, 5], [64, 7]],
            ["filters", "filters"],
            ["filters", "filters_2"],
            ["$filters", "$filters_2"],
            [[32, 5], [64, 7]],
        ),
    ],
)
def test_params(uses, labels, params, forms, values):
    assert parametrize(uses, labels) == (params, forms, values)
