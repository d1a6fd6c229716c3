""".keras files of models with specdsl's own layers (bias per channel or per position, uneven 'same' average
pooling) load with plain keras.saving.load_model in a Python where specdsl cannot be imported, and compute what
the in-memory model computes, with the same parameter counts."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from support import EXAMPLES
from typer.testing import CliRunner

import specdsl
import specdsl.weights as W
from specdsl.cli import app

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
runner = CliRunner()

BIASES = {
    "name": "biases",
    "input": [5, 5, 2],
    "layers": [
        {"conv2d": {"filters": 3, "kernel": 3, "padding": "same", "use_bias": False}},
        {"bias": "position"},
        {"bias": "channel"},
        {"avgpool2d": {"pool": 2, "strides": 2, "padding": "same"}},  # padding (0, 1): uneven
        "flatten",
        {"dense": {"units": 4, "use_bias": False}},
        {"bias": "channel"},
        {"activation": "softmax"},
    ],
}
POOL_1D = {
    "name": "pool1d",
    "input": [7, 3],
    "layers": [{"avgpool1d": {"pool": 2, "strides": 2, "padding": "same"}}, {"bias": "position"}],
}

# Run in `python -I -S`: no site-packages processing, so no editable install's import hook and no checkout on
# sys.path; the site-packages folders are put back by hand, as plain folders. One process loads every file.
LOADER = """
import sys
sys.path.extend({paths!r})
try:
    import specdsl
except ImportError:
    pass
else:
    raise SystemExit("specdsl is importable here: " + specdsl.__file__)
import json
import keras
import numpy as np
found = {{}}
for name, file in {files!r}.items():
    model = keras.saving.load_model(file)
    np.save(file + ".y.npy", keras.ops.convert_to_numpy(model(np.load(file + ".x.npy"), training=False)))
    packages = sorted({{type(layer).__module__.split(".")[0] for layer in model.layers}})
    found[name] = {{"params": model.count_params(), "classes": packages}}
print(json.dumps(found))
"""


def randomized(plan, seed: int = 0):
    """The plan's Keras model with every weight random (biases start at zero, which would prove little)."""
    model = specdsl.build(plan, "keras")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


def site_folders() -> list[str]:
    return [p for p in (*site.getsitepackages(), site.getusersitepackages()) if os.path.isdir(p)]


def test_the_loader_really_cannot_import_specdsl(tmp_path):
    code = f"import sys; sys.path.extend({site_folders()!r}); import specdsl"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: No module named 'specdsl'"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Models with specdsl's layers, written to .keras (two through the API, AlphaGo's policy net through
    `specdsl compile`) and loaded in one Python that cannot import specdsl: name -> (plan, the in-memory model,
    the input, the loaded model's output, {params, the packages of its layer classes}, the file)."""
    folder = tmp_path_factory.mktemp("portable")
    K = specdsl.backends.get_backend("keras")
    cases = {}
    for name, spec in (("biases", BIASES), ("pool1d", POOL_1D)):
        plan = specdsl.check(spec)
        model = randomized(plan)
        assert {type(layer).__name__ for layer in model.layers} & {"Bias", "PaddedAveragePooling"}
        cases[name] = (plan, model, K.export(plan, folder / f"{name}.keras", "keras", model=model))
    spec = EXAMPLES / "alphago_policy.yaml"
    plan = specdsl.check(spec)
    out = folder / "alphago.keras"
    result = runner.invoke(app, ["compile", str(spec), "-b", "keras", "-f", "keras", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {out} (alphago_policy: {plan.params:,} params, keras, keras)"
    # the file's own weights, random but for the per-position bias, which starts at zero: give it values
    model = W.load_into(specdsl.build(plan, "keras"), plan, out)
    model.get_layer("bias").set_weights(
        [np.random.default_rng(2).standard_normal((19, 19, 1)).astype("float32")]
    )
    cases["alphago"] = (plan, model, K.export(plan, folder / "trained.keras", "keras", model=model))
    inputs = {}
    for name, (plan, _, path) in cases.items():
        inputs[name] = np.random.default_rng(1).standard_normal((3, *plan.input_shape)).astype("float32")
        np.save(f"{path}.x.npy", inputs[name])
    code = LOADER.format(paths=site_folders(), files={name: str(c[2]) for name, c in cases.items()})
    env = {"KERAS_BACKEND": "torch", "PATH": os.environ.get("PATH", ""), "HOME": str(folder)}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        name: (plan, model, inputs[name], np.load(f"{path}.y.npy"), info[name], path)
        for name, (plan, model, path) in cases.items()
    }


@pytest.mark.parametrize(
    ("name", "shape"), [("biases", (3, 4)), ("pool1d", (3, 4, 3)), ("alphago", (3, 361))]
)
def test_a_model_with_specdsls_layers_loads_without_specdsl(loaded, name, shape):
    plan, model, x, got, info, path = loaded[name]
    assert "specdsl" not in zipfile.ZipFile(path).read("config.json").decode()
    assert info == {"params": plan.params, "classes": ["keras"]}
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert got.shape == expected.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    if name != "alphago":
        np.testing.assert_array_equal(got, expected)  # the same operations: the same bits


def test_the_weights_of_a_portable_file_read_back_by_name(tmp_path):
    plan = specdsl.check(BIASES)
    model = randomized(plan, seed=3)
    path = specdsl.backends.get_backend("keras").export(plan, tmp_path / "m.keras", "keras", model=model)
    arrays = W.get_arrays(model, plan)
    back = W.get_arrays(W.load_into(specdsl.build(plan, "torch"), plan, path), plan)
    assert sorted(back) == sorted(arrays) == ["bias", "bias_1", "bias_2", "conv2d", "dense"]
    for name in arrays:
        assert all(np.array_equal(a, b) for a, b in zip(back[name], arrays[name], strict=True)), name
