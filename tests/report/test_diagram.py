"""`specdsl diagram` and specdsl.report's diagram: one box per plan node, one arrow per input, shapes on the arrows,
block frames, every user text kept as text (never DOT), the CLI's files and errors."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import EXAMPLES, ROOT, example_files
from typer.testing import CliRunner

import specdsl
from specdsl._text import terminal
from specdsl.cli import app
from specdsl.report import describe, diagram, diagram_dot
from specdsl.report._diagram import block_frames

pytestmark = pytest.mark.skipif(
    not __import__("shutil").which("dot"), reason="Graphviz's dot is not installed"
)

SVG = "{http://www.w3.org/2000/svg}"
runner = CliRunner()


def svg_parts(svg: bytes) -> dict[str, list[ET.Element]]:
    """The SVG's groups by class (node, edge, cluster), as Graphviz writes them."""
    root = ET.fromstring(svg)
    groups: dict[str, list[ET.Element]] = {"node": [], "edge": [], "cluster": []}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") in groups:
            groups[g.get("class")].append(g)
    return groups


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


def title_words(svg: bytes) -> list[str]:
    """The words of the diagram's title, the model's name (Graphviz writes runs of spaces as no-break spaces)."""
    return texts(ET.fromstring(svg).find(f"{SVG}g"))[0].replace("\u00a0", " ").split()


def frames(plan: specdsl.Plan) -> set[str]:
    return {key for node in plan.nodes for key, _ in block_frames(node.path)}


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_every_example_is_one_box_per_node_and_one_arrow_per_input(path):
    plan = specdsl.check(path)
    parts = svg_parts(diagram(plan, "svg"))
    assert len(parts["node"]) == len(plan.nodes)
    assert len(parts["edge"]) == sum(len(n.inputs) for n in plan.nodes)
    assert len(parts["cluster"]) == len(frames(plan))
    # every arrow is labelled with the shape that flows along it, channels-last
    expected = sorted("x".join(map(str, plan[i].shape)) for n in plan.nodes for i in n.inputs)
    assert sorted(t for e in parts["edge"] for t in texts(e)) == expected


def test_lenet5_boxes_read_as_the_spec_writes_the_layers():
    plan = specdsl.check(EXAMPLES / "lenet5.yaml")
    parts = svg_parts(diagram(plan, "svg"))
    assert [texts(n) for n in parts["node"]] == [
        ["input", "input 32x32x1"],
        ["conv2d", "conv2d 6 5x5 tanh", "156 params"],
        ["average_pooling2d", "avgpool2d 2x2"],
        ["conv2d_1", "conv2d 16 5x5 tanh", "2,416 params"],
        ["average_pooling2d_1", "avgpool2d 2x2"],
        ["conv2d_2", "conv2d 120 5x5 tanh", "48,120 params"],
        ["flatten"],
        ["dense", "dense 84 tanh", "10,164 params"],
        ["dense_1", "dense 10 softmax", "850 params", "output 10"],
    ]


def test_resnet_branches_and_blocks():
    plan = specdsl.check(EXAMPLES / "resnet50.yaml")
    dot = diagram_dot(plan)
    assert dot.count(" -> ") == 192 and dot.count("subgraph cluster_") == 4 + 16  # 4 stages, 16 blocks
    adds = [n for n in plan.nodes if n.kind == "add"]
    assert len(adds) == 16 and all(len(n.inputs) == 2 for n in adds)
    parts = svg_parts(diagram(plan, "svg"))
    labels = sorted(texts(c)[0] for c in parts["cluster"])
    assert labels == ["conv_block"] * 4 + ["identity_block"] * 12 + ["stage"] * 4
    assert "conv1_conv" in texts(parts["node"][2]) and "conv2d 64 7x7 /2" in texts(parts["node"][2])


def test_frozen_layers_are_dashed_and_say_so():
    """A frozen layer with weights reads "frozen" as in the summary and has a dashed outline; a frozen layer
    without weights (the activation) and a trainable one look as ever."""
    plan = specdsl.check(
        {
            "input": [8, 8, 1],
            "blocks": {"base": {"layers": [{"conv2d": {"filters": 2, "kernel": 3}}, "batchnorm", "relu"]}},
            "layers": [{"base": {"trainable": False}}, "flatten", {"dense": {"units": 3}}],
        }
    )
    boxes = {texts(n)[0]: texts(n)[1:] for n in svg_parts(diagram(plan, "svg"))["node"]}
    assert boxes == {
        "input": ["input 8x8x1"],
        "conv2d": ["conv2d 2 3x3", "20 params, frozen"],
        "batch_normalization": ["batchnorm", "8 params, frozen"],
        "activation": ["activation relu"],
        "flatten": [],
        "dense": ["dense 3", "219 params", "output 3"],
    }
    dot = diagram_dot(plan).splitlines()
    dashed = [line.split()[0] for line in dot if 'style="rounded,filled,dashed"' in line]
    assert dashed == ["n1", "n2"]


def test_block_frames_follow_the_path():
    assert block_frames("layers[6].stage.layers[0].conv_block.layers[2]") == [
        ("layers[6].stage", "stage"),
        ("layers[6].stage.layers[0].conv_block", "conv_block"),
    ]
    assert block_frames("layers[6].stage.layers[1].repeat[0].layers[0].identity_block.layers[3]") == [
        ("layers[6].stage", "stage"),
        ("layers[6].stage.layers[1].repeat[0].layers[0].identity_block", "identity_block"),
    ]
    assert block_frames("layers[3]") == [] and block_frames("input") == []
    plan = specdsl.check(EXAMPLES / "resnet50.yaml")
    assert "subgraph" not in diagram_dot(plan, clusters=False)


@pytest.mark.parametrize(
    "layer, text",
    [
        ({"conv2d": {"filters": 64, "kernel": 3, "strides": 2, "padding": "same"}}, "conv2d 64 3x3 /2 same"),
        (
            {"conv2d": {"filters": 8, "kernel": [1, 7], "dilation": 2, "activation": "relu"}},
            "conv2d 8 1x7 dilation 2x2 relu",
        ),
        (
            {"conv2d": {"filters": 8, "kernel": 3, "padding": 1, "use_bias": False, "groups": 2}},
            "conv2d 8 3x3 pad 1 groups 2 no bias",
        ),
        ({"conv2d": {"filters": 8, "kernel": 3, "strides": [2, 1]}}, "conv2d 8 3x3 /2x1"),
        (
            {"separable_conv2d": {"filters": 16, "kernel": 3, "depth_multiplier": 2}},
            "separable_conv2d 16 3x3 depth_multiplier 2",
        ),
        ({"maxpool2d": {"pool": 3, "strides": 2}}, "maxpool2d 3x3 /2"),
        ({"maxpool2d": 2}, "maxpool2d 2x2"),
        ({"dropout": 0.25}, "dropout 0.25"),
        ({"dense": {"units": 10, "activation": "softmax"}}, "dense 10 softmax"),
        ({"batchnorm": {"momentum": 0.9, "scale": False}}, "batchnorm no scale"),
        ({"zero_padding2d": [[0, 1], [0, 1]]}, "zero_padding2d pad 0x1x0x1"),
        (
            {"activation": {"function": "leaky_relu", "negative_slope": 0.1}},
            "activation leaky_relu negative_slope 0.1",
        ),
        ({"rescaling": 0.5}, "rescaling 0.5"),
        ({"reshape": [16, 8, 4]}, "reshape 16x8x4"),
        ("global_avgpool2d", "global_avgpool2d"),
    ],
)
def test_a_box_names_the_kind_and_the_arguments_not_left_at_their_defaults(layer, text):
    plan = specdsl.check({"input": [16, 16, 2], "layers": [layer]})
    assert describe(plan.nodes[1]) == text


HOSTILE = (
    'x"] ; n0 [label="pwned" URL="http://e"]; <b>{a|b}</b> \\N \\G & \' \\ end\n'
    "second line \x00\x1b[2J\u2028\u202e"
)


def hostile_spec(name: str) -> dict:
    return {
        "name": name,
        "input": [8, 8, 1],
        "blocks": {"blk": {"layers": [{"conv2d": {"filters": 2, "kernel": 3, "padding": "same"}}]}},
        "layers": ["blk", "flatten", {"dense": 2}],
    }


def test_a_hostile_name_stays_text():
    plan = specdsl.check(hostile_spec(HOSTILE))
    svg = diagram(plan, "svg")
    parts = svg_parts(svg)
    assert len(parts["node"]) == 4 and len(parts["edge"]) == 3 and len(parts["cluster"]) == 1
    title = texts(ET.fromstring(svg).find(f"{SVG}g"))[0]
    assert title == terminal(HOSTILE)  # quotes, brackets, braces, backslashes, \N and \G as written
    root = ET.fromstring(svg)
    assert not list(root.iter(f"{SVG}a"))  # no link made of the URL="..." in the name
    assert not [k for e in root.iter() for k in e.attrib if "href" in k.lower() or k == "URL"]
    assert texts(parts["node"][0])[0] == "input"


@pytest.mark.parametrize("name", ["]", "[", "[x]", "a]b", "<b>]</b>"])
def test_brackets_in_a_name_are_drawn_as_written(name):
    svg = diagram(specdsl.check({"name": name, "input": [4], "layers": [{"dense": 2}]}), "svg")
    assert title_words(svg) == name.split()


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=40))
@example("\ufffe\uffff \U0010ffff ]]> <![CDATA[ &amp; \u00a0")
def test_any_name_is_the_title_as_written(name):
    svg = diagram(specdsl.check({"name": name, "input": [4], "layers": [{"dense": 2}]}), "svg")
    shown = terminal(name).replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")  # XML cannot hold them
    assert title_words(svg) == shown.split()
    assert len(svg_parts(svg)["node"]) == 2


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("name, nodes", [("inceptionv3", 313), ("resnet50", 177)])
def test_large_models_are_laid_out_in_well_under_a_few_seconds(name, nodes):
    plan = specdsl.check(EXAMPLES / f"{name}.yaml")
    before = _child_cpu()
    svg = diagram(plan, "svg")
    svg_cpu = _child_cpu() - before
    png = diagram(plan, "png")
    png_cpu = _child_cpu() - before - svg_cpu
    assert len(svg_parts(svg)["node"]) == nodes and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg_cpu < 1.5 and png_cpu < 3.0, (
        svg_cpu,
        png_cpu,
    )  # dot's CPU time (measured: 0.15-0.25 s, 0.6-1.2 s)


def test_the_png_is_a_real_picture(tmp_path):
    from PIL import Image

    result = runner.invoke(
        app, ["diagram", str(EXAMPLES / "lenet5.yaml"), "-o", str(tmp_path / "lenet5.png")]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote {tmp_path / 'lenet5.png'} (lenet5: 9 nodes, 8 connections)\n"
    image = Image.open(tmp_path / "lenet5.png").convert("RGB")
    width, height = image.size
    assert 250 < width < 450 and 700 < height < 1000  # 9 boxes under each other at 96 dpi
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # text, the boxes' fills, anti-aliasing
    white = max(count for count, colour in colours if colour == (255, 255, 255))
    assert white < 0.9 * width * height


def test_the_cli_writes_each_format_and_lays_out_left_to_right(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = str(EXAMPLES / "mnist_cnn.yaml")
    assert runner.invoke(app, ["diagram", spec]).exit_code == 0  # default: <name>.svg here
    ET.parse(tmp_path / "mnist_cnn.svg")
    assert (
        runner.invoke(app, ["diagram", spec, "-o", "m.dot", "--direction", "LR", "--no-clusters"]).exit_code
        == 0
    )
    dot = (tmp_path / "m.dot").read_text()
    edges = sum(len(n.inputs) for n in specdsl.check(spec).nodes)
    assert dot.startswith("digraph model {\n  graph [rankdir=LR,") and dot.count(" -> ") == edges == 4
    assert runner.invoke(app, ["diagram", spec, "-o", "m.pdf"]).exit_code == 0
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"


def test_cli_errors_are_one_line(tmp_path, monkeypatch):
    spec = str(EXAMPLES / "mnist_cnn.yaml")
    result = runner.invoke(app, ["diagram", spec, "-o", str(tmp_path / "m.jpg")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: a diagram is written as .svg, .png, .pdf, .dot, but the output file "
        f"{tmp_path / 'm.jpg'} ends in `jpg`. Name it model.svg, model.png, model.pdf or "
        "model.dot.\n"
    )
    result = runner.invoke(app, ["diagram", spec, "-o", str(tmp_path / "missing" / "m.svg")])
    assert result.exit_code == 6
    assert result.stderr == (
        f"error: cannot write {tmp_path / 'missing' / 'm.svg'} (No such file or directory). "
        "Pass -o another path.\n"
    )
    result = runner.invoke(app, ["diagram", str(ROOT / "search_spaces" / "catsdogs.yaml")])
    assert result.exit_code == 2 and "This file is a search space" in result.stderr
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    result = runner.invoke(app, ["diagram", spec, "-o", str(tmp_path / "m.svg")])
    assert result.exit_code == 3
    assert result.stderr == (
        "error: Drawing a diagram needs Graphviz's `dot` program, which is not installed. "
        "Install it: apt-get install graphviz (Debian, Ubuntu), brew install graphviz (macOS), "
        "conda install graphviz, or https://graphviz.org/download/\n"
    )
    assert not (tmp_path / "m.svg").exists()


def test_diagram_imports_no_framework(tmp_path):
    code = (
        "import sys; from specdsl.cli import main; sys.argv = ['specdsl', 'diagram', sys.argv[1], '-o', "
        "sys.argv[2]]\ntry:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print(sorted(m for m in ('torch', 'keras', 'optuna', 'mlflow', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "vgg16.yaml"), str(tmp_path / "v.svg")],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"


HOSTILE_FILES = sorted((Path(__file__).resolve().parents[1] / "security" / "hostile").glob("*.yaml"))


def test_every_hostile_spec_that_plans_draws_its_name_as_text():
    drawn = 0
    for path in HOSTILE_FILES:
        try:
            plan = specdsl.check(path)
        except specdsl.SpecdslError:
            continue
        svg = diagram(plan, "svg")
        assert title_words(svg) == terminal(plan.name).split(), path.name
        assert len(svg_parts(svg)["node"]) == len(plan.nodes), path.name
        drawn += 1
    assert drawn >= 5
