"""Both backends compute the same function: the proof that a spec means one model.

For every layer case and every example: build the torch model, give it random weights (BatchNorm moving
statistics included, so that they matter), carry them into the Keras model with ``torch_to_keras``, and
compare every node's output on the same random input in inference mode (torch's NCHW transposed to NHWC).
This covers
flatten order before dense layers, asymmetric 'same' padding, transposed-conv cropping, average pooling that
leaves padding out, and every weight layout.

Computed in float64 (both models built in float64), compared with rtol=1e-4 and atol=1e-5 relative to each
node's scale (atol=1e-5 * max(1, max |output|)). Why both: in float32 the frameworks' different summation
orders leave errors of ~1e-5 on near-zero values after a few large layers (AlexNet's third conv), which blurs
noise and real disagreement; in float64 convolutions agree to ~1e-15, but Keras 3.15's torch backend still
computes ``matmul`` (Dense) in float32 (its ``result_type`` demotes 64-bit dtypes to 32-bit, as JAX does by
default), so a Dense output of magnitude ~10 carries ~1e-6 of rounding. A real disagreement (a wrong layout,
padding or order) is O(1) relative to the node's scale. Weights are He-scaled, so that activations neither
vanish nor blow up through deep stacks.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from layer_cases import all_cases
from test_keras import EXTRA

import specdsl
from specdsl.backends import _keras as K
from specdsl.backends._transfer import keras_to_torch, torch_to_keras
from specdsl.errors import BackendError

torch = pytest.importorskip("torch")
if importlib.util.find_spec("specdsl.backends._torch") is None:
    pytest.skip("the torch backend (specdsl/backends/_torch) does not exist yet", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BIG = 5_000_000  # parameters above which an example is marked slow
HEAVY = 1_000_000_000  # FLOPs per example above which an example is marked slow
RTOL, ATOL = 1e-4, 1e-5
DTYPE = "float64"

CASES = [pytest.param(spec, id=tid) for tid, _, spec in all_cases()]


EXTRAS = [pytest.param(spec, id=name) for name, spec in EXTRA.items()]


def _examples():
    params = []
    for path in EXAMPLES:
        plan = specdsl.check(path)
        marks = [pytest.mark.slow] if plan.params > BIG or plan.flops > HEAVY else []
        params.append(pytest.param(path, marks=marks, id=path.stem))
    return params


def _randomize(model, seed: int = 0) -> None:
    """Random torch weights: kernels He-scaled, biases and moving means near 0, gammas, variances near 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point():
                continue  # num_batches_tracked
            if name.endswith(("bias", "running_mean")):
                value = 0.2 * torch.randn(t.shape, generator=gen, dtype=t.dtype)
            elif name.endswith("running_var") or t.dim() == 1:
                value = 0.5 + torch.rand(t.shape, generator=gen, dtype=t.dtype)
            else:
                fan_in = t.numel() // t.shape[0]
                value = torch.randn(t.shape, generator=gen, dtype=t.dtype) * (2.0 / fan_in) ** 0.5
            t.copy_(value)


def _to_torch(x: np.ndarray) -> np.ndarray:
    """NHWC / NLC -> NCHW / NCL; vectors stay."""
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


def _from_torch(y: np.ndarray) -> np.ndarray:
    return np.moveaxis(y, 1, -1) if y.ndim > 2 else y


def _keras_node_outputs(plan, model, x) -> dict[str, np.ndarray]:
    names = [node.name for node in plan.nodes]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    return {
        name: keras.ops.convert_to_numpy(v) for name, v in zip(names, probe(x, training=False), strict=True)
    }


def _torch_node_outputs(plan, model, x) -> dict[str, np.ndarray]:
    with torch.no_grad():
        values = model.node_outputs(torch.from_numpy(np.ascontiguousarray(_to_torch(x))))
    return {name: _from_torch(v.numpy()) for name, v in values.items()}


def _assert_agree(plan, torch_model, keras_model, seed: int = 1) -> None:
    """Every node's output agrees; a failure names the first node that does not."""
    x = np.random.default_rng(seed).standard_normal((1, *plan.input_shape)).astype(DTYPE)
    theirs = _torch_node_outputs(plan, torch_model, x)
    ours = _keras_node_outputs(plan, keras_model, x)
    for node in plan.nodes:
        assert ours[node.name].shape == (1, *node.shape), node.name
        _assert_close(
            ours[node.name],
            theirs[node.name],
            f"Keras and torch disagree first at `{node.name}` ({node.kind}, {node.path})",
        )
    # and the models' own forward, outputs as each model returns them
    with torch.no_grad():
        out = torch_model(torch.from_numpy(np.ascontiguousarray(_to_torch(x))))
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    keras_outs = keras_model(x, training=False)
    keras_outs = [keras_outs] if len(outs) == 1 else list(keras_outs)
    for mine, theirs in zip(keras_outs, outs, strict=True):
        _assert_close(keras.ops.convert_to_numpy(mine), _from_torch(theirs.numpy()), "the models' outputs")


def _assert_close(ours: np.ndarray, theirs: np.ndarray, message: str) -> None:
    scale = max(1.0, float(np.max(np.abs(theirs), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * scale, err_msg=message)


def _torch_to_keras_agree(plan) -> None:
    torch_model = specdsl.build(plan, "torch").to(torch.float64).eval()
    _randomize(torch_model)
    keras_model = torch_to_keras(plan, torch_model, specdsl.build(plan, "keras", dtype=DTYPE))
    _assert_agree(plan, torch_model, keras_model)


@pytest.mark.parametrize("spec", CASES + EXTRAS)
def test_layer_case_agrees(spec):
    _torch_to_keras_agree(specdsl.check(spec))


# Keras' torch backend computes BatchNormalization in float32 too (result_type demotes float64, as for Dense):
# each batch norm adds ~1e-7 of relative rounding, and MobileNetV2's 52 of them (with depthwise convolutions
# between) leave a few values up to 8.2e-5 of their node's scale apart (its outputs agree to 7e-7). An error of
# layout or padding is still O(1) at that tolerance.
EXAMPLE_ATOL = {"mobilenetv2": 2e-4}


@pytest.mark.parametrize("path", _examples())
def test_example_agrees(path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ATOL", EXAMPLE_ATOL.get(Path(path).stem, ATOL))
    _torch_to_keras_agree(specdsl.check(path))


WEIGHTED = [p for p in CASES + EXTRAS if specdsl.check(p.values[0]).params]


@pytest.mark.parametrize("spec", WEIGHTED)
def test_keras_weights_carry_into_torch(spec):
    plan = specdsl.check(spec)
    keras_model = K.build(plan, dtype=DTYPE)
    rng = np.random.default_rng(0)
    keras_model.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in keras_model.get_weights()])
    torch_model = keras_to_torch(plan, keras_model, specdsl.build(plan, "torch").to(torch.float64)).eval()
    _assert_agree(plan, torch_model, keras_model)


def test_torch_to_keras_round_trip_is_exact():
    plan = specdsl.check(next(spec for tid, _, spec in all_cases() if tid == "separable_conv2d-1"))
    torch_model = specdsl.build(plan, "torch")
    _randomize(torch_model)
    back = keras_to_torch(
        plan, torch_to_keras(plan, torch_model, K.build(plan)), specdsl.build(plan, "torch")
    )
    for (name, a), (_, b) in zip(torch_model.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_torch_model_of_another_plan_is_a_backend_error():
    plan = specdsl.check({"input": [4], "layers": [{"dense": {"units": 2, "name": "fc"}}]})
    other = specdsl.check({"input": [4], "layers": [{"dense": {"units": 2, "name": "head"}}]})
    with pytest.raises(
        BackendError,
        match=r"cannot carry the weights of `fc` between torch and Keras: the torch "
        r"model has no `fc.weight`",
    ):
        torch_to_keras(plan, specdsl.build(other, "torch"), K.build(plan))
