"""Backbones: a bundled network or a spec file used as a block, with or without its top, and its weights loaded by
structure from keras.applications' files, torch state dicts and the published imagenet files (downloaded from a
real HTTP server on loopback, checked against their checksum)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

import specdsl
import specdsl.weights as W
from specdsl.errors import WeightsError

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

A = keras.applications


def _legacy_h5(model, path: Path) -> Path:
    """The layout keras.applications publishes its weights in (Keras 2's h5: layer_names in order)."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def _randomize_batchnorms(model, seed: int = 0) -> None:
    """Moving statistics away from 0 and 1, so that a batch norm loaded wrong shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shapes[0]).astype("float32"),
                    rng.normal(0, 0.1, shapes[1]).astype("float32"),
                    rng.normal(0, 0.1, shapes[2]).astype("float32"),
                    rng.uniform(0.5, 1.5, shapes[3]).astype("float32"),
                ]
            )


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text(text)
    return path


def _outputs(plan, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The outputs of the Keras and the torch model of ``plan`` (weights loaded by specdsl.build), channels last."""
    k = keras.ops.convert_to_numpy(specdsl.build(plan, "keras")(x, training=False))
    model = specdsl.build(plan, "torch").eval()
    with torch.no_grad():
        t = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    return k, t.transpose(0, 2, 3, 1) if t.ndim == 4 else t


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    """keras.applications' MobileNetV2 (alpha 0.35, 64x64, no top, weights=None, batch norms randomized), its
    weights as the h5 file keras.applications publishes, and its output on a batch."""
    folder = tmp_path_factory.mktemp("mobilenet")
    model = A.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3), alpha=0.35)
    _randomize_batchnorms(model)
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(model(x, training=False))
    return _legacy_h5(model, folder / "mobilenet_v2_0.35_notop.h5"), x, want, model.count_params()


MOBILENET = """\
input: [64, 64, 3]
layers:
  - backbone:
      spec: mobilenetv2
      include_top: false
      params: {alpha: 0.35}
      weights: WEIGHTS
      name: base
"""


def test_keras_applications_h5_loads_into_both_backends(mobilenet, tmp_path):
    h5, x, want, count = mobilenet
    plan = specdsl.check(_spec(tmp_path, MOBILENET.replace("WEIGHTS", str(h5))))
    assert plan.params == count == 410_208
    k, t = _outputs(plan, x)
    assert k.shape == t.shape == want.shape == (2, 2, 2, 1280)
    np.testing.assert_allclose(k, want, atol=1e-4)
    np.testing.assert_allclose(t, want, atol=1e-4)


def test_a_head_on_the_backbone(mobilenet, tmp_path):
    h5, x, want, _ = mobilenet
    text = MOBILENET.replace("WEIGHTS", h5.name) + (
        "  - global_avgpool2d\n  - dense: {units: 1, activation: sigmoid, name: head}\n"
    )
    (tmp_path / h5.name).write_bytes(h5.read_bytes())  # the weights path is read relative to the spec
    plan = specdsl.check(_spec(tmp_path, text))
    assert plan.params == 410_208 + 1281
    (bb,) = plan.spec.backbones
    assert (bb.name, bb.network, bb.include_top, bb.weights) == (
        "base",
        "mobilenetv2",
        False,
        str(tmp_path / h5.name),
    )
    assert plan.layers[-1].name == "head" and "head" not in bb.nodes and len(bb.nodes) == 149
    keras_model = specdsl.build(plan, "keras")
    features = keras.Model(keras_model.inputs[0], keras_model.get_layer(bb.nodes[-1]).output)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(features(x, training=False)), want, atol=1e-4)


def test_a_file_that_does_not_fit_names_the_first_layer_that_differs(mobilenet, tmp_path):
    h5 = mobilenet[0]
    text = MOBILENET.replace("WEIGHTS", str(h5)).replace("[64, 64, 3]", "[64, 64, 1]")
    plan = specdsl.check(_spec(tmp_path, text))
    zoo = Path(plan.spec.backbones[0].spec_file)
    with pytest.raises(WeightsError) as e:
        specdsl.build(plan, "torch")
    assert str(e.value) == (
        f"{tmp_path / 'net.yaml'}:3:5: layers[0] (backbone mobilenetv2): backbone `base`: `conv2d`'s kernel is "
        f"(3, 3, 1, 16), but layer `Conv1` of {h5} has (3, 3, 3, 16) there, matched in order "
        f"(layers[0].mobilenetv2.layers[0] at {zoo}:45:5). Is the file the weights of this architecture (the same "
        "input shape, widths and layer order)?"
    )
    wider = MOBILENET.replace("WEIGHTS", str(h5)).replace("alpha: 0.35", "alpha: 0.5")
    differs = (
        r"`conv2d_3`'s kernel is \(1, 1, 48, 16\), but layer `block_1_project` of .* has \(1, 1, 48, 8\)"
    )
    with pytest.raises(WeightsError, match=differs):
        specdsl.build(specdsl.check(_spec(tmp_path, wider)), "keras")


def test_counts_match_keras_applications_without_top():
    # keras.applications built with weights=None, include_top=False (the measured counts written down)
    sizes = {"vgg16": 32, "resnet50": 32, "inceptionv3": 75, "mobilenetv2": 32}
    counts = {
        "vgg16": 14_714_688,
        "resnet50": 23_587_712,
        "inceptionv3": 21_802_784,
        "mobilenetv2": 2_257_984,
    }
    for network, size in sizes.items():
        plan = specdsl.check(
            {"input": [size, size, 3], "layers": [{"backbone": {"spec": network, "include_top": False}}]}
        )
        assert plan.params == counts[network], network
    assert A.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)).count_params() == counts["vgg16"]
    resnet = A.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert resnet.count_params() == counts["resnet50"]
    with_top = specdsl.check({"input": [224, 224, 3], "layers": [{"backbone": {"spec": "vgg16"}}]})
    assert with_top.params == 138_357_544


def test_torchvision_state_dict_with_its_classifier_loads_without_top(tmp_path):
    """A state dict laid out as torchvision's vgg16 (features.N.weight in OIHW, then the classifier's Linear layers)
    loads into a VGG16 backbone without top: the classifier is the top it dropped."""
    model = A.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    rng = np.random.default_rng(2)
    state = {}
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision's features: convs between pools
    for index, conv in zip(indices, convs, strict=True):
        kernel, bias = conv.get_weights()
        kernel = rng.normal(0, 0.05, kernel.shape).astype("float32")
        bias = rng.normal(0, 0.05, bias.shape).astype("float32")
        conv.set_weights([kernel, bias])
        state[f"features.{index}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        state[f"features.{index}.bias"] = torch.from_numpy(bias)
    for i, (n_out, n_in) in enumerate([(64, 512), (64, 64), (10, 64)]):  # a classifier, small here
        state[f"classifier.{3 * i}.weight"] = torch.zeros(n_out, n_in)
        state[f"classifier.{3 * i}.bias"] = torch.zeros(n_out)
    pth = tmp_path / "vgg16-397923af.pth"
    torch.save(state, pth)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(model(x))
    text = "input: [32, 32, 3]\nlayers:\n  - backbone: {spec: vgg16, include_top: false, weights: vgg16-397923af.pth}\n"
    k, t = _outputs(specdsl.check(_spec(tmp_path, text)), x)
    np.testing.assert_allclose(k, want, atol=1e-4)
    np.testing.assert_allclose(t, want, atol=1e-4)

    # with its top, the classifier is matched too: the first dense takes the 1x1x512 features
    top = text.replace("include_top: false", "include_top: true")
    plan = specdsl.check(_spec(tmp_path, top))
    with pytest.raises(
        WeightsError, match=r"`dense`'s kernel is `weight` \(4096, 512\) in torch's layout, but"
    ):
        W.backbone_arrays(plan, plan.spec.backbones[0], pth)

    del state["features.28.bias"]
    torch.save(state, pth)
    with pytest.raises(WeightsError) as e:
        specdsl.build(specdsl.check(_spec(tmp_path, text)), "keras")
    assert e.value.message == (
        "backbone `vgg16`: `conv2d_12`'s bias is `bias` (512,) in torch's layout, but the tensor of "
        f"{pth} there is `classifier.0.weight` (64, 512), matched in order "
        f"(layers[0].vgg16.layers[4].vgg_block.layers[0].repeat[2].layers[0] at "
        f"{Path(specdsl.check(_spec(tmp_path, text)).spec.backbones[0].spec_file)}:10:13)."
    )


def test_a_specdsl_checkpoint_of_the_backbone_spec_loads(tmp_path):
    lenet = specdsl.check("examples/lenet5.yaml")
    source = specdsl.build(lenet, "torch")
    W.save(source, lenet, tmp_path / "lenet5.npz")
    text = (
        "input: [32, 32, 1]\nlayers:\n  - conv2d: {filters: 1, kernel: 1}\n"
        "  - backbone: {spec: lenet5, weights: lenet5.npz}\n"
    )
    plan = specdsl.check(_spec(tmp_path, text))
    # the backbone's layers are named after the spec's own conv2d: matched in order, not by those names
    (bb,) = plan.spec.backbones
    assert bb.nodes[:2] == ("conv2d_1", "average_pooling2d")
    got = W.get_arrays(specdsl.build(plan, "torch"), plan)
    want = W.get_arrays(source, lenet)
    mine = [n for n in bb.nodes if n in got]
    theirs = [n.name for n in W.weighted_nodes(lenet)]
    assert mine == ["conv2d_1", "conv2d_2", "conv2d_3", "dense", "dense_1"] and len(theirs) == 5
    for a, b in zip(mine, theirs, strict=True):
        for x, y in zip(got[a], want[b], strict=True):
            np.testing.assert_array_equal(x, y)


class _Server:
    """An HTTP server on 127.0.0.1 (a free port) serving a folder, recording the paths asked for."""

    def __init__(self, root: Path):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    s = _Server(root)
    s.root = root
    yield s
    s.close()


PRETRAINED = "input: [32, 32, 1]\nlayers:\n  - backbone: {spec: lenet5, weights: imagenet, name: base}\n"


def test_imagenet_weights_are_downloaded_checked_and_cached(server, tmp_path, monkeypatch):
    lenet = specdsl.check("examples/lenet5.yaml")
    published = _legacy_h5(specdsl.build(lenet, "keras"), server.root / "lenet5_weights.h5")
    md5 = hashlib.md5(published.read_bytes()).hexdigest()
    # lenet5 as if Keras published its weights (the table entry is what a real network's is)
    monkeypatch.setitem(
        W.PRETRAINED, "lenet5", ("lenet5/", "lenet5_weights.h5", f"md5:{md5}", "x.h5", "md5:0")
    )
    monkeypatch.setenv(W.MIRROR_ENV, server.url + "/")
    monkeypatch.setenv("SPECDSL_CACHE", str(tmp_path / "cache"))
    plan = specdsl.check(_spec(tmp_path, PRETRAINED))
    model = specdsl.build(plan, "keras")
    cached = tmp_path / "cache" / "weights" / "lenet5_weights.h5"
    assert cached.read_bytes() == published.read_bytes()
    assert server.requests == ["/lenet5_weights.h5"]
    np.testing.assert_array_equal(
        model.get_layer("conv2d").get_weights()[0], W.read(published).layers[0].arrays[0]
    )
    specdsl.build(plan, "torch")  # from the cache: nothing is fetched again
    assert server.requests == ["/lenet5_weights.h5"]


def test_a_download_with_the_wrong_checksum_is_refused(server, tmp_path, monkeypatch):
    (server.root / "lenet5_weights.h5").write_bytes(b"not the weights")
    got = hashlib.md5(b"not the weights").hexdigest()
    monkeypatch.setitem(
        W.PRETRAINED, "lenet5", ("lenet5/", "lenet5_weights.h5", "md5:" + "0" * 32, "x", "md5:0")
    )
    monkeypatch.setenv(W.MIRROR_ENV, server.url)
    monkeypatch.setenv("SPECDSL_CACHE", str(tmp_path / "cache"))
    plan = specdsl.check(_spec(tmp_path, PRETRAINED))
    with pytest.raises(WeightsError) as e:
        specdsl.build(plan, "torch")
    assert str(e.value) == (
        f"{tmp_path / 'net.yaml'}:3:5: layers[0] (backbone lenet5): backbone `base`: could not download "
        f"lenet5_weights.h5: {server.url}/lenet5_weights.h5: md5 mismatch: expected {'0' * 32}, got {got}. "
        f"Set {W.MIRROR_ENV} to a folder URL that serves lenet5_weights.h5, or download it yourself and give its "
        "path: `weights: PATH`."
    )
    assert not (tmp_path / "cache" / "weights" / "lenet5_weights.h5").exists()


def test_the_published_files_are_keras_applications():
    assert W.PRETRAINED["vgg16"] == (
        "vgg16/",
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:64373286793e3c8b2b4e3219cbf3544b",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:6d6bbae143d832006294945121d1f1fc",
    )
    assert set(W.PRETRAINED) == {"vgg16", "resnet50", "inceptionv3"}


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (
            "mobilenetv2",
            "backbone `mobilenetv2`: Keras publishes no checksum of mobilenetv2's weights, so specdsl does not "
            "download them.",
        ),
        (
            "alexnet",
            "backbone `alexnet`: there are no published weights of `alexnet`; `weights: imagenet` is for vgg16, "
            "resnet50, inceptionv3.",
        ),
    ],
)
def test_networks_without_checked_published_weights(network, message):
    plan = specdsl.check(
        {
            "input": [227, 227, 3],
            "layers": [{"backbone": {"spec": network, "include_top": False, "weights": "imagenet"}}],
        }
    )
    with pytest.raises(WeightsError) as e:
        specdsl.build(plan, "torch")
    assert e.value.message == message


def test_compile_exports_the_model_with_the_backbone_weights(tmp_path):
    from typer.testing import CliRunner

    from specdsl.cli import app

    lenet = specdsl.check("examples/lenet5.yaml")
    h5 = _legacy_h5(specdsl.build(lenet, "keras"), tmp_path / "lenet5.h5")
    spec = _spec(tmp_path, "input: [32, 32, 1]\nlayers:\n  - backbone: {spec: lenet5, weights: lenet5.h5}\n")
    out = tmp_path / "net.keras"
    result = CliRunner().invoke(app, ["compile", str(spec), "-b", "keras", "-f", "keras", "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = W.read(out).layers
    published = W.read(h5).layers
    assert len(written) == len(published) == 5
    for mine, theirs in zip(written, published):
        for a, b in zip(mine.arrays, theirs.arrays, strict=True):
            np.testing.assert_array_equal(a, b)


def test_compile_to_source_says_the_backbone_weights_are_not_in_it(tmp_path):
    from typer.testing import CliRunner

    from specdsl.cli import app

    spec = _spec(tmp_path, "input: [32, 32, 1]\nlayers:\n  - backbone: {spec: lenet5, weights: lenet5.h5}\n")
    result = CliRunner().invoke(app, ["compile", str(spec), "-b", "torch", "-o", str(tmp_path / "net.py")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "net.py").read_text().startswith('"""')
    note = " ".join(result.stderr.split())
    assert note.startswith(
        f"note: the generated source builds {spec.stem} freshly initialized; its backbone's weights "
        f"({tmp_path / 'lenet5.h5'}) are loaded by specdsl.build or a compiled model file (--format "
    ), note


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_train_starts_from_the_backbone_weights(backend, digits, tmp_path):
    from specdsl.train import fit

    stem = {
        "input": [8, 8, 1],
        "layers": [{"conv2d": {"filters": 4, "kernel": 3, "padding": "same"}}, "flatten"],
    }
    stem_plan = specdsl.check(stem)
    W.save(specdsl.build(stem_plan, "torch"), stem_plan, tmp_path / "stem.npz")
    (tmp_path / "stem.yaml").write_text(yaml_dump(stem))
    spec = _spec(
        tmp_path,
        "input: [8, 8, 1]\nlayers:\n  - backbone: {spec: stem.yaml, include_top: false, weights: stem.npz}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n"
        "train: {optimizer: {name: sgd, lr: 1.0e-9}, epochs: 1, batch_size: 64}\n",
    )
    plan = specdsl.check(spec)
    result = fit(plan, dataset=digits, backend=backend)
    trained = W.get_arrays(result.model, plan)["conv2d"]
    for a, b in zip(trained, W.read(tmp_path / "stem.npz").layers[0].arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def yaml_dump(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc)
