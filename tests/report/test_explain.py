"""`specdsl explain`: the pictures of a tiny CNN trained for one epoch on `digits` (8x8), from its checkpoint and
from the MLflow run that logged it; exact sizes, real content, the saliency of a model whose answer is known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("mlflow")
Image = pytest.importorskip("PIL.Image")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from support import EXAMPLES  # noqa: E402
from train_fixtures import train_tracked, write_spec  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import specdsl  # noqa: E402
from specdsl.cli import app  # noqa: E402
from specdsl.errors import SpecError, TrainError  # noqa: E402
from specdsl.report import Trained, run_explain  # noqa: E402
from specdsl.report._saliency import cam_node, first_convs, pick_images, saliency_maps  # noqa: E402

PICTURES = [
    "saliency.png",
    "filters.png",
    "feature_maps_0.png",
    "feature_maps_1.png",
    "feature_maps_2.png",
    "feature_maps_3.png",
]
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("mlflow_as_it_was")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_as_it_was):
    """`specdsl train` of the digits CNN (conv 16 same -> maxpool -> dense 32 -> 10), one epoch, tracked:
    (folder, spec, checkpoint folder, tracking URI, run id)."""
    folder = tmp_path_factory.mktemp("explain")
    spec, uri, run_id = train_tracked(folder)
    return folder, spec, folder / "ckpt", uri, run_id


def real(path: Path, size: tuple[int, int]) -> Image.Image:
    """The PNG at ``path``: exactly ``size``, many colours, less than 85% of it the white background."""
    image = Image.open(path).convert("RGB")
    assert image.size == size, path.name
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 150, path.name
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    assert white < 0.85 * size[0] * size[1], path.name
    return image


def test_the_pictures_of_a_checkpoint(trained, tmp_path):
    folder, spec, ckpt, _, _ = trained
    done = run_explain(spec, weights=ckpt / "best.pt", images=4, output=tmp_path / "out")
    assert [p.name for p in done.files] == PICTURES
    assert done.images == 4 and 0 <= done.correct <= 4 and done.run_id is None
    # label column 170 + (image 128 + 6) x 3 columns + 6; title 42 + a row of 134 per image + 6
    real(tmp_path / "out" / "saliency.png", (578, 584))
    # 16 kernels 3x3 of one channel, 40 px each: one row
    real(tmp_path / "out" / "filters.png", (748, 80))
    # the input (128) and one row of 16 channels of the one convolution (8x8x16), 56 px a map
    for i in range(4):
        real(tmp_path / "out" / f"feature_maps_{i}.png", (1168, 226))
    # the same from the checkpoint's folder, and with --images 1
    again = run_explain(spec, weights=ckpt, images=1, output=tmp_path / "one")
    assert [p.name for p in again.files] == ["saliency.png", "filters.png", "feature_maps_0.png"]
    real(tmp_path / "one" / "saliency.png", (578, 182))


def test_the_pictures_of_an_mlflow_run_go_back_to_that_run(trained, tmp_path):
    from mlflow import MlflowClient

    folder, _, _, uri, run_id = trained
    done = run_explain(None, run=run_id, images=4, output=tmp_path / "out", tracking_uri=uri)  # its own spec
    assert [p.name for p in done.files] == PICTURES
    assert (done.run_id, done.experiment) == (run_id, "digits_cnn")
    logged = sorted(f.path for f in MlflowClient(uri).list_artifacts(run_id, "explain"))
    assert logged == sorted(f"explain/{name}" for name in PICTURES)
    # the model logged in MLflow is the checkpoint's: the same predictions, so the same saliency picture
    from_ckpt = run_explain(
        folder / "digits.yaml", weights=folder / "ckpt", images=4, output=tmp_path / "ckpt"
    )
    assert from_ckpt.correct == done.correct
    a = np.asarray(Image.open(tmp_path / "out" / "saliency.png"))
    b = np.asarray(Image.open(tmp_path / "ckpt" / "saliency.png"))
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 1.0


def test_a_tracked_explain_of_a_checkpoint_is_a_new_run(trained, tmp_path):
    from mlflow import MlflowClient

    _, spec, ckpt, _, _ = trained
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_explain(
        spec,
        weights=ckpt,
        images=2,
        output=tmp_path / "out",
        track=True,
        tracking_uri=uri,
        experiment="pictures",
    )
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("pictures").experiment_id])
    assert run.info.run_id == done.run_id and run.info.status == "FINISHED"
    assert run.data.tags["specdsl.role"] == "explain" and run.info.run_name == "explain digits_cnn"
    assert run.data.metrics["explain.images"] == 2.0
    assert sorted(f.path for f in client.list_artifacts(run.info.run_id, "explain")) == [
        "explain/feature_maps_0.png",
        "explain/feature_maps_1.png",
        "explain/filters.png",
        "explain/saliency.png",
    ]


def test_the_cli(trained, tmp_path):
    _, spec, ckpt, _, _ = trained
    out = tmp_path / "cli"
    result = runner.invoke(
        app, ["explain", str(spec), "--weights", str(ckpt / "best.pt"), "-n", "2", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote 4 pictures to {out}/ (2 validation images, ")
    assert sorted(p.name for p in out.iterdir()) == [
        "feature_maps_0.png",
        "feature_maps_1.png",
        "filters.png",
        "saliency.png",
    ]
    result = runner.invoke(app, ["explain", str(spec)])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: explain needs the trained weights: give --weights CHECKPOINT or --run RUN_ID "
        "(one of them). e.g. specdsl explain model.yaml --weights checkpoints/<name>/best.pt\n"
    )
    result = runner.invoke(app, ["explain", str(spec), "--weights", str(tmp_path / "nothing.pt")])
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: the checkpoint {tmp_path / 'nothing.pt'} does not exist. Pass the best.pt (or "
        "best.weights.h5) that `specdsl train` wrote, e.g. checkpoints/<name>/best.pt.\n"
    )


def test_weights_of_another_model_are_refused(trained, tmp_path):
    _, _, ckpt, _, _ = trained
    other = write_spec(
        tmp_path,
        layers=[
            {"conv2d": {"filters": 8, "kernel": 3, "padding": "same", "activation": "relu"}},
            {"maxpool2d": 2},
            "flatten",
            {"dense": {"units": 32, "activation": "relu"}},
            {"dense": {"units": 10, "activation": "softmax"}},
        ],
    )
    with pytest.raises(
        TrainError,
        match=r"^the weights in .*best.pt do not fit the model of the spec \(conv2d.bias "
        r"is \(16,\), the spec's is \(8,\)\)\. Pass the spec the checkpoint was "
        r"trained from\.$",
    ):
        run_explain(other, weights=ckpt, output=tmp_path / "out")
    with pytest.raises(SpecError, match=r"explain draws images, but the model's input is 64"):
        from specdsl.report import explain_images

        plan = specdsl.check({"input": [64], "layers": [{"dense": 10}]})
        explain_images(
            Trained(plan, specdsl.build(plan), np.ones(1), np.zeros(1)),
            np.zeros((1, 64), np.uint8),
            np.zeros(1, np.int64),
            tmp_path,
        )


def test_saliency_finds_the_one_pixel_a_model_reads():
    """A model whose class-1 score is pixel (2, 5) and nothing else: the gradient saliency is that pixel alone."""
    import torch

    plan = specdsl.check(
        {
            "input": [8, 8, 1],
            "layers": [
                {"conv2d": {"filters": 1, "kernel": 1, "use_bias": False, "name": "conv"}},
                "flatten",
                {"dense": {"units": 2, "use_bias": False, "name": "out"}},
            ],
        }
    )
    model = specdsl.build(plan).eval()
    with torch.no_grad():
        model.conv.weight.fill_(1.0)
        model.out.weight.zero_()
        model.out.weight[1, 2 * 8 + 5] = 1.0  # channels-last flatten of (8, 8, 1): row 2, column 5
    trained = Trained(plan, model, np.full(1, 1 / 255), np.zeros(1), ["a", "b"])
    images = np.random.default_rng(0).integers(1, 255, size=(3, 8, 8, 1), dtype=np.uint8)
    saliency, cam = saliency_maps(trained, images, np.array([1, 1, 1]))
    assert saliency.shape == (3, 8, 8) and cam.shape == (3, 8, 8)
    expected = np.zeros((8, 8))
    expected[2, 5] = 1.0
    assert all(np.array_equal(s, expected) for s in saliency)
    assert cam.min() >= 0.0 and np.allclose(cam.max((1, 2)), 1.0)
    assert cam_node(plan).name == "conv"


def test_which_layers_and_images():
    inception = specdsl.check(EXAMPLES / "inceptionv3.yaml")
    assert [n.name for n in first_convs(inception)] == ["conv2d"]
    assert (cam_node(inception).name, cam_node(inception).shape) == ("concatenate_10", (8, 8, 2048))
    resnet = specdsl.check(EXAMPLES / "resnet50.yaml")
    assert [n.name for n in first_convs(resnet)] == ["conv1_conv"]
    assert (cam_node(resnet).name, cam_node(resnet).shape) == ("activation_48", (7, 7, 2048))
    assert cam_node(specdsl.check(EXAMPLES / "lenet5.yaml")).name == "conv2d_1"  # 10x10; then pooling, 5x5
    assert cam_node(specdsl.check(EXAMPLES / "mnist_mlp.yaml")) is None
    branches = specdsl.check(
        {
            "input": [8, 8, 3],
            "layers": [
                {"conv2d": {"filters": 2, "kernel": 3, "name": "a"}},
                {"conv2d": {"filters": 2, "kernel": 1, "name": "b", "inputs": "input"}},
                {"conv2d": {"filters": 2, "kernel": 3, "name": "c", "inputs": "b"}},
                {"concat": {"inputs": ["a", "c"]}},
            ],
        }
    )
    assert [n.name for n in first_convs(branches)] == ["a", "b"]
    y = np.array([0, 0, 1, 0, 2, 1, 2, 2])
    assert pick_images(np.zeros((8, 1)), y, 5).tolist() == [0, 2, 4, 1, 5]
    assert pick_images(np.zeros((8, 1)), y, 20).tolist() == [0, 2, 4, 1, 5, 6, 3, 7]


def test_a_run_without_a_model_is_named(trained, tmp_path):
    import mlflow

    _, spec, _, uri, _ = trained
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.get_experiment_by_name("digits_cnn").experiment_id, run_name="trial-like")
    client.log_artifact(run.info.run_id, str(spec), "spec")
    client.set_terminated(run.info.run_id)
    with pytest.raises(TrainError) as e:
        run_explain(None, run=run.info.run_id, tracking_uri=uri, output=tmp_path)
    assert e.value.format() == (
        f"MLflow run {run.info.run_id} logged no model. Explain a finished run of `specdsl "
        "train` (search trials keep no model), or pass the spec and --weights."
    )
    with pytest.raises(TrainError, match=r"^there is no MLflow run 0123 in sqlite:///"):
        run_explain(None, run="0123", tracking_uri=uri, output=tmp_path)
