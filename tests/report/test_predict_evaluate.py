"""`specdsl predict` and `specdsl evaluate` as a user runs them: a tiny CNN trained by `specdsl train` for one epoch
on `digits` (8x8), its checkpoint and the MLflow run that logged it; predictions checked against the model's own
forward pass, scores against a count by hand, the PNGs by size and content, MLflow in a real sqlite store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("mlflow")
Image = pytest.importorskip("PIL.Image")

from train_fixtures import DIGITS_SPEC, write_spec  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import specdsl  # noqa: E402
import specdsl.weights as W  # noqa: E402
from specdsl.cli import app  # noqa: E402
from specdsl.report import scores  # noqa: E402
from specdsl.report._mistakes import confident_mistakes  # noqa: E402

runner = CliRunner()
IMAGES = 5  # test images written as PNG files
FILES = "Pass image files (PNG, JPEG, BMP, GIF, WebP, TIFF)."


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_as_it_was):
    """`specdsl train digits.yaml -e 1 --limit 400 -o ckpt --tracking-uri sqlite:///...`: (folder, spec,
    checkpoint folder, tracking URI, run id). MLflow's tracking URI is put back as it was afterwards."""
    import mlflow

    folder = tmp_path_factory.mktemp("predict")
    spec = write_spec(folder)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = [
            "train",
            str(spec),
            "-e",
            "1",
            "--limit",
            "400",
            "-o",
            str(folder / "ckpt"),
            "--tracking-uri",
            uri,
        ]
        result = runner.invoke(app, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("digits_cnn").experiment_id])
    return folder, spec, folder / "ckpt", uri, run.info.run_id


@pytest.fixture(scope="module")
def split(trained):
    """The digits test split as the spec loads it, and the first IMAGES of it written as PNG files."""
    from specdsl.train import load_for

    folder, spec, _, _, _ = trained
    plan = specdsl.check(spec)
    dataset = load_for(plan, plan.spec.data)
    paths = []
    for i in range(IMAGES):
        paths.append(folder / f"digit_{i}.png")
        Image.fromarray(dataset.x_test[i][..., 0], mode="L").save(paths[-1])
    return dataset.x_test, dataset.y_test, paths


def forward(trained, images: np.ndarray) -> np.ndarray:
    """The checkpoint's probabilities for uint8 images, by hand: best.pt into the spec's torch model, pixels / 255
    (the spec's data.normalize, unit), NCHW."""
    _, spec, ckpt, _, _ = trained
    plan = specdsl.check(spec)
    model = specdsl.build(plan, "torch")
    model.load_state_dict(torch.load(ckpt / "best.pt", weights_only=True))
    model.eval()
    x = torch.from_numpy(images.astype(np.float32) / 255).permute(0, 3, 1, 2)
    with torch.no_grad():
        return model(x).double().numpy()


def predict_json(*args: str) -> dict:
    result = runner.invoke(app, ["predict", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_predict_gives_the_models_own_top_classes(trained, split, monkeypatch):
    folder, spec, ckpt, _, _ = trained
    x, _, paths = split
    expected = forward(trained, x[:IMAGES])
    doc = predict_json(str(spec), "-w", str(ckpt / "best.pt"), *map(str, paths), "--top", "3")
    assert doc["model"] == "digits_cnn" and doc["weights"] == str(ckpt / "best.pt")
    assert doc["classes"] == [str(i) for i in range(10)]
    assert [image["image"] for image in doc["images"]] == [str(p) for p in paths]
    for image, probs in zip(doc["images"], expected):
        order = np.argsort(-probs, kind="stable")
        assert [t["index"] for t in image["top"]] == order[:3].tolist()
        assert [t["class"] for t in image["top"]] == [str(i) for i in order[:3]]
        assert image["top"][0]["index"] == int(probs.argmax())
        assert abs(sum(image["probabilities"]) - 1.0) < 1e-6
        assert np.abs(np.array(image["probabilities"]) - probs).max() < 1e-6
        assert [t["probability"] for t in image["top"]] == [image["probabilities"][i] for i in order[:3]]
    # the table: a row per class shown, the top one with the image's name
    monkeypatch.chdir(folder)
    result = runner.invoke(app, ["predict", "digits.yaml", "-w", "ckpt", "digit_0.png", "-k", "2"])
    assert result.exit_code == 0, result.output
    first, second = np.argsort(-expected[0], kind="stable")[:2]
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1:5] for row in rows] == [
        [" digit_0.png ", "    1 ", f" {first}     ", f"      {expected[0][first]:.4f} "],
        ["             ", "    2 ", f" {second}     ", f"      {expected[0][second]:.4f} "],
    ]
    assert result.stderr == "1 image classified\n"


def test_predict_from_the_mlflow_run_and_from_a_specdsl_checkpoint(trained, split, tmp_path):
    from specdsl.report import load_weights

    _, spec, ckpt, uri, run_id = trained
    _, _, paths = split
    want = predict_json(str(spec), "-w", str(ckpt), *map(str, paths))
    # the run's own spec, preprocessing.json's class names and scale, the logged model
    got = predict_json("--run", run_id, "--tracking-uri", uri, *map(str, paths))
    assert got["weights"] == f"MLflow run {run_id}" and got["classes"] == want["classes"]
    for a, b in zip(got["images"], want["images"]):
        assert a["top"][0]["index"] == b["top"][0]["index"]
        assert np.abs(np.array(a["probabilities"]) - np.array(b["probabilities"])).max() < 1e-6
    # the .npz checkpoint `compile --weights` takes
    plan = specdsl.check(spec)
    npz = W.save(load_weights(plan, ckpt), plan, tmp_path / "digits.npz")
    got = predict_json(str(spec), "-w", str(npz), *map(str, paths))
    a = np.array([image["probabilities"] for image in got["images"]])
    b = np.array([image["probabilities"] for image in want["images"]])
    assert a.shape == (IMAGES, 10) and np.abs(a - b).max() < 1e-7


def test_predict_errors_are_one_line(trained, split, tmp_path):
    _, spec, ckpt, _, _ = trained
    _, _, paths = split

    def error(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["predict", *args])
        assert result.stdout == "" and "Traceback" not in result.output
        return result.exit_code, result.stderr

    missing = tmp_path / "nothing.png"
    assert error(str(spec), "-w", str(ckpt), str(paths[0]), str(missing)) == (
        4,
        f"error: {missing}: no such image file. {FILES}\n",
    )
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert error(str(spec), "-w", str(ckpt), str(text)) == (
        4,
        f"error: {text}: not an image PIL can decode (empty, truncated, or another kind of file). {FILES}\n",
    )
    assert error(str(spec), str(paths[0])) == (
        2,
        "error: predict needs the trained weights: give --weights CHECKPOINT or --run RUN_ID (one of them). "
        "e.g. specdsl predict model.yaml --weights checkpoints/<name>/best.pt\n",
    )
    conv, *rest = DIGITS_SPEC["layers"]
    other = write_spec(
        tmp_path, layers=[{"conv2d": {**conv["conv2d"], "filters": 8}}, *rest]
    )  # 16 filters trained
    assert error(str(other), "-w", str(ckpt), str(paths[0])) == (
        5,
        f"error: the weights in {ckpt / 'best.pt'} do not fit the model of the spec (conv2d.bias is (16,), "
        "the spec's is (8,)). Pass the spec the checkpoint was trained from.\n",
    )
    # a model that is not a classifier: its output layer named, located
    linear = write_spec(tmp_path, layers=["flatten", {"dense": {"units": 3}}], name="linear.yaml")
    plan = specdsl.check(linear)
    npz = W.save(specdsl.build(plan, "torch"), plan, tmp_path / "linear.npz")
    code, message = error(str(linear), "-w", str(npz), str(paths[0]))
    assert (code, message) == (
        2,
        f"error: {linear}:8:3: layers[1]: predict needs a classifier, but the model's output is 3 out of a "
        "linear activation: not a softmax over classes, nor one sigmoid unit. End the model with dense(N "
        "classes, activation: softmax), or dense(1, activation: sigmoid).\n",
    )


def real(path: Path, size: tuple[int, int]) -> None:
    """The PNG at ``path`` is exactly ``size``, with content: many colours, less than 90% white."""
    image = Image.open(path).convert("RGB")
    assert image.size == size, path.name
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 20, path.name
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    assert white < 0.9 * size[0] * size[1], path.name


def test_evaluate_scores_the_test_split(trained, split, tmp_path):
    _, spec, ckpt, _, _ = trained
    x, y, _ = split
    probs = forward(trained, x)
    pred = probs.argmax(-1)
    correct = int((pred == y).sum())
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", str(spec), "-w", str(ckpt), "-o", str(out), "--no-track"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"digits_cnn on the test split: accuracy {correct / len(y):.4f} ({correct} of {len(y)} right)"
    )
    doc = json.loads((out / "metrics.json").read_text())
    assert (
        (doc["split"], doc["images"], doc["correct"]) == ("test", len(y), correct) == ("test", 269, correct)
    )
    assert doc["accuracy"] == correct / 269
    confusion = np.array(doc["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 269 and np.trace(confusion) == correct
    assert confusion[3].sum() == (y == 3).sum() and confusion[3, 5] == ((y == 3) & (pred == 5)).sum()
    three = doc["classes"][3]
    assert three["class"] == "3" and three["support"] == int((y == 3).sum())
    assert three["recall"] == ((y == 3) & (pred == 3)).sum() / (y == 3).sum()
    assert three["precision"] == (
        ((y == 3) & (pred == 3)).sum() / (pred == 3).sum() if (pred == 3).any() else 0
    )
    wrong = min(16, 269 - correct)
    assert result.stderr.splitlines()[0] == (
        f"wrote metrics.json, confusion_matrix.png, mistakes.png to {out}/, the {wrong} most confident mistakes"
    )
    real(out / "confusion_matrix.png", (670, 570))  # 4.5 + 1.2 + 1 inches wide for 10 classes, at 100 dpi
    rows = -(-wrong // 8)
    real(out / "mistakes.png", (8 + min(wrong, 8) * 136 if wrong > 2 else 360, 30 + rows * 172 + 8))
    # the validation split
    result = runner.invoke(app, ["evaluate", str(spec), "-w", str(ckpt), "-o", str(out), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["images"] == 269


def test_evaluate_logs_to_mlflow(trained, tmp_path):
    from mlflow import MlflowClient

    _, spec, ckpt, uri, run_id = trained
    # a checkpoint, tracked: a new run
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        "evaluate",
        str(spec),
        "-w",
        str(ckpt),
        "-o",
        str(tmp_path / "a"),
        "--track",
        "--tracking-uri",
        store,
    ]
    result = runner.invoke(app, [*args, "--experiment", "scores"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "a" / "metrics.json").read_text())
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("scores").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "evaluate digits_cnn"
    assert run.data.tags["specdsl.role"] == "evaluate" and run.data.tags["specdsl.split"] == "test"
    assert run.data.metrics["evaluate.test.accuracy"] == doc["accuracy"]
    assert run.data.metrics["evaluate.test.precision.3"] == doc["classes"][3]["precision"]
    assert len(run.data.metrics) == 2 + 3 + 3 * 10
    artifacts = ["evaluate/confusion_matrix.png", "evaluate/metrics.json", "evaluate/mistakes.png"]
    assert sorted(f.path for f in client.list_artifacts(run.info.run_id, "evaluate")) == artifacts
    assert result.stderr.splitlines()[-1].startswith(f"MLflow: run {run.info.run_id} in experiment `scores`")
    # the training run: its own spec and model, the scores logged into it
    result = runner.invoke(
        app, ["evaluate", "--run", run_id, "--tracking-uri", uri, "-o", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    metrics = client.get_run(run_id).data.metrics
    assert metrics["evaluate.test.accuracy"] == doc["accuracy"]
    assert sorted(f.path for f in client.list_artifacts(run_id, "evaluate")) == artifacts


def test_evaluate_errors(trained, tmp_path):
    _, spec, ckpt, _, _ = trained
    bare = write_spec(tmp_path, data=None, train=None, name="bare.yaml")
    result = runner.invoke(app, ["evaluate", str(bare), "-w", str(ckpt)])
    assert (result.exit_code, result.stderr) == (
        4,
        "error: there are no images to evaluate: the spec has no `data:` section and none was given. Pass "
        "--data (a folder of images, or a dataset name: see `specdsl data list`).\n",
    )
    result = runner.invoke(app, ["evaluate", str(spec), "-w", str(tmp_path / "nothing")])
    assert (result.exit_code, result.stderr) == (
        5,
        f"error: the checkpoint {tmp_path / 'nothing'} does not exist. Pass the best.pt (or best.weights.h5) "
        "that `specdsl train` wrote, e.g. checkpoints/<name>/best.pt.\n",
    )


def test_scores_are_scikit_learns():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    pred[pred == 4] = 3  # class 4 never predicted: precision 0, as sklearn's zero_division=0
    s = scores(true, pred, 5)
    p, r, f, n = metrics.precision_recall_fscore_support(true, pred, labels=range(5), zero_division=0)
    assert np.allclose(s.precision, p) and np.allclose(s.recall, r) and np.allclose(s.f1, f)
    assert s.support.tolist() == n.tolist() and s.precision[4] == 0.0
    assert s.confusion.tolist() == metrics.confusion_matrix(true, pred, labels=range(5)).tolist()
    assert s.accuracy == metrics.accuracy_score(true, pred)


def test_the_most_confident_mistakes_come_first():
    true = np.array([0, 1, 2, 0, 1, 2])
    pred = np.array([1, 1, 0, 2, 0, 2])
    confidence = np.array([0.6, 0.99, 0.9, 0.6, 0.7, 0.5])
    assert confident_mistakes(true, pred, confidence, 10).tolist() == [2, 4, 0, 3]
    assert confident_mistakes(true, pred, confidence, 2).tolist() == [2, 4]
    assert confident_mistakes(true, true, confidence, 2).tolist() == []


def test_a_sigmoid_classifier_of_an_image_folder(tmp_path):
    """One sigmoid unit over a folder of cat and dog pictures (fresh weights, a .npz checkpoint): the class names
    are the folder's, the two probabilities (1 - p, p); a picture of another size and mode is decoded as the
    folder's images are (PIL: converted, then resized bilinear)."""
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels, mode="RGB").save(tmp_path / "pets" / label / f"{i}.png")
    spec = tmp_path / "pets.yaml"
    spec.write_text(
        "name: pets\ninput: [8, 8, 3]\nlayers:\n  - flatten\n  - dense: {units: 1, activation: sigmoid}\n"
        "data: {dataset: folder, path: pets}\n"
    )
    plan = specdsl.check(spec)
    torch.manual_seed(0)
    model = specdsl.build(plan, "torch").eval()
    npz = W.save(model, plan, tmp_path / "pets.npz")
    big = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8), mode="L").save(big)
    doc = predict_json(str(spec), "-w", str(npz), str(big))
    assert doc["classes"] == ["cat", "dog"]
    pixels = np.asarray(Image.open(big).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    with torch.no_grad():
        p = float(model(torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None])[0, 0])
    (image,) = doc["images"]
    assert np.abs(np.array(image["probabilities"]) - [1 - p, p]).max() < 1e-6
    assert image["top"][0]["class"] == ("dog" if p >= 0.5 else "cat")
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", str(spec), "-w", str(npz), "-o", str(out), "--mistakes", "3"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [c["class"] for c in metrics["classes"]] == ["cat", "dog"]
    assert (
        np.array(metrics["confusion"]).sum()
        == metrics["images"]
        == sum(c["support"] for c in metrics["classes"])
    )
    wrong = metrics["images"] - metrics["correct"]
    if wrong:
        real(out / "mistakes.png", (8 + min(wrong, 3) * 136 if wrong > 2 else 360, 30 + 172 + 8))
