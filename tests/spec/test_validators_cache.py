"""The validators' cache (specdsl/spec/_validators.py) changes how soon a validator exists, never what it accepts.

Each check runs in a fresh process, since the cache is read once per process: the first process builds every
validator with pydantic and writes the cache, the second takes them all from it, a third has the cache turned
off; all three must report the same thing for every example, every bad input and every search space.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from support import ROOT, SEARCH_SPACES, TESTS, example_files

# Validates every file it is given (as `specdsl validate` does) and prints what it found, and which models were
# completed from the cache and which were built, as JSON.
PROBE = r"""
import json, sys
from pathlib import Path
from specdsl.spec import _validators
_validators._path = Path(sys.argv[1])

installed, built = [], []
_install, _remember = _validators.install, _validators.remember
def install(cls):
    ok = _install(cls)
    if ok:
        installed.append(cls.__qualname__)
    return ok
def remember(cls):
    built.append(cls.__qualname__)
    _remember(cls)
_validators.install, _validators.remember = install, remember

from specdsl.cli._validate import validate_file
from specdsl.spec import SearchSpec, TrainSpec
results = []
for name in sys.argv[2:]:
    r = validate_file(Path(name), samples=20)
    results.append([name, r.ok, r.error.format() if r.error else None, r.plan.totals() if r.plan else None,
                    [str(w) for w in r.warnings]])
results.append(["defaults", TrainSpec().model_dump(), SearchSpec().model_dump()])
print(json.dumps({"results": results, "installed": sorted(set(installed)), "built": sorted(set(built))}))
"""

FILES = [str(p) for p in example_files()] + [
    str(p) for p in sorted((TESTS / "bad_inputs").glob("*.yaml")) if p.name != "expected.yaml"
] + [str(p) for p in sorted(SEARCH_SPACES.glob("*.yaml"))]


SOME = [str(ROOT / "examples" / "cifar10_cnn.yaml"), str(TESTS / "bad_inputs" / "typo_key.yaml")]


def probe(cache: Path, files: list[str] = FILES, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache), *files], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cached_validators_accept_and_reject_exactly_what_built_ones_do(tmp_path):
    cache = tmp_path / "validators.pickle"
    first = probe(cache)
    assert first["installed"] == []
    assert "Conv2D" in first["built"] and "TrainSpec" in first["built"] and "SearchSpec" in first["built"]
    stored = pickle.loads(cache.read_bytes())
    assert sorted(key.rsplit(".", 1)[1] for key in stored) == first["built"]

    second = probe(cache)
    assert second["built"] == []  # every model this run needed came from the cache
    assert second["installed"] == first["built"]
    assert second["results"] == first["results"]

    off = probe(cache, SPECDSL_NO_VALIDATOR_CACHE="1")
    assert off["installed"] == [] and off["built"] == first["built"]
    assert off["results"] == first["results"]
    # the results are real ones: every example plans, every bad input fails with its message
    by_name = {r[0]: r for r in first["results"][:-1]}
    assert all(by_name[str(p)][1] for p in example_files())
    bad = [r for name, *r in first["results"][:-1] if "/bad_inputs/" in name]
    assert bad and all(not ok and message for ok, message, *_ in bad)


def test_a_damaged_or_foreign_cache_file_is_rebuilt(tmp_path):
    cache = tmp_path / "validators.pickle"
    reference = probe(cache, SOME)["results"]
    for damage in (b"not a pickle", pickle.dumps(["a", "list"]), b""):
        cache.write_bytes(damage)
        again = probe(cache, SOME)
        assert again["installed"] == [] and again["built"]
        assert again["results"] == reference
        assert isinstance(pickle.loads(cache.read_bytes()), dict)


def test_an_unwritable_cache_costs_only_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache's folder would be")
    result = probe(blocker / "sub" / "validators.pickle", SOME)
    assert result["installed"] == [] and "Conv2D" in result["built"]
    assert result["results"] == probe(tmp_path / "ok.pickle", SOME)["results"]
    assert not (blocker / "sub").exists()
