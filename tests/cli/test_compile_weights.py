"""`specdsl compile --weights`: an exported file holds a checkpoint's weights, exactly, in either backend."""

from __future__ import annotations

import numpy as np
import pytest
from support import EXAMPLES
from typer.testing import CliRunner

import specdsl
import specdsl.weights as W
from specdsl.cli import app

torch = pytest.importorskip("torch")
runner = CliRunner()
LENET = EXAMPLES / "lenet5.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of LeNet-5's torch model, seeded: (plan, the model, its file)."""
    plan = specdsl.check(LENET)
    torch.manual_seed(0)
    model = specdsl.build(plan, "torch")
    path = W.save(model, plan, tmp_path_factory.mktemp("weights") / "lenet5.npz")
    return plan, model, path


def test_a_torchscript_export_holds_the_checkpoint_bit_for_bit(checkpoint, tmp_path):
    plan, model, path = checkpoint
    out = tmp_path / "lenet5.pt"
    result = runner.invoke(
        app, ["compile", str(LENET), "-f", "torchscript", "-o", str(out), "--weights", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert (
        result.stderr.strip()
        == f"wrote {out} (lenet5: 61,706 params, torch, torchscript, weights from {path})"
    )
    exported = torch.jit.load(str(out)).state_dict()
    expected = model.state_dict()
    assert sorted(exported) == sorted(expected)
    assert all(torch.equal(exported[k], expected[k]) for k in expected)


def test_two_exports_with_weights_are_the_same_model_and_without_they_are_not(checkpoint, tmp_path):
    _, _, path = checkpoint
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))

    def outputs(name: str, *extra: str) -> torch.Tensor:
        out = tmp_path / name
        result = runner.invoke(app, ["compile", str(LENET), "-f", "torchscript", "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        model = torch.jit.load(str(out)).eval()
        with torch.no_grad():
            return model(x)

    assert torch.equal(outputs("a.pt", "-w", str(path)), outputs("b.pt", "-w", str(path)))
    assert not torch.equal(outputs("c.pt"), outputs("d.pt"))  # fresh weights each time


def test_a_keras_export_holds_the_checkpoint_and_answers_as_torch_does(checkpoint, tmp_path):
    keras = pytest.importorskip("keras")
    plan, model, path = checkpoint
    out = tmp_path / "lenet5.keras"
    result = runner.invoke(
        app, ["compile", str(LENET), "-b", "keras", "-f", "keras", "-o", str(out), "-w", str(path)]
    )
    assert result.exit_code == 0, result.output
    loaded = keras.saving.load_model(out)
    arrays = W.get_arrays(model, plan)
    for node in W.weighted_nodes(plan):
        got = loaded.get_layer(node.name).get_weights()
        assert [a.shape for a in got] == [a.shape for a in arrays[node.name]], node.name
        assert all(np.array_equal(a, b) for a, b in zip(got, arrays[node.name])), node.name
    x = np.random.default_rng(1).standard_normal((2, 32, 32, 1)).astype("float32")
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


def test_source_takes_no_weights(checkpoint):
    _, _, path = checkpoint
    result = runner.invoke(app, ["compile", str(LENET), "--weights", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: generated source builds a freshly initialized model, so it takes no --weights; export a model "
        "file with the weights (--format onnx -o PATH), or load them into the source's model with "
        "specdsl.weights.load_into."
    )


def test_weights_of_another_architecture_are_one_located_error(tmp_path):
    other = specdsl.check(EXAMPLES / "mnist_cnn.yaml")
    path = W.save(specdsl.build(other, "torch"), other, tmp_path / "mnist.npz")
    out = tmp_path / "lenet5.pt"
    result = runner.invoke(app, ["compile", str(LENET), "-f", "torchscript", "-o", str(out), "-w", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {LENET}:5:5: layers[0] (conv2d): `conv2d`'s kernel is (5, 5, 1, 6), but layer `conv2d` (conv2d) "
        f"of {path} has (3, 3, 1, 64) there, matched in order. Is the file the weights of this architecture (the "
        "same input shape, widths and layer order)?"
    )
    assert not out.exists()
