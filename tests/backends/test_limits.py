"""The backend limits table is true and whole.

True: for every entry and every kind it names, the framework itself refuses the layer (built with the
framework's own class, not through specdsl), the backend refuses the entry's example, and ``validate`` reports
it, as an error where the spec's ``train.backend`` names the backend and as a warning otherwise. Whole: every
windowed layer case, with each combination of strides, dilation and padding that plans, builds in both backends
to the plan's output shape, unless an entry says that backend refuses it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import keras
import numpy as np
import pytest
from layer_cases import CASES
from typer.testing import CliRunner

import specdsl
from specdsl.backends import LIMITS, backend_limits, get_backend
from specdsl.cli import app
from specdsl.errors import BackendError, SpecdslError
from specdsl.spec import LAYERS, WARNINGS

torch = pytest.importorskip("torch")

WINDOWED = ("conv2d", "conv1d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose")
POOLS = ("maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d")


def _keras_layer(kind: str):
    """The framework's own layer for a kind, strided and dilated, called on a fitting input."""
    cls = getattr(keras.layers, LAYERS[kind].keras_class)
    kwargs = {"kernel_size": 3, "strides": 2, "dilation_rate": 2}
    if "filters" in LAYERS[kind].model.model_fields:
        kwargs["filters"] = 4
    return cls(**kwargs)(keras.Input((15, 3) if kind.endswith("1d") else (15, 15, 3)))


@pytest.mark.parametrize("limit", LIMITS, ids=lambda limit: limit.code)
def test_each_limit_is_a_refusal_of_its_framework(limit):
    assert set(WARNINGS) == {"drops-rows", *(lim.code for lim in LIMITS)}
    assert limit.code in WARNINGS and limit.backend in ("torch", "keras")
    assert limit.code.startswith(limit.backend + "-")
    for kind in limit.kinds:
        with pytest.raises(
            ValueError, match="`strides > 1` not supported in conjunction with `dilation_rate > 1`"
        ):
            _keras_layer(kind)
    # and the kinds it does not name build so in Keras
    for kind in ("depthwise_conv2d", "separable_conv2d"):
        assert kind not in limit.kinds
        assert tuple(_keras_layer(kind).shape) == (None, 6, 6, 4 if kind == "separable_conv2d" else 3)
    plan = specdsl.check(limit.example)
    assert [(lim.code, node.name) for lim, node in backend_limits(plan)] == [(limit.code, "conv2d")]
    with pytest.raises(BackendError):
        get_backend(limit.backend).build(plan)


TEXT = "input: [15, 15, 3]\nlayers:\n  - conv2d: {filters: 4, kernel: 3, strides: 2, dilation: 2%s}\n"
MESSAGE = (
    "Keras' Conv2D refuses strides > 1 with dilation > 1, but got strides=2x2 and dilation=2x2. Use strides: 1 "
    "and downsample with a pooling layer after it, or drop the dilation; or build it with the torch backend "
    "(train.backend: torch, compile --backend torch)."
)
TRAINED = "  - global_avgpool2d\n  - dense: {units: 2, activation: softmax}\ntrain: {backend: %s}\n"


def _validate(text: str, tmp_path: Path, *options: str):
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    return CliRunner().invoke(app, ["validate", "m.yaml", *options])


def test_validate_warns_unless_the_spec_names_the_backend(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    warned = _validate(TEXT % "", tmp_path)
    assert warned.exit_code == 0
    assert warned.stderr == (
        "m.yaml:3:5: layers[0] (conv2d): warning [keras-strided-dilation]: the keras backend cannot build this "
        f"layer: {MESSAGE}\n"
    )
    refused = _validate(TEXT % "" + TRAINED % "keras", tmp_path)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: m.yaml:3:5: layers[0] (conv2d): the spec's backend (keras) cannot build this layer: {MESSAGE}\n"
    )
    # a spec for torch builds: the Keras limit stays a warning, which its layer may silence
    torch_spec = TEXT % "" + TRAINED % "torch"
    assert "warning [keras-strided-dilation]" in _validate(torch_spec, tmp_path).stderr
    silenced = _validate(
        TEXT % ", silence: [keras-strided-dilation]" + TRAINED % "torch", tmp_path, "--strict"
    )
    assert (silenced.exit_code, silenced.stderr) == (0, "")
    # silencing does not make a backend build what it cannot
    assert (
        _validate(TEXT % ", silence: [keras-strided-dilation]" + TRAINED % "keras", tmp_path).exit_code == 2
    )


def _variants():
    """Each windowed kind's first case with every strides x dilation x padding its model takes."""
    for kind in (*WINDOWED, *POOLS):
        spec = CASES[kind][0]
        last = spec["layers"][-1][kind]
        base = dict(last) if isinstance(last, dict) else {"pool": last}
        fields = LAYERS[kind].model.model_fields
        axes = {
            "strides": [1, 2, 3],
            "dilation": [1, 2] if "dilation" in fields else [None],
            "padding": ["valid", "same", 1]
            if kind in WINDOWED and kind != "conv2d_transpose"
            else ["valid", "same"],
        }
        if kind in POOLS:
            axes["pool"] = [2, 3]
        for values in itertools.product(*axes.values()):
            args = {**base, **{k: v for k, v in zip(axes, values) if v is not None}}
            yield (
                f"{kind}-" + "-".join(map(str, values)),
                {**spec, "layers": [*spec["layers"][:-1], {kind: args}]},
            )


def _torch_shape(model, plan) -> tuple[int, ...]:
    shape = plan.input_shape
    x = torch.rand(1, *shape)
    x = x.permute(0, len(shape), *range(1, len(shape))) if len(shape) > 1 else x
    with torch.no_grad():
        y = model(x)
    dims = tuple(y.shape[1:])
    return dims[1:] + dims[:1] if len(dims) > 1 else dims


def test_every_window_variant_builds_in_both_backends_unless_a_limit_says_not():
    built = refused = 0
    for name, spec in _variants():
        try:
            plan = specdsl.check(spec)
        except SpecdslError:
            continue
        stopped = {limit.backend for limit, _ in backend_limits(plan)}
        for backend in ("torch", "keras"):
            be = get_backend(backend)
            if backend in stopped:
                with pytest.raises(BackendError):
                    be.build(plan)
                refused += 1
                continue
            model = be.build(plan)
            if backend == "torch":
                assert _torch_shape(model, plan) == plan.output_shape, name
            else:
                assert (
                    tuple(model(np.zeros((1, *plan.input_shape), "float32")).shape[1:]) == plan.output_shape
                ), name
            built += 1
    assert (built, refused) == (built, 16) and built > 200
