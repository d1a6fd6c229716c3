"""Smoke test of benchmarks/scale.py: the whole comparison on 24 tiny photos, one round, so the benchmark cannot
rot. The measurement is run by hand: ``python benchmarks/scale.py`` (3,000 photos at 150x150)."""

from __future__ import annotations

import importlib.util

import pytest
from support import ROOT

pytest.importorskip("torch")
pytest.importorskip("PIL")


def test_scale_compares_memory_and_disk_on_a_tiny_folder(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SPECDSL_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("scale", ROOT / "benchmarks" / "scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    summary = bench.main(["--images", "24", "--size", "20", "--rounds", "1", "--threads", "1"])
    assert set(summary) == {"memory", "disk", "ratios", "overlap", "median_overlap"}
    assert summary["memory"]["images_per_s"] > 0 and summary["disk"]["peak"] > 0
    assert len(summary["overlap"]) == 1
    out = capsys.readouterr().out
    assert "wrote 24 JPEGs at 20x20" in out and "disk / memory: peak RSS" in out and "overlap" in out
