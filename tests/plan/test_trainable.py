"""`trainable: false` on a layer, a block use and a repeat: the plan counts a frozen layer's weights as
non-trainable exactly as Keras' model does, the summary marks it, both backends freeze it (torch: no gradient,
its batch norms in eval mode whatever train() says), and both compute the same function with it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import specdsl

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]

RESNET = """\
name: tiny_resnet
input: [8, 8, 3]
blocks:
  res:
    params: {f: 4}
    layers:
      - conv2d: {filters: $f, kernel: 3, padding: same, use_bias: false, name: c1}
      - batchnorm: {name: bn}
      - relu: {name: act}
      - conv2d: {filters: $f, kernel: 3, padding: same, name: c2}
      - add: {inputs: [input, c2], name: sum}
layers:
  - conv2d: {filters: 4, kernel: 3, padding: same, trainable: false, name: stem}
  - batchnorm: {trainable: false, name: stem_bn}
  - res: {trainable: false, name: r1}
  - res: {name: r2}
  - repeat: 2
    name: tail
    trainable: false
    layers:
      - conv2d: {filters: 4, kernel: 3, padding: same, name: c}
      - batchnorm: {name: bn}
  - flatten
  - dense: {units: 2, activation: softmax, name: out}
"""

SUMMARY = """\
Model: "tiny_resnet"
---------------------------------------------------------------------------------------------------
Layer (type)                            Output Shape     Param #   FLOPs  Activations  Connected to
===================================================================================================
input (InputLayer)                      (None, 8, 8, 3)        0       0        768 B  -
stem (Conv2D, frozen)                   (None, 8, 8, 4)      112  14,080      1.0 KiB  input
stem_bn (BatchNormalization, frozen)    (None, 8, 8, 4)       16     512      1.0 KiB  stem
r1_c1 (Conv2D, frozen)                  (None, 8, 8, 4)      144  18,432      1.0 KiB  stem_bn
r1_bn (BatchNormalization, frozen)      (None, 8, 8, 4)       16     512      1.0 KiB  r1_c1
r1_act (Activation)                     (None, 8, 8, 4)        0     256      1.0 KiB  r1_bn
r1_c2 (Conv2D, frozen)                  (None, 8, 8, 4)      148  18,688      1.0 KiB  r1_act
r1_sum (Add)                            (None, 8, 8, 4)        0     256      1.0 KiB  stem_bn, r1_c2
r2_c1 (Conv2D)                          (None, 8, 8, 4)      144  18,432      1.0 KiB  r1_sum
r2_bn (BatchNormalization)              (None, 8, 8, 4)       16     512      1.0 KiB  r2_c1
r2_act (Activation)                     (None, 8, 8, 4)        0     256      1.0 KiB  r2_bn
r2_c2 (Conv2D)                          (None, 8, 8, 4)      148  18,688      1.0 KiB  r2_act
r2_sum (Add)                            (None, 8, 8, 4)        0     256      1.0 KiB  r1_sum, r2_c2
tail_c_0 (Conv2D, frozen)               (None, 8, 8, 4)      148  18,688      1.0 KiB  r2_sum
tail_bn_0 (BatchNormalization, frozen)  (None, 8, 8, 4)       16     512      1.0 KiB  tail_c_0
tail_c_1 (Conv2D, frozen)               (None, 8, 8, 4)      148  18,688      1.0 KiB  tail_bn_0
tail_bn_1 (BatchNormalization, frozen)  (None, 8, 8, 4)       16     512      1.0 KiB  tail_c_1
flatten (Flatten)                       (None, 256)            0       0      1.0 KiB  tail_bn_1
out (Dense)                             (None, 2)            514   1,028          8 B  flatten
===================================================================================================
Total params: 1,586 (6.2 KiB)
Trainable params: 814 (3.2 KiB)
Non-trainable params: 772 (3.0 KiB)
FLOPs per example: 130,308 (130.31 KFLOPs; a multiply-add counts 2)
Activation memory per example: 17.8 KiB (float32, forward, every layer's output)
"""


def _keras_counts(model) -> tuple[int, int]:
    def size(ws):
        return sum(math.prod(int(d) for d in w.shape) for w in ws)

    return size(model.trainable_weights), size(model.non_trainable_weights)


def _vgg16_frozen() -> str:
    """examples/vgg16.yaml at 32x32, its five conv blocks frozen (the classic feature extractor)."""
    text = (ROOT / "examples" / "vgg16.yaml").read_text()
    text = text.replace("input: [224, 224, 3]", "input: [32, 32, 3]")
    for block in ("{filters: 64}", "{filters: 128}"):
        text = text.replace(f"vgg_block: {block}", f"vgg_block: {block[:-1]}, trainable: false}}")
    for block in ("{filters: 256, convs: 3}", "{filters: 512, convs: 3}"):
        text = text.replace(f"vgg_block: {block}", f"vgg_block: {block[:-1]}, trainable: false}}")
    return text


def test_frozen_vgg16_convs_count_as_keras_counts():
    plan = specdsl.check(_vgg16_frozen())
    # VGG16's convolutions (keras.applications' include_top=False: 14,714,688) frozen; its head trains
    assert (plan.trainable, plan.non_trainable) == (22_979_560, 14_714_688)
    assert _keras_counts(specdsl.build(plan, "keras")) == (22_979_560, 14_714_688)
    model = specdsl.build(plan, "torch")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 22_979_560
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == 14_714_688


def test_frozen_conv_batchnorm_block_and_repeat_count_as_keras_counts():
    plan = specdsl.check(RESNET)
    counts = {n.name: (n.trainable, n.non_trainable) for n in plan.layers if n.params}
    assert counts == {
        "stem": (0, 112),  # frozen conv: kernel and bias
        "stem_bn": (0, 16),  # frozen batch norm: gamma and beta with the moving statistics
        "r1_c1": (0, 144),
        "r1_bn": (0, 16),
        "r1_c2": (0, 148),
        "r2_c1": (144, 0),
        "r2_bn": (8, 8),  # trains: its moving statistics are non-trainable anyway
        "r2_c2": (148, 0),
        "tail_c_0": (0, 148),
        "tail_bn_0": (0, 16),
        "tail_c_1": (0, 148),
        "tail_bn_1": (0, 16),
        "out": (514, 0),
    }
    assert (plan.trainable, plan.non_trainable) == (814, 772)
    keras_model = specdsl.build(plan, "keras")
    assert _keras_counts(keras_model) == (814, 772)
    assert [layer.name for layer in keras_model.layers if not layer.trainable] == [
        "stem",
        "stem_bn",
        "r1_c1",
        "r1_bn",
        "r1_act",
        "r1_c2",
        "r1_sum",
        "tail_c_0",
        "tail_bn_0",
        "tail_c_1",
        "tail_bn_1",
    ]


def test_trainable_true_on_a_block_use_leaves_its_layers_as_they_say():
    text = RESNET.replace("res: {name: r2}", "res: {name: r2, trainable: true}")
    assert specdsl.check(text).trainable == 814


def test_the_summary_marks_frozen_layers_with_weights():
    """ "frozen" beside a frozen layer's class, where it has weights to freeze (not the activation, the add)."""
    assert specdsl.summary_text(specdsl.check(RESNET)) == SUMMARY


def test_torch_freezes_parameters_and_keeps_frozen_batch_norms_in_eval_mode():
    plan = specdsl.check(RESNET)
    model = specdsl.build(plan, "torch")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 814
    model.train()
    modes = {name: m.training for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert modes == {
        "stem_bn": False,
        "r1_bn": False,
        "r2_bn": True,
        "tail_bn_0": False,
        "tail_bn_1": False,
    }
    model.freeze(["stem_bn"], frozen=False)  # what a stage's unfreeze does
    assert model.stem_bn.training and model.stem_bn.weight.requires_grad
    model.eval()
    assert not model.r2_bn.training


def test_torch_and_keras_agree_with_frozen_batch_norms_in_training_mode():
    """A frozen batch norm normalizes by its moving statistics even in a training step, in both backends."""
    from specdsl.backends._transfer import torch_to_keras

    plan = specdsl.check(RESNET)
    torch_model = specdsl.build(plan, "torch").to(torch.float64)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in [*torch_model.named_parameters(), *torch_model.named_buffers()]:
            if t.is_floating_point():
                low = 0.5 if name.endswith(("running_var", "weight")) and t.dim() == 1 else -0.5
                t.copy_(low + torch.rand(t.shape, generator=gen, dtype=t.dtype))
    keras_model = torch_to_keras(plan, torch_model, specdsl.build(plan, "keras", dtype="float64"))
    x = np.random.default_rng(1).standard_normal((4, 8, 8, 3))
    torch_model.train()
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()
    ours = keras.ops.convert_to_numpy(keras_model(x, training=True))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    # the only batch norm that trains uses the batch's statistics: its moving mean moved in torch
    assert not torch.equal(
        torch_model.r2_bn.running_mean,
        torch.from_numpy(keras.ops.convert_to_numpy(keras_model.get_layer("r2_bn").moving_mean)),
    )


def test_the_generated_sources_freeze_as_the_built_models_do():
    plan = specdsl.check(RESNET)
    namespace: dict = {}
    code = specdsl.backends.get_backend("torch").source(plan)
    exec(code, namespace)
    cls = namespace[re.findall(r"^class (\w+)\(nn.Module\):", code, re.M)[-1]]
    model = cls().train()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 814
    assert not model.stem_bn.training and model.r2_bn.training
    namespace = {}
    exec(specdsl.backends.get_backend("keras").source(plan), namespace)
    assert _keras_counts(namespace["build_model"]()) == (814, 772)


@pytest.mark.parametrize(
    "layers,message",
    [
        (
            "  - dense: {units: 2, trainable: 3}",
            "<string>:4:34: layers[0] (dense): `trainable`: input should be a valid boolean (got 3).",
        ),
        (
            "  - repeat: 1\n    trainable: maybe\n    layers: [flatten]",
            "<string>:5:16: layers[0]: `trainable` of a repeat takes true or false, but got 'maybe'. Write "
            "`trainable: false` to freeze every layer inside it.",
        ),
        (
            "  - b: {trainable: 0}",
            "<string>:4:20: layers[0]: `trainable` of a block use takes true or false, but got 0. Write "
            "`trainable: false` to freeze every layer inside it.",
        ),
    ],
)
def test_a_trainable_that_is_no_boolean_is_a_located_error(layers, message):
    head = "name: x\ninput: [4]\nlayers:\n"
    blocks = "blocks:\n  b: {layers: [flatten]}\n" if "- b:" in layers else ""
    with pytest.raises(specdsl.SpecError) as e:
        specdsl.check(head + layers + "\n" + blocks)
    assert str(e.value) == message
