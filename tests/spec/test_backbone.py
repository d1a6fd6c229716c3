"""The `backbone:` item: another spec's layers expanded as a block's, with or without its top (static only)."""

from __future__ import annotations

from pathlib import Path

import pytest

import specdsl
from specdsl.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _error(source) -> str:
    with pytest.raises(SpecError) as e:
        specdsl.check(source)
    return str(e.value)


TINY = """\
name: tiny
input: [16, 16, 3]
params: {width: 8}
layers:
  - conv2d: {filters: $width, kernel: 3, padding: same, name: stem}
  - conv2d: {filters: "${width * 2}", kernel: 3, strides: 2, name: body}
  - dense: {units: 5, name: head}
"""


def test_a_spec_file_as_backbone_planned_on_the_incoming_shape(tmp_path):
    (tmp_path / "nets").mkdir()
    _write(tmp_path / "nets", "tiny.yaml", TINY)
    spec = _write(
        tmp_path,
        "net.yaml",
        "input: [32, 32, 1]\n"
        "layers:\n"
        "  - backbone: {spec: nets/tiny.yaml, params: {width: 4}, name: base}\n"
        "  - global_avgpool2d\n",
    )
    plan = specdsl.check(spec)
    # the named layers take the use's name as prefix, as a block use's do; shapes follow the 32x32x1 input
    assert [(n.name, n.shape) for n in plan.layers] == [
        ("base_stem", (32, 32, 4)),
        ("base_body", (15, 15, 8)),
        ("base_head", (15, 15, 5)),
        ("global_average_pooling2d", (5,)),
    ]
    (bb,) = plan.spec.backbones
    assert (bb.name, bb.network, bb.bundled, bb.include_top, bb.weights, bb.nodes) == (
        "base",
        "tiny",
        False,
        True,
        None,
        ("base_stem", "base_body", "base_head"),
    )
    assert bb.spec_file == str(tmp_path / "nets" / "tiny.yaml")


def test_the_top_a_spec_names_is_dropped(tmp_path):
    _write(tmp_path, "tiny.yaml", TINY + "top: head\n")
    specdsl.check(tmp_path / "tiny.yaml")  # `top:` is part of the language
    spec = _write(
        tmp_path,
        "net.yaml",
        "input: [16, 16, 3]\nlayers:\n  - backbone: {spec: tiny.yaml, include_top: false, weights: w.h5}\n",
    )
    plan = specdsl.check(spec)
    assert [n.name for n in plan.layers] == ["tiny_stem", "tiny_body"]
    assert plan.spec.backbones[0].weights == str(tmp_path / "w.h5")


def test_the_default_top_starts_at_the_first_flatten_or_global_pooling():
    plan = specdsl.check(
        {
            "input": [64, 64, 3],
            "layers": [{"backbone": {"spec": "resnet50", "include_top": False, "name": "base"}}],
        }
    )
    names = [n.name for n in plan.layers]
    assert names[0] == "zero_padding2d" and "base_conv1_conv" in names
    assert plan.layers[-1].kind == "activation" and plan.layers[-1].shape == (2, 2, 2048)
    assert plan.params == 23_587_712


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "  - backbone: {spec: vgg61}\n",
            "3:22: layers[0] (backbone): no bundled network `vgg61`; did you mean `vgg16`? Bundled: ",
        ),
        (
            "  - backbone: {spec: tiny.yaml, include_top: false}\n",
            "tiny.yaml: layers[0] (backbone): has no top to drop (no top-level flatten or global pooling "
            "layer), so `include_top: false` cannot cut it. Name the first layer of its top in the spec: `top: NAME`.",
        ),
        (
            "  - backbone: {spec: tiny.yaml, weights: imagenet}\n",
            "3:42: layers[0] (backbone): `weights: imagenet` is for the bundled networks; for a spec file give "
            "its weights file.",
        ),
        (
            "  - backbone: {spec: tiny.yaml, params: {widht: 2}}\n",
            "3:42: unknown key `widht` in the params of backbone `tiny`; did you mean `width`? Valid keys: width.",
        ),
        (
            "  - backbone: {spec: tiny.yaml, include_top: 1}\n",
            "3:46: layers[0] (backbone): `include_top` is true or false, but got int (1).",
        ),
        ("  - backbone: {include_top: false}\n", "3:5: layers[0] (backbone): a backbone needs `spec:`"),
    ],
)
def test_located_errors(tmp_path, text, message):
    _write(tmp_path, "tiny.yaml", TINY)
    spec = _write(tmp_path, "net.yaml", "input: [16, 16, 3]\nlayers:\n" + text)
    assert message in _error(spec)


def test_a_top_that_names_no_layer(tmp_path):
    path = _write(tmp_path, "tiny.yaml", TINY + "top: haed\n")
    assert _error(path) == (
        f"{path}:8:6: `top: haed` names no top-level layer; did you mean `head`? top-level names: stem, body, head."
    )


def test_backbone_is_not_a_block_name():
    message = _error(
        {"input": [8], "blocks": {"backbone": {"layers": ["flatten"]}}, "layers": [{"dense": 1}]}
    )
    assert message == "<dict>: block name `backbone` is already a layer kind; choose another name."


def test_the_bundled_networks_are_the_examples():
    from specdsl.spec._backbone import zoo_dir, zoo_names

    assert zoo_dir() == ROOT / "examples"
    assert zoo_names() == sorted(p.stem for p in (ROOT / "examples").glob("*.yaml"))


def test_trainable_false_on_the_use_freezes_the_backbone():
    pytest.importorskip("specdsl.spec._trainable")  # a block use's `trainable:`, which the backbone passes on
    plan = specdsl.check(
        {
            "input": [32, 32, 3],
            "layers": [
                {"backbone": {"spec": "vgg16", "include_top": False, "trainable": False, "name": "base"}},
                "global_avgpool2d",
                {"dense": {"units": 2}},
            ],
        }
    )
    assert (plan.params, plan.trainable, plan.non_trainable) == (14_715_714, 1026, 14_714_688)
