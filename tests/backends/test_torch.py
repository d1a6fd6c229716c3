"""The torch backend against the plan: every layer case and every example, node by node.

Each node's output shape (on a real input, channels moved last) equals the plan's; parameters equal the plan's
trainable count and BatchNorm's running statistics its non-trainable count, node by node; the generated source
is the same model (same state_dict keys and shapes, equal outputs, scriptable); exported files run back to the
same outputs. Keras' semantics where torch differs are checked on exact values against references written here.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from layer_cases import CASES as CASE_SPECS
from layer_cases import EXPECTED, all_cases

import specdsl
from specdsl.backends import get_backend
from specdsl.errors import BackendError, BackendMissingError
from specdsl.spec import INITIALIZERS, LAYERS

torch = pytest.importorskip("torch")

from specdsl.backends import _torch as T
from specdsl.backends._torch import _export
from specdsl.backends._torch._builders import build_node

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BIG = 5_000_000  # parameters above which an example is marked slow

CASES = [
    pytest.param(spec, EXPECTED[kind][int(tid.rsplit("-", 1)[1])], id=tid) for tid, kind, spec in all_cases()
]


def _example_params():
    params = []
    for path in EXAMPLES:
        marks = [pytest.mark.slow] if specdsl.check(path).params > BIG else []
        params.append(pytest.param(path, marks=marks, id=path.stem))
    return params


def _case(tid: str) -> dict:
    kind, i = tid.rsplit("-", 1)
    return CASE_SPECS[kind][int(i)]


def _channels_last(t) -> tuple[int, ...]:
    """A torch output's shape without the batch axis, channels moved last as the plan writes it."""
    shape = tuple(t.shape[1:])
    return (*shape[1:], shape[0]) if len(shape) > 1 else shape


def _statistics(module) -> int:
    """Values of BatchNorm's running mean and variance: what Keras counts as non-trainable."""
    return sum(
        b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var"))
    )


def _assert_matches_plan(plan, model) -> None:
    x = T.example_input(plan, batch=1)
    with torch.no_grad():
        values = model.eval().node_outputs(x)
    assert list(values) == [node.name for node in plan.nodes]
    for node in plan.nodes:
        assert _channels_last(values[node.name]) == node.shape, node.name
    for node in plan.layers:
        module = getattr(model, model.names[node.name])
        assert sum(p.numel() for p in module.parameters()) == node.trainable, node.name
        assert _statistics(module) == node.non_trainable, node.name
    assert sum(p.numel() for p in model.parameters()) == plan.trainable
    assert _statistics(model) == plan.non_trainable


def _load_source(text: str, folder: Path):
    """Import generated source from a file (TorchScript reads a class's source from its file)."""
    path = folder / "generated_model.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"generated_{abs(hash(text))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_source_is_the_model(plan, folder: Path, script: bool = False) -> None:
    model = T.build(plan).eval()
    generated = getattr(_load_source(T.source(plan), folder), T.class_name(plan))().eval()
    ours, theirs = model.state_dict(), generated.state_dict()
    assert list(theirs) == list(ours)
    assert [tuple(t.shape) for t in theirs.values()] == [tuple(t.shape) for t in ours.values()]
    generated.load_state_dict(ours)
    x = T.example_input(plan, batch=1)
    with torch.no_grad():
        expected, got = model(x), generated(x)
    assert torch.equal(got, expected)
    if script:
        scripted = torch.jit.script(generated)
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# The registry


def test_every_layer_kind_has_a_torch_builder():
    assert sorted(T.BUILDERS) == sorted(LAYERS)


def test_registering_a_builder_twice_is_an_error():
    with pytest.raises(ValueError, match=r"^a torch builder for `conv2d` is already registered$"):
        T.register_builder("conv2d")(lambda node: None)


def test_a_builder_for_an_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match=r"^`conv3d` is not a registered layer kind$"):
        T.register_builder("conv3d")(lambda node: None)


def test_a_kind_without_builder_is_a_backend_error(monkeypatch):
    monkeypatch.delitem(T.BUILDERS, "dense")
    plan = specdsl.check({"input": [4], "layers": ["flatten", {"dense": 3}]})
    with pytest.raises(BackendError) as info:
        T.build(plan)
    assert info.value.message == "the torch backend has no builder for layer kind `dense`."
    assert info.value.path == "layers[1]"
    assert info.value.hint.startswith(
        "Kinds it builds: activation, add, avgpool1d, avgpool2d, batchnorm, bias,"
    )


def test_get_backend_gives_this_package_and_specdsl_build_uses_it():
    assert get_backend("torch") is T
    model = specdsl.build(ROOT / "examples" / "lenet5.yaml")
    assert isinstance(model, T.SpecModel)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_importing_specdsl_and_checking_a_spec_does_not_import_torch():
    code = (
        "import sys, specdsl, specdsl.backends; specdsl.check('examples/lenet5.yaml'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"


# ---------------------------------------------------------------------------------------------------------------
# Every case and every example against the plan


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_layer_case_matches_the_plan(spec, expected):
    plan = specdsl.check(spec)
    model = T.build(plan)
    _assert_matches_plan(plan, model)
    shape, trainable, non_trainable = expected  # the hand-worked table, not only the plan
    last = plan.layers[-1]
    module = getattr(model, model.names[last.name])
    assert last.shape == shape
    assert sum(p.numel() for p in module.parameters()) == trainable
    assert _statistics(module) == non_trainable


@pytest.mark.parametrize("path", _example_params())
def test_example_matches_the_plan(path):
    plan = specdsl.check(path)
    _assert_matches_plan(plan, T.build(plan))


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_source_builds_the_same_model_and_compiles_with_torchscript(spec, expected, tmp_path):
    """Every case's generated source is the model, and scripts: every helper module the source may copy in,
    with every option a case gives it, and every kind's forward."""
    _assert_source_is_the_model(specdsl.check(spec), tmp_path, script=True)


@pytest.mark.parametrize("path", _example_params())
def test_example_source_builds_the_same_model(path, tmp_path):
    _assert_source_is_the_model(specdsl.check(path), tmp_path)


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_keras_weight_layouts_hold_every_parameter_and_invert(spec, expected):
    """What ``specdsl.backends._transfer`` relies on: per node, the Keras weights hold exactly the node's
    parameters (trainable and not), and each layout's to_keras/from_keras are inverses."""
    plan = specdsl.check(spec)
    state = T.build(plan).state_dict()
    names = T.attribute_names(plan)
    for node in plan.layers:
        entries = build_node(node).keras
        arrays = [state[f"{names[node.name]}.{key}"].numpy() for key, _ in entries]
        assert sum(a.size for a in arrays) == node.params, node.name
        for (key, layout), a in zip(entries, arrays):
            assert np.array_equal(layout.from_keras(layout.to_keras(a)), a), key


def test_keras_layouts_of_kernels():
    spec = {
        "input": [6, 6, 4],
        "layers": [
            {"conv2d": {"filters": 5, "kernel": [3, 2], "name": "conv"}},
            {"depthwise_conv2d": {"kernel": 3, "depth_multiplier": 2, "name": "depthwise"}},
            {"separable_conv2d": {"filters": 3, "kernel": 1, "name": "separable"}},
            {"conv2d_transpose": {"filters": 2, "kernel": 2, "name": "transpose"}},
            {"bias": {"per": "position", "name": "position"}},
            "flatten",
            {"dense": {"units": 7, "name": "dense"}},
        ],
    }
    plan = specdsl.check(spec)
    state = T.build(plan).state_dict()
    keras_shapes = {
        node.name: [
            tuple(layout.to_keras(state[f"{node.name}.{key}"].numpy()).shape)
            for key, layout in build_node(node).keras
        ]
        for node in plan.layers
    }
    assert keras_shapes == {
        "conv": [(3, 2, 4, 5), (5,)],
        "depthwise": [(3, 3, 5, 2), (10,)],
        "separable": [(1, 1, 10, 1), (1, 1, 10, 3), (3,)],
        "transpose": [(2, 2, 2, 3), (2,)],
        "position": [(3, 4, 2)],  # one bias per value of its (3, 4, 2) input
        "flatten": [],
        "dense": [(24, 7), (7,)],
    }
    # depthwise output channel c * m + j is Keras' kernel[..., c, j]
    w = state["depthwise.weight"].numpy()
    k = build_node(plan["depthwise"]).keras[0][1].to_keras(w)
    assert np.array_equal(k[:, :, 3, 1], w[3 * 2 + 1, 0])


# ---------------------------------------------------------------------------------------------------------------
# Keras semantics on exact values


def _run(spec: dict, x: np.ndarray, **options) -> np.ndarray:
    """Run a spec's torch model on one channels-last example x; the output channels-last."""
    model = T.build(specdsl.check(spec), **options).eval()
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0) if x.ndim > 1 else x))[None].float()
    with torch.no_grad():
        y = model(t)[0].numpy()
    return np.moveaxis(y, 0, -1) if y.ndim > 1 else y


def _set(model, **tensors) -> None:
    state = model.state_dict()
    with torch.no_grad():
        for key, value in tensors.items():
            state[key].copy_(torch.as_tensor(value, dtype=state[key].dtype))


def test_same_padding_puts_the_odd_pixel_after():
    x = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    plan = specdsl.check(
        {"input": [4, 4, 1], "layers": [{"conv2d": {"filters": 1, "kernel": 2, "padding": "same"}}]}
    )
    model = T.build(plan).eval()
    _set(model, **{"conv2d.weight": np.ones((1, 1, 2, 2)), "conv2d.bias": np.zeros(1)})
    with torch.no_grad():
        y = model(torch.from_numpy(x).permute(2, 0, 1)[None])[0, 0].numpy()
    padded = np.pad(x[..., 0], ((0, 1), (0, 1)))  # Keras: total padding 1, all of it after
    expected = padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]
    assert np.array_equal(y, expected)


def test_explicit_padding_amounts_are_top_bottom_left_right():
    spec = {
        "input": [2, 2, 1],
        "layers": [{"conv2d": {"filters": 1, "kernel": 1, "padding": [[1, 0], [0, 2]]}}],
    }
    plan = specdsl.check(spec)
    model = T.build(plan).eval()
    _set(model, **{"conv2d.weight": np.ones((1, 1, 1, 1)), "conv2d.bias": np.zeros(1)})
    with torch.no_grad():
        y = model(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))[0, 0].numpy()
    assert y.tolist() == [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0]]


def _pool_reference(x: np.ndarray, k: int, s: int, reduce) -> np.ndarray:
    """Keras' 'same' pooling over (H, W): windows start at i * s - before and see only real values."""
    out = []
    for axis_n in x.shape[:2]:
        n_out = -(-axis_n // s)
        total = max((n_out - 1) * s + k - axis_n, 0)
        out.append([(max(i * s - total // 2, 0), i * s - total // 2 + k) for i in range(n_out)])
    return np.array([[reduce(x[r0:r1, c0:c1]) for c0, c1 in out[1]] for r0, r1 in out[0]])


@pytest.mark.parametrize(("kind", "reduce"), [("avgpool2d", np.mean), ("maxpool2d", np.max)])
@pytest.mark.parametrize(
    ("size", "k", "s"), [((9, 10), 3, 2), ((5, 7), 2, 2), ((6, 6), 4, 1), ((7, 5), 3, 1)]
)
def test_same_pooling_sees_only_real_values(kind, reduce, size, k, s):
    x = (
        np.random.default_rng(0).standard_normal((*size, 1)).astype(np.float32) - 3
    )  # all negative: -inf padding shows
    spec = {"input": [*size, 1], "layers": [{kind: {"pool": k, "strides": s, "padding": "same"}}]}
    np.testing.assert_allclose(_run(spec, x)[..., 0], _pool_reference(x[..., 0], k, s, reduce), rtol=1e-6)


@pytest.mark.parametrize(("kind", "reduce"), [("avgpool1d", np.mean), ("maxpool1d", np.max)])
def test_same_pooling_1d_sees_only_real_values(kind, reduce):
    x = np.random.default_rng(1).standard_normal((11, 2)).astype(np.float32) - 3
    spec = {"input": [11, 2], "layers": [{kind: {"pool": 2, "strides": 2, "padding": "same"}}]}
    expected = np.stack([reduce(x[i : i + 2], axis=0) for i in range(0, 11, 2)])  # the odd pad is after
    np.testing.assert_allclose(_run(spec, x), expected, rtol=1e-6)


def test_flatten_is_in_channels_last_order():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert np.array_equal(_run({"input": [2, 3, 4], "layers": ["flatten"]}, x), x.reshape(-1))


def test_reshape_target_is_channels_last():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    assert np.array_equal(_run({"input": [4, 6], "layers": [{"reshape": [2, -1, 4]}]}, x), x.reshape(2, 3, 4))


@pytest.mark.parametrize(
    ("axis", "shape"), [(-1, (4, 6, 4)), (0, (8, 6, 2)), (1, (4, 12, 2)), (-3, (8, 6, 2))]
)
def test_concat_axis_maps_to_torch_dims(axis, shape):
    spec = {
        "input": [4, 6, 2],
        "layers": [
            {"rescaling": {"scale": 2.0, "name": "a"}},
            {"rescaling": {"scale": -1.0, "inputs": "input", "name": "b"}},
            {"concat": {"inputs": ["a", "b"], "axis": axis}},
        ],
    }
    x = np.random.default_rng(0).standard_normal((4, 6, 2)).astype(np.float32)
    y = _run(spec, x)
    assert y.shape == shape == specdsl.check(spec).output_shape
    assert np.array_equal(y, np.concatenate([2 * x, -x], axis=axis))


def test_dense_on_a_sequence_acts_on_the_channels():
    spec = {"input": [4, 6], "layers": [{"dense": {"units": 3, "name": "d"}}]}
    model = T.build(specdsl.check(spec)).eval()
    x = torch.randn(1, 6, 4)  # (N, C, L)
    with torch.no_grad():
        y = model(x)
    expected = x.transpose(1, 2) @ model.d.weight.T + model.d.bias  # per position, over the 6 channels
    torch.testing.assert_close(y, expected.transpose(1, 2))


def test_softmax_is_over_the_channels():
    plan = specdsl.check({"input": [3, 4, 5], "layers": [{"activation": "softmax"}]})
    with torch.no_grad():
        y = T.build(plan)(torch.randn(2, 5, 3, 4))
    torch.testing.assert_close(y.sum(dim=1), torch.ones(2, 3, 4))


def _gelu(v):
    return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))


ACTIVATION_VALUES = {
    "relu": lambda v: max(v, 0.0),
    "relu6": lambda v: min(max(v, 0.0), 6.0),
    "elu": lambda v: v if v > 0 else math.exp(v) - 1,
    "selu": lambda v: 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * (math.exp(v) - 1)),
    "gelu": _gelu,  # exact, not the tanh approximation
    "leaky_relu": lambda v: v if v > 0 else 0.2 * v,  # Keras' default slope
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
    "hard_sigmoid": lambda v: min(max(v + 3, 0.0), 6.0) / 6,
    "tanh": math.tanh,
    "softplus": lambda v: math.log1p(math.exp(v)),
    "swish": lambda v: v / (1 + math.exp(-v)),
    "silu": lambda v: v / (1 + math.exp(-v)),
    "linear": lambda v: v,
}


@pytest.mark.parametrize("function", sorted(ACTIVATION_VALUES))
def test_activation_values(function):
    x = np.array([-7.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 2.5, 7.0], dtype=np.float32)
    y = _run({"input": [9], "layers": [{"activation": function}]}, x)
    np.testing.assert_allclose(y, [ACTIVATION_VALUES[function](float(v)) for v in x], rtol=1e-5, atol=1e-6)


def test_leaky_relu_keeps_a_given_slope():
    y = _run(
        {"input": [2], "layers": [{"activation": {"function": "leaky_relu", "negative_slope": 0.1}}]},
        np.array([-2.0, 3.0]),
    )
    np.testing.assert_allclose(y, [-0.2, 3.0])


def test_rescaling_values():
    x = np.array([0.0, 255.0, 51.0], dtype=np.float32)
    y = _run({"input": [3], "layers": [{"rescaling": {"scale": 1 / 255, "offset": -0.5}}]}, x)
    np.testing.assert_allclose(y, [-0.5, 0.5, -0.3], rtol=1e-6)


def test_bias_shapes_per_position_and_per_channel():
    spec = {
        "input": [5, 4, 3],
        "layers": [{"bias": {"per": "position", "name": "p"}}, {"bias": {"per": "channel", "name": "c"}}],
    }
    model = T.build(specdsl.check(spec))
    assert model.p.bias.shape == (3, 5, 4)
    assert model.c.bias.shape == (3,)
    _set(model, **{"p.bias": torch.arange(60.0).reshape(3, 5, 4), "c.bias": [100.0, 200.0, 300.0]})
    with torch.no_grad():
        y = model(torch.zeros(1, 3, 5, 4))[0]
    assert y[2, 4, 3].item() == 59 + 300 and y[0, 0, 0].item() == 100


def test_batchnorm_momentum_and_epsilon_follow_keras():
    spec = {"input": [4, 4, 2], "layers": [{"batchnorm": {"momentum": 0.9, "epsilon": 0.01, "name": "bn"}}]}
    model = T.build(specdsl.check(spec))
    assert isinstance(model.bn, torch.nn.BatchNorm2d)
    assert (model.bn.momentum, model.bn.eps) == (0.1, 0.01)
    x = torch.randn(8, 2, 4, 4)
    model.train()(x)
    # Keras: moving = momentum * moving + (1 - momentum) * batch statistic
    torch.testing.assert_close(model.bn.running_mean, 0.1 * x.mean(dim=(0, 2, 3)))


@pytest.mark.parametrize(
    ("center", "scale", "keys"),
    [
        (True, True, ["weight", "bias"]),
        (False, True, ["weight"]),
        (True, False, ["bias"]),
        (False, False, []),
    ],
)
def test_batchnorm_center_and_scale_keep_only_beta_and_gamma(center, scale, keys):
    spec = {"input": [3, 5], "layers": [{"batchnorm": {"center": center, "scale": scale, "name": "bn"}}]}
    model = T.build(specdsl.check(spec))
    assert [name for name, _ in model.bn.named_parameters()] == keys
    x = torch.randn(4, 5, 3)
    with torch.no_grad():
        y = model.eval()(x)
    torch.testing.assert_close(y, x / math.sqrt(1 + 1e-3))  # fresh statistics: mean 0, variance 1


def test_layernorm_normalizes_over_the_channels_only():
    plan = specdsl.check({"input": [3, 4, 6], "layers": ["layernorm"]})
    x = torch.randn(2, 6, 3, 4)
    with torch.no_grad():
        y = T.build(plan)(x)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), [6], eps=1e-3).permute(0, 3, 1, 2)
    torch.testing.assert_close(y, expected)


def _keras_transpose_reference(x, kernel, s, padding, output_padding, d):
    """Keras' Conv2DTranspose (TensorFlow/JAX semantics) on one (H, W, C) example with a (kh, kw, out, in) kernel:
    dilate the input by the stride, pad it as Keras' JAX conversion does, correlate with the flipped kernel."""
    h, w, c = x.shape
    pads = []
    for i in range(2):
        k_eff = d * (kernel.shape[i] - 1) + 1
        op = output_padding and output_padding[i]
        if padding == "valid":
            pads.append((k_eff - 1, k_eff - 1 + (max(k_eff, s[i]) - k_eff if op is None else op)))
        else:
            pad_len = s[i] + k_eff - 2 if op is None else k_eff + k_eff % 2 - 2 + op
            left = min(pad_len // 2 + pad_len % 2, k_eff - 1)
            pads.append((left, pad_len - left))
    dilated = np.zeros(((h - 1) * s[0] + 1, (w - 1) * s[1] + 1, c))
    dilated[:: s[0], :: s[1]] = x
    padded = np.pad(
        dilated[max(-pads[0][0], 0) :, max(-pads[1][0], 0) :],
        ((max(pads[0][0], 0), max(pads[0][1], 0)), (max(pads[1][0], 0), max(pads[1][1], 0)), (0, 0)),
    )
    flipped = kernel[::-1, ::-1]
    k_eff = [d * (kernel.shape[i] - 1) + 1 for i in range(2)]
    out_h, out_w = padded.shape[0] - k_eff[0] + 1, padded.shape[1] - k_eff[1] + 1
    y = np.zeros((out_h, out_w, kernel.shape[2]))
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            window = padded[a * d : a * d + out_h, b * d : b * d + out_w]  # (out_h, out_w, in)
            y += window @ flipped[a, b].T
    return y


TRANSPOSE_CASES = [
    pytest.param(spec["input"], spec["layers"][0]["conv2d_transpose"], id=f"conv2d_transpose-{i}")
    for i, spec in enumerate(CASE_SPECS["conv2d_transpose"])
] + [
    pytest.param(
        [5, 6, 2], {"filters": 3, "kernel": 4, "strides": 1, "padding": "same"}, id="even-k-stride-1"
    ),
    pytest.param(
        [4, 5, 2], {"filters": 2, "kernel": 1, "strides": 2, "padding": "same"}, id="k-below-s-same"
    ),
    pytest.param([4, 5, 2], {"filters": 2, "kernel": 2, "strides": 3}, id="k-below-s-valid"),
    pytest.param([4, 4, 2], {"filters": 2, "kernel": 3, "strides": 2, "output_padding": 1}, id="valid-op"),
    pytest.param(
        [4, 4, 2],
        {"filters": 2, "kernel": 3, "strides": 2, "padding": "same", "output_padding": 1},
        id="same-op",
    ),
    pytest.param(
        [4, 4, 2],
        {"filters": 2, "kernel": 5, "strides": 3, "padding": "same", "output_padding": 0},
        id="same-op0",
    ),
    pytest.param(
        [4, 4, 2],
        {"filters": 2, "kernel": 4, "strides": 2, "padding": "same", "output_padding": 1},
        id="even-k-same-op",
    ),
    pytest.param(
        [4, 4, 2], {"filters": 2, "kernel": 4, "strides": 3, "output_padding": 2}, id="even-k-valid-op"
    ),
    pytest.param([5, 5, 2], {"filters": 2, "kernel": 3, "dilation": 2, "padding": "same"}, id="dilated-same"),
    pytest.param(
        [5, 5, 2], {"filters": 2, "kernel": 2, "strides": [2, 3], "padding": "same"}, id="uneven-strides"
    ),
]


@pytest.mark.parametrize(("shape", "options"), TRANSPOSE_CASES)
def test_transposed_conv_matches_keras_semantics(shape, options):
    spec = {"input": shape, "layers": [{"conv2d_transpose": {**options, "use_bias": False, "name": "t"}}]}
    plan = specdsl.check(spec)
    layer = plan["t"].layer
    x = np.random.default_rng(0).standard_normal(shape)
    torch_kernel = np.random.default_rng(1).standard_normal((shape[-1], layer.filters, *layer.kernel))
    model = T.build(plan).double().eval()
    _set(model, **{"t.weight": torch_kernel})
    with torch.no_grad():
        y = model(torch.from_numpy(np.moveaxis(x, -1, 0))[None])[0].permute(1, 2, 0).numpy()
    expected = _keras_transpose_reference(
        x,
        torch_kernel.transpose(2, 3, 1, 0),
        layer.strides,
        layer.padding,
        layer.output_padding,
        layer.dilation[0],
    )
    assert y.shape == expected.shape == plan["t"].shape
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# Initialization, options, names, outputs


def test_kernels_start_as_keras_glorot_uniform_and_biases_at_zero():
    spec = {
        "input": [8, 8, 6],
        "layers": [
            {"conv2d": {"filters": 16, "kernel": 3, "name": "c"}},
            {"depthwise_conv2d": {"kernel": 3, "depth_multiplier": 2, "name": "dw"}},
            "flatten",
            {"dense": {"units": 10, "name": "d"}},
        ],
    }
    model = T.build(specdsl.check(spec))
    for name, fan_in, fan_out in (("c", 9 * 6, 9 * 16), ("dw", 9 * 16, 9 * 2), ("d", 4 * 4 * 32, 10)):
        limit = math.sqrt(6 / (fan_in + fan_out))
        weight = getattr(model, name).weight
        assert weight.abs().max().item() <= limit
        assert weight.abs().max().item() > 0.8 * limit
        assert torch.count_nonzero(getattr(model, name).bias).item() == 0


def test_kernel_initializer_names_a_keras_initializer():
    spec = {
        "input": [2000],
        "layers": [{"dense": {"units": 500, "kernel_initializer": "HeNormal", "name": "d"}}],
    }
    weight = T.build(specdsl.check(spec)).d.weight
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 2000), rel=0.02)
    assert weight.abs().max().item() <= 2 * math.sqrt(2 / 2000) / 0.87962566103423978


def test_unknown_initializer_is_a_backend_error():
    plan = specdsl.check(
        {"input": [3], "layers": [{"dense": {"units": 2, "kernel_initializer": "glorot_uniforn"}}]}
    )
    with pytest.raises(BackendError) as info:
        T.build(plan)
    assert info.value.message == (
        "kernel_initializer `glorot_uniforn` is not one the torch backend knows; it knows glorot_uniform, "
        "glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, random_normal, random_uniform, "
        "truncated_normal, zeros, ones."
    )
    assert info.value.hint == "Did you mean `glorot_uniform`?"
    assert info.value.path == "layers[0]"


@pytest.mark.parametrize("name", INITIALIZERS)
def test_every_known_initializer_fills_a_kernel(name):
    spec = {"input": [50], "layers": [{"dense": {"units": 40, "kernel_initializer": name, "name": "d"}}]}
    weight = T.build(specdsl.check(spec)).d.weight
    assert torch.isfinite(weight).all()
    assert weight.abs().max().item() <= {"ones": 1.0, "zeros": 0.0}.get(name, 1.0)


def test_torch_init_option_keeps_torch_defaults_and_dtype_option_converts():
    plan = specdsl.check({"input": [3], "layers": [{"dense": 4}]})
    assert torch.count_nonzero(T.build(plan, init="torch").dense.bias).item() == 4
    assert T.build(plan, dtype="float64").dense.weight.dtype == torch.float64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": 1}, "unknown option(s) seed for the torch backend; options: init, dtype."),
        ({"init": "he"}, "init must be one of keras, torch, but got init='he'."),
        (
            {"dtype": "int32"},
            "dtype must name a floating torch dtype (float32, float64, ...), but got 'int32'.",
        ),
    ],
)
def test_bad_build_options_are_backend_errors(options, message):
    with pytest.raises(BackendError) as info:
        T.build(specdsl.check({"input": [3], "layers": [{"dense": 4}]}), **options)
    assert info.value.message == message


def test_model_pickles_and_copies(tmp_path):
    import copy

    plan = specdsl.check(ROOT / "examples" / "cifar10_cnn.yaml")
    model = T.build(plan).eval()
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    x = T.example_input(plan, batch=1)
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(loaded(x), expected)
        assert torch.equal(copy.deepcopy(model)(x), expected)


def test_layer_names_that_torch_uses_itself_get_an_underscore(tmp_path):
    spec = {
        "input": [4, 4, 2],
        "layers": [
            {"conv2d": {"filters": 2, "kernel": 1, "name": "forward"}},
            {"conv2d": {"filters": 2, "kernel": 1, "name": "train"}},
            {"conv2d": {"filters": 2, "kernel": 1, "name": "train_"}},
            {"flatten": {"name": "plan"}},
            {"dense": {"units": 2, "name": "self"}},
        ],
    }
    plan = specdsl.check(spec)
    assert T.attribute_names(plan) == {
        "input": "input",
        "forward": "forward_",
        "train": "train__",
        "train_": "train_",
        "plan": "plan_",
        "self": "self_",
    }
    model = T.build(plan)
    assert list(model.state_dict())[:2] == ["forward_.weight", "forward_.bias"]
    _assert_source_is_the_model(plan, tmp_path, script=True)


SEVERAL_OUTPUTS = {
    "input": [6, 6, 3],
    "layers": [
        {"conv2d": {"filters": 4, "kernel": 3, "name": "trunk"}},
        {"global_avgpool2d": {"name": "pooled"}},
        {"dense": {"units": 5, "activation": "softmax", "name": "classes"}},
        {"dense": {"units": 1, "inputs": "pooled", "name": "value"}},
    ],
    "outputs": ["classes", "value", "trunk"],
}


def test_several_outputs_are_a_tuple(tmp_path):
    plan = specdsl.check(SEVERAL_OUTPUTS)
    model = T.build(plan).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 6, 6))
    assert isinstance(out, tuple)
    assert [tuple(t.shape) for t in out] == [(2, 5), (2, 1), (2, 4, 4, 4)]
    _assert_source_is_the_model_multi(plan, tmp_path)


def _assert_source_is_the_model_multi(plan, folder):
    model = T.build(plan).eval()
    generated = getattr(_load_source(T.source(plan), folder), T.class_name(plan))().eval()
    generated.load_state_dict(model.state_dict())
    x = T.example_input(plan)
    with torch.no_grad():
        for a, b in zip(model(x), generated(x), strict=True):
            assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------------------------
# Generated source


def test_source_is_deterministic_standalone_and_reads_like_torch(tmp_path):
    path = ROOT / "examples" / "lenet5.yaml"
    code = T.source(specdsl.check(path))
    copy = tmp_path / "lenet5.yaml"
    copy.write_text(path.read_text())
    assert code == T.source(specdsl.check(copy))  # same spec, same text, wherever the file is
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"math", "torch", "torch.nn.functional"}
    assert "specdsl" not in code.split('"""', 2)[2]  # only the docstring mentions it
    assert "class Lenet5(nn.Module):" in code
    assert "        self.conv2d = Conv2dPadAct(1, 6, kernel_size=5, activation=nn.Tanh())\n" in code
    assert "        self.average_pooling2d = nn.AvgPool2d(2)\n" in code
    assert "        self.dense_1 = Dense(84, 10, activation=nn.Softmax(dim=1))\n" in code
    assert "        conv2d = self.conv2d(input)  # (N, 6, 28, 28)\n" in code
    assert "        flatten = self.flatten(conv2d_2)  # (N, 120)\n" in code
    assert '        keras_init_(self.conv2d.weight, "glorot_uniform", 25, 150)\n' in code
    assert "        return dense_1\n" in code


def test_source_writes_keras_padding_where_torch_cannot():
    code = T.source(specdsl.check(_case("conv2d-1")))
    assert "self.conv2d = Conv2dPadAct(3, 4, kernel_size=(3, 2), stride=2, pad=(0, 1, 1, 1))\n" in code
    code = T.source(specdsl.check(_case("maxpool2d-3")))
    assert 'nn.Sequential(nn.ConstantPad2d((0, 1, 1, 1), float("-inf")), nn.MaxPool2d(3, stride=2))' in code
    code = T.source(specdsl.check(_case("avgpool2d-2")))
    assert "self.average_pooling2d = AvgPool2dSame(3, 2, (0, 1, 1, 1))\n" in code
    code = T.source(specdsl.check(_case("conv2d_transpose-1")))
    assert "ConvTranspose2dCropAct(3, 4, kernel_size=3, stride=2, crop=(0, 1, 0, 1))" in code


def test_source_runs_as_a_script(tmp_path):
    path = T.export(specdsl.check(ROOT / "examples" / "lenet5.yaml"), tmp_path, "source")
    assert path == tmp_path / "lenet5.py"
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout == "61,706 trainable parameters\noutput shape: (1, 10)\n"


# ---------------------------------------------------------------------------------------------------------------
# Exported files


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _check_onnx_runs_back(path: Path, plan, model, batch: int = 3) -> None:
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    ort = pytest.importorskip("onnxruntime")
    x = T.example_input(plan, batch=batch, seed=7)  # another batch size than the one it was written with
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == plan.outputs
    got = session.run(None, {plan.nodes[0].name: x.numpy()})
    with torch.no_grad():
        expected = _as_tuple(model.eval()(x))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5)


ONNX_CASES = [
    "conv2d-1",
    "avgpool2d-2",
    "maxpool2d-3",
    "conv2d_transpose-1",
    "dense-2",
    "layernorm-0",
    "reshape-1",
    "concat-1",
    "bias-0",
]


@pytest.mark.parametrize("tid", ONNX_CASES)
def test_onnx_of_a_case_runs_back_in_onnxruntime(tid, tmp_path):
    plan = specdsl.check(_case(tid))
    model = T.build(plan)
    path = T.export(plan, tmp_path / tid, "onnx", model=model, dynamo=False)
    assert path == tmp_path / f"{tid}.onnx"
    _check_onnx_runs_back(path, plan, model)


def test_onnx_of_an_example_runs_back_in_onnxruntime(tmp_path):
    plan = specdsl.check(ROOT / "examples" / "cifar10_cnn.yaml")
    model = T.build(plan)
    path = T.export(plan, tmp_path, "onnx", model=model, dynamo=False)
    assert path == tmp_path / "cifar10_cnn.onnx"
    _check_onnx_runs_back(path, plan, model)


@pytest.mark.slow
def test_onnx_with_the_torch_export_based_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    plan = specdsl.check(ROOT / "examples" / "lenet5.yaml")
    model = T.build(plan)
    _check_onnx_runs_back(
        T.export(plan, tmp_path / "lenet.onnx", "onnx", model=model, dynamo=True), plan, model
    )


def _assert_runs_back(fmt: str, path: Path, plan, model) -> None:
    x = T.example_input(
        plan, batch=3, seed=5
    )  # another batch size than the example the file was written with
    loaded = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    with torch.no_grad():
        got, expected = _as_tuple(loaded(x)), _as_tuple(model.eval()(x))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["torchscript", "export"])
@pytest.mark.parametrize("tid", ["conv2d-1", "avgpool2d-2", "concat-1"])
def test_torchscript_and_torch_export_of_a_case_run_back(fmt, tid, tmp_path):
    plan = specdsl.check(_case(tid))
    model = T.build(plan)
    path = T.export(plan, tmp_path / "model", fmt, model=model)
    assert path.name == "model" + {"torchscript": ".pt", "export": ".pt2"}[fmt]
    _assert_runs_back(fmt, path, plan, model)


@pytest.mark.parametrize("fmt", ["torchscript", "export"])
def test_torchscript_and_torch_export_of_an_example_run_back(fmt, tmp_path):
    plan = specdsl.check(ROOT / "examples" / "lenet5.yaml")
    model = T.build(plan)
    _assert_runs_back(fmt, T.export(plan, tmp_path, fmt, model=model), plan, model)


def test_a_model_with_several_outputs_exports_to_every_format(tmp_path):
    plan = specdsl.check(SEVERAL_OUTPUTS)
    model = T.build(plan)
    _check_onnx_runs_back(T.export(plan, tmp_path / "m.onnx", "onnx", model=model, dynamo=False), plan, model)
    for fmt in ("torchscript", "export"):
        _assert_runs_back(fmt, T.export(plan, tmp_path / "m", fmt, model=model), plan, model)


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_every_case_exports_to_every_format(spec, expected, tmp_path):
    plan = specdsl.check(spec)
    model = T.build(plan)
    _check_onnx_runs_back(T.export(plan, tmp_path / "m.onnx", "onnx", model=model, dynamo=False), plan, model)
    for fmt in ("torchscript", "export"):
        _assert_runs_back(fmt, T.export(plan, tmp_path / "m", fmt, model=model), plan, model)


def test_export_formats_and_an_unknown_format(tmp_path):
    assert T.FORMATS == ("source", "onnx", "torchscript", "export")
    with pytest.raises(BackendError) as info:
        T.export(specdsl.check(_case("dense-0")), tmp_path, "keras")
    assert info.value.message == (
        "the torch backend exports to source, onnx, torchscript, export, but got format='keras'."
    )


def test_export_keeps_the_model_in_its_mode(tmp_path):
    plan = specdsl.check(_case("dropout-0"))
    model = T.build(plan)
    T.export(plan, tmp_path, "torchscript", model=model)
    assert model.training


@pytest.mark.parametrize(("missing", "dynamo"), [("onnx", None), ("onnxscript", True)])
def test_onnx_export_without_its_package_is_a_missing_backend_error(missing, dynamo, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        _export.importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    with pytest.raises(BackendMissingError) as info:
        T.export(specdsl.check(_case("dense-0")), tmp_path, "onnx", dynamo=dynamo)
    assert info.value.package == missing
    assert str(info.value).endswith(
        f"needs the `{missing}` package, which is not installed. Install it: pip install 'specdsl[export]'"
    )


def test_torchinfo_counts_the_plans_parameters():
    torchinfo = pytest.importorskip("torchinfo")
    plan = specdsl.check(ROOT / "examples" / "cifar10_cnn.yaml")
    stats = torchinfo.summary(T.build(plan), input_size=(1, *T.torch_shape(plan.input_shape)), verbose=0)
    assert stats.total_params == stats.trainable_params == plan.trainable == 1_343_146
    assert plan.non_trainable == 1920
