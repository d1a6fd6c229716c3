"""keras.applications models (built with weights=None: nothing is downloaded) import with Keras' exact counts, in
compact form; the compact and flat forms plan to the same nodes. The large ones are marked slow (each takes
2-5 s to build on a 2-core machine, VGG's weights are half a gigabyte)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from import_support import inputs, keras_out

import specdsl
import specdsl.weights as W
from specdsl.errors import SourceError
from specdsl.importers import import_model

# name: (total, trainable, non-trainable) as model.summary() prints them, lines of the compact spec
COUNTS = {
    "MobileNetV2": ((3_538_984, 3_504_872, 34_112), 62),
    "ResNet50": ((25_636_712, 25_583_592, 53_120), 50),
    "VGG16": ((138_357_544, 138_357_544, 0), 21),
    "InceptionV3": ((23_851_784, 23_817_352, 34_432), 91),
    "DenseNet121": ((8_062_504, 7_978_856, 83_648), 40),
    "Xception": ((22_910_480, 22_855_952, 54_528), 55),
}
DEFAULT = {"MobileNetV2", "ResNet50"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in DEFAULT else [pytest.mark.slow]) for n in COUNTS]
)
def test_applications_import_with_exact_counts(name):
    model = getattr(keras.applications, name)(weights=None)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    imported = import_model(model)
    counts, lines = COUNTS[name]
    assert (model.count_params(), trainable) == counts[:2]
    for plan in (imported.plan, imported.flat_plan):
        assert (plan.params, plan.trainable, plan.non_trainable) == counts
        assert plan.output_shape == (1000,)
    assert imported.compact and len(imported.text.splitlines()) == lines


def test_mobilenet_v2_through_a_file_with_its_weights(tmp_path):
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35, classes=10)
    path = tmp_path / "mobilenet.keras"
    model.save(path)
    imported = import_model(path)
    checkpoint = imported.write_weights(tmp_path / "mobilenet.npz")
    x = inputs((96, 96, 3))
    spec_model = W.load_into(specdsl.build(imported.plan, "keras"), imported.plan, checkpoint)
    np.testing.assert_allclose(keras_out(spec_model, x), keras_out(model, x), rtol=1e-4, atol=1e-6)
    # a spec written by hand in another order would match by structure; this one keeps Keras' names
    W.load_into(specdsl.build(imported.plan, "torch"), imported.plan, path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, message",
    [
        (
            "EfficientNetB0",
            "layer `normalization` (Normalization); layer `block2b_drop` (Dropout) "
            "(noise_shape=(None, 1, 1, 1)) and 8 more like it have no equivalent",
        ),
        (
            "InceptionResNetV2",
            "layer `custom_scale_layer` (CustomScaleLayer) and 39 more like it have no equivalent",
        ),
    ],
)
def test_applications_with_layers_the_language_lacks(name, message):
    model = getattr(keras.applications, name)(weights=None)
    with pytest.raises(SourceError) as e:
        import_model(model)
    assert message in str(e.value)
