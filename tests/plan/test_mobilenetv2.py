"""examples/mobilenetv2.yaml is keras.applications.MobileNetV2 (weights=None) to the parameter, at its width
multipliers below, above and at 1 (widths by conditionals, channels read from each block's input)."""

from __future__ import annotations

import pytest
import yaml
from support import EXAMPLES

import specdsl

SPEC = yaml.safe_load((EXAMPLES / "mobilenetv2.yaml").read_text())


def counts(alpha: float, size: int) -> tuple[int, int, int]:
    doc = {**SPEC, "input": [size, size, 3], "params": {**SPEC["params"], "alpha": alpha}}
    plan = specdsl.check(doc)
    return plan.params, plan.trainable, plan.non_trainable


def keras_counts(alpha: float, size: int) -> tuple[int, int, int]:
    keras = pytest.importorskip("keras")
    model = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return model.count_params(), trainable, model.count_params() - trainable


def test_the_example_is_keras_mobilenetv2():
    assert counts(1.0, 224) == (3_538_984, 3_504_872, 34_112) == keras_counts(1.0, 224)


@pytest.mark.parametrize("alpha", [0.35, 0.75, 1.4])
def test_width_multipliers(alpha):
    assert counts(alpha, 96) == keras_counts(alpha, 96)
