"""Smoke test of benchmarks/augment_speed.py: both contenders run every operation once on a tiny batch, so the
benchmark cannot rot. The full comparison is run by hand: ``python benchmarks/augment_speed.py``."""

from __future__ import annotations

import importlib.util

import pytest
from support import ROOT

pytest.importorskip("torch")
pytest.importorskip("kornia")


def test_both_contenders_run_every_operation(capsys):
    spec = importlib.util.spec_from_file_location("augment_speed", ROOT / "benchmarks" / "augment_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--repeats", "1"], batches={"4x12x12": (4, 12)})
    assert [r["ops"] for r in rows] == ["all", "flip", "affine", "crop", "colour", "cutout"]
    assert all(r["best"]["specdsl"] > 0 and r["best"]["kornia"] > 0 for r in rows)
    assert "kornia/specdsl" in capsys.readouterr().out
