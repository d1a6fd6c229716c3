"""A user's layer kind as a plug-in: a real distribution (a folder with ``*.dist-info/METADATA`` and
``entry_points.txt``) put on the path of a fresh process declares ``channel_scale`` (its spec model and shape rule,
its torch and Keras builders, as docs/plugins.md shows them); validate, summary and both backends take it, and a
broken plug-in is one located message naming it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import ROOT

# the plug-in's three modules are the ones docs/plugins.md shows, in its order
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
KIND, TORCH, KERAS = re.findall(r"^```python\n(.*?)^```\n", DOC, re.S | re.M)

SPEC = """\
input: [8, 8, 3]
layers:
  - conv2d: {filters: 4, kernel: 3}
  - channel_scale
  - global_avgpool2d
  - dense: 2
"""


def _distribution(folder: Path, name: str, modules: dict[str, str], entry_points: str) -> Path:
    """A distribution as an installer leaves it: its package's modules and ``<name>-1.0.dist-info``."""
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for module, text in modules.items():
        (package / f"{module}.py").write_text(text)
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return folder


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "KERAS_BACKEND": "torch"}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture
def plugin(tmp_path) -> Path:
    return _distribution(
        tmp_path / "site",
        "specdsl_channel_scale",
        {"kind": KIND, "kind_torch": TORCH, "kind_keras": KERAS},
        """\
        [specdsl.layers]
        channel_scale = specdsl_channel_scale.kind
        [specdsl.torch]
        channel_scale = specdsl_channel_scale.kind_torch
        [specdsl.keras]
        channel_scale = specdsl_channel_scale.kind_keras
        """,
    )


def test_a_plugin_kind_validates_counts_and_builds_in_both_backends(plugin, tmp_path):
    (tmp_path / "model.yaml").write_text(SPEC)
    validate = _run([sys.executable, "-m", "specdsl", "validate", "model.yaml"], plugin, tmp_path)
    assert (validate.returncode, validate.stderr) == (0, "")
    summary = _run(
        [sys.executable, "-m", "specdsl", "summary", "model.yaml", "--format", "json"], plugin, tmp_path
    )
    assert summary.returncode == 0, summary.stderr
    rows = json.loads(summary.stdout)["layers"]
    assert [(r["name"], r["params"]) for r in rows][1:3] == [("conv2d", 112), ("channel_scale", 4)]
    assert json.loads(summary.stdout)["totals"]["params"] == 112 + 4 + 10
    script = textwrap.dedent(
        """\
        import sys
        import numpy as np, torch, keras, specdsl
        import specdsl.weights as W
        plan = specdsl.check("model.yaml")
        model = specdsl.build(plan, "torch")
        for p in model.parameters():
            torch.nn.init.uniform_(p, 0.5, 1.5) if p.dim() == 1 else None
        kmodel = W.load_into(specdsl.build(plan, "keras"), plan, W.save(model.eval(), plan, "w.npz"))
        x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")
        with torch.no_grad():
            t = model(torch.from_numpy(np.moveaxis(x, -1, 1))).numpy()
        k = keras.ops.convert_to_numpy(kmodel(x))
        print(sum(p.numel() for p in model.parameters()), kmodel.count_params(), bool(np.allclose(t, k, atol=1e-5)))
        print("class ChannelScale(nn.Module)" in specdsl.backends.get_backend("torch").source(plan))
        """
    )
    built = _run([sys.executable, "-c", script], plugin, tmp_path)
    assert built.returncode == 0, built.stderr
    assert built.stdout.split() == ["126", "126", "True", "True"]
    reference = _run([sys.executable, "-m", "specdsl", "schema", "--kinds"], plugin, tmp_path)
    section = reference.stdout[reference.stdout.find("## `channel_scale`") :]
    assert section.startswith("## `channel_scale`\n\nKeras `ChannelScale`"), section[:300]
    assert "A learned scale per channel." in section[:300]


def test_validate_of_built_in_kinds_never_looks_for_plugins(plugin, tmp_path):
    script = (
        "import importlib.metadata as m, specdsl\n"
        "seen = []\n"
        "real = m.entry_points\n"
        "m.entry_points = lambda **kw: seen.append(kw) or real(**kw)\n"
        "specdsl.check({'input': [4], 'layers': [{'dense': 2}]})\n"
        "print(seen, 'torch' in __import__('sys').modules)\n"
    )
    run = _run([sys.executable, "-c", script], plugin, tmp_path)
    assert run.stdout.strip() == "[] False", run.stderr


def test_a_broken_plugin_is_one_located_message_naming_it(tmp_path):
    site = _distribution(
        tmp_path / "site",
        "specdsl_broken",
        {"kind": "import not_a_module_anywhere\n"},
        """\
        [specdsl.layers]
        wobble = specdsl_broken.kind
        """,
    )
    (tmp_path / "model.yaml").write_text("input: [4]\nlayers:\n  - wobble\n")
    run = _run([sys.executable, "-m", "specdsl", "validate", "model.yaml"], site, tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.strip() == (
        "error: model.yaml:3:5: layers[0]: plug-in `wobble` (specdsl_broken.kind, specdsl.layers, from "
        "specdsl_broken) failed to load: ModuleNotFoundError: No module named 'not_a_module_anywhere'. Fix the "
        "plug-in, or uninstall its distribution."
    )
