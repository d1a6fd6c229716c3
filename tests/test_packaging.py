"""What the wheel holds: every package folder of specdsl/ is listed in pyproject.toml, and the networks of
examples/ ship as specdsl/zoo (the bundled backbones)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_is_listed():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "specdsl").rglob("__init__.py")}
    assert set(CONFIG["packages"]) == on_disk | {"specdsl.zoo"}, (
        "list the new package in pyproject.toml's [tool.setuptools] packages"
    )


def test_the_examples_ship_as_the_zoo():
    assert CONFIG["package-dir"] == {"specdsl.zoo": "examples"}
    assert CONFIG["package-data"]["specdsl.zoo"] == ["*.yaml"]
    assert not (ROOT / "specdsl" / "zoo").exists()  # one copy: examples/, mapped at build time
