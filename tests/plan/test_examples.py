"""Every example plans to the parameter counts Keras' model.summary() prints for it."""

from __future__ import annotations

import pytest
from support import example_files

import specdsl

# name: (total, trainable, non-trainable, output shape) as Keras counts them. VGG16, ResNet50 and InceptionV3 are
# keras.applications' own counts (weights=None); the lecture models are the decks' model.summary() tables.
EXPECTED = {
    "alexnet": (62_378_344, 62_378_344, 0, (1000,)),
    "alphago_policy": (3_882_793, 3_882_793, 0, (361,)),
    "catsdogs_simple": (3_076_165, 3_076_165, 0, (1,)),
    "catsdogs_winning": (415_969, 415_201, 768, (1,)),
    "cifar10_cnn": (1_345_066, 1_343_146, 1_920, (10,)),
    "inceptionv3": (23_851_784, 23_817_352, 34_432, (1000,)),
    "lenet5": (61_706, 61_706, 0, (10,)),
    "mnist_cnn": (203_434, 203_434, 0, (10,)),
    "mnist_mlp": (932_362, 932_362, 0, (10,)),
    "mobilenetv2": (3_538_984, 3_504_872, 34_112, (1000,)),
    "resnet50": (25_636_712, 25_583_592, 53_120, (1000,)),
    "vgg16": (138_357_544, 138_357_544, 0, (1000,)),
}


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_example_counts(path):
    plan = specdsl.check(path)
    assert plan.name in EXPECTED, f"add the Keras counts of {path.name} to EXPECTED"
    assert (plan.params, plan.trainable, plan.non_trainable, plan.output_shape) == EXPECTED[plan.name]


def test_every_expected_example_exists():
    assert {specdsl.load(p).name for p in example_files()} >= set(EXPECTED)


def test_cifar10_layer_table_matches_the_lecture():
    plan = specdsl.check(example_files()[0].parent / "cifar10_cnn.yaml")
    got = [(n.shape, n.params) for n in plan.layers]
    lecture = [  # the deck's model.summary(): output shape and Param # of each row
        ((32, 32, 32), 896),
        ((32, 32, 32), 128),
        ((32, 32, 32), 9248),
        ((32, 32, 32), 128),
        ((16, 16, 32), 0),
        ((16, 16, 32), 0),
        ((16, 16, 64), 18496),
        ((16, 16, 64), 256),
        ((16, 16, 64), 36928),
        ((16, 16, 64), 256),
        ((8, 8, 64), 0),
        ((8, 8, 64), 0),
        ((8, 8, 128), 73856),
        ((8, 8, 128), 512),
        ((8, 8, 128), 147584),
        ((8, 8, 128), 512),
        ((4, 4, 128), 0),
        ((4, 4, 128), 0),
        ((2048,), 0),
        ((512,), 1049088),
        ((512,), 2048),
        ((512,), 0),
        ((10,), 5130),
    ]
    assert got == lecture


def test_resnet50_names_and_stage_shapes():
    plan = specdsl.check(example_files()[0].parent / "resnet50.yaml")
    adds = [n for n in plan.layers if n.kind == "add"]
    assert len(adds) == 16  # 3 + 4 + 6 + 3 bottleneck blocks
    assert [adds[i].shape for i in (0, 3, 7, 13)] == [
        (56, 56, 256),
        (28, 28, 512),
        (14, 14, 1024),
        (7, 7, 2048),
    ]
    assert plan["conv1_conv"].shape == (112, 112, 64)


def test_inception_mixed_outputs():
    plan = specdsl.check(example_files()[0].parent / "inceptionv3.yaml")
    concat_shapes = {
        n.name: n.shape for n in plan.layers if n.kind == "concat" and n.name.startswith("concatenate")
    }
    mixed = [n.shape for n in plan.layers if n.kind == "concat" and n.inputs and len(n.inputs) >= 3]
    assert mixed == [
        (35, 35, 256),
        (35, 35, 288),
        (35, 35, 288),
        (17, 17, 768),
        (17, 17, 768),
        (17, 17, 768),
        (17, 17, 768),
        (17, 17, 768),
        (8, 8, 1280),
        (8, 8, 2048),
        (8, 8, 2048),
    ]
    assert concat_shapes
