"""Property: for random valid specs (sequential and graph, random strides, paddings, dilations, kinds), the plan's
shapes and counts equal what torch and Keras build, and both compute the same function once torch's weights are
carried into Keras. Building Keras models is slow, so CI runs a few dozen examples; the long profile runs more.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graph_spec, sequential_spec

import specdsl
from specdsl import BackendError, ShapeError

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from specdsl.backends._transfer import torch_to_keras  # noqa: E402


def _channels_last(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().numpy()
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


def _check(spec: dict, seed: int) -> None:
    try:
        plan = specdsl.check(spec)
    except ShapeError:
        return
    torch_model = specdsl.build(plan, "torch", dtype="float64").eval()
    assert sum(p.numel() for p in torch_model.parameters()) == plan.trainable
    try:
        keras_model = specdsl.build(plan, "keras")
    except BackendError as e:  # e.g. strides > 1 with dilation > 1, which Keras refuses
        assert "dilation" in e.message
        return
    assert keras_model.count_params() == plan.params
    assert sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights) == plan.trainable

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in torch_model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
        for name, b in torch_model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype) * 0.1)
    torch_to_keras(plan, torch_model, keras_model)

    x = torch.randn(2, *(plan.input_shape[-1:] + plan.input_shape[:-1]), generator=gen, dtype=torch.float64)
    with torch.no_grad():
        nodes = torch_model.node_outputs(x)
    for node in plan.nodes:
        got = nodes[node.name]
        assert (
            tuple(got.shape[1:]) == (node.shape[-1], *node.shape[:-1]) if len(node.shape) > 1 else node.shape
        ), node.name
    ours = _channels_last(nodes[plan.outputs[0]])
    theirs = keras.ops.convert_to_numpy(
        keras_model(np.moveaxis(x.numpy(), 1, -1).astype("float32"), training=False)
    )
    scale = max(1.0, float(np.abs(ours).max()))
    np.testing.assert_allclose(theirs, ours, rtol=1e-3, atol=1e-4 * scale)


# Each example builds a torch and a Keras model: the default profile's count is cut to 25 here, and a long run
# (`--hypothesis-profile=long`) keeps its own.
_PROFILE_EXAMPLES = settings.default.max_examples
FEW = settings(
    max_examples=25 if _PROFILE_EXAMPLES <= 150 else _PROFILE_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@FEW
@given(sequential_spec(), st.integers(0, 2**16))
def test_random_sequential_specs_agree_across_backends(spec, seed):
    _check(spec, seed)


@FEW
@given(graph_spec(), st.integers(0, 2**16))
def test_random_graph_specs_agree_across_backends(spec, seed):
    _check(spec, seed)
