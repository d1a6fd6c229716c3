"""The validators' cache (specdsl/spec/_validators.py) changes how soon a validator exists, never what it accepts.

Each check runs in a fresh process, since the cache is read once per process: the first process builds every
validator with pydantic and writes the cache, the second takes them all from it, a third has the cache turned
off; all three must report the same thing for every example, every bad input and every search space.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, SEARCH_SPACES, TESTS, example_files

# Validates every file it is given (as `specdsl validate` does) and prints what it found, and which models were
# completed from the cache and which were built, as JSON.
PROBE = r"""
import json, sys
from pathlib import Path
from specdsl.spec import _validators
if sys.argv[1]:  # else where the user's cache folder puts it
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
print(json.dumps({"results": results, "installed": sorted(set(installed)), "built": sorted(set(built)),
                  "path": str(_validators._cache_path())}))
"""

FILES = (
    [str(p) for p in example_files()]
    + [str(p) for p in sorted((TESTS / "bad_inputs").glob("*.yaml")) if p.name != "expected.yaml"]
    + [str(p) for p in sorted(SEARCH_SPACES.glob("*.yaml"))]
)


SOME = [str(ROOT / "examples" / "cifar10_cnn.yaml"), str(TESTS / "bad_inputs" / "typo_key.yaml")]


def probe(cache: Path | None, files: list[str] = FILES, **env: str) -> dict:
    """What a fresh process finds validating ``files`` with the cache at ``cache`` (None: where the environment
    ``env`` puts it; a value of "" takes a variable out)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache or ""), *files],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in env.items() if v},
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


NAME = re.compile(r"specdsl(.+)-pydantic(.+)-core(.+)-py(\d+\.\d+)-[0-9a-f]{16}\.pickle")


def test_the_cache_is_a_private_file_in_the_users_cache_folder_named_by_the_versions(tmp_path):
    import pydantic
    import pydantic_core

    from specdsl._version import __version__

    home = tmp_path / "home"
    for env, folder in (
        ({"SPECDSL_CACHE": str(tmp_path / "chosen")}, tmp_path / "chosen"),
        ({"SPECDSL_CACHE": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "specdsl"),
        ({"SPECDSL_CACHE": "", "XDG_CACHE_HOME": "relative", "HOME": str(home)}, home / ".cache" / "specdsl"),
    ):
        result = probe(None, SOME, **env)
        path = Path(result["path"])
        assert path.parent == folder / "validators"
        assert NAME.fullmatch(path.name).groups() == (
            __version__,
            pydantic.VERSION,
            pydantic_core.__version__,
            f"{sys.version_info[0]}.{sys.version_info[1]}",
        )
        assert os.listdir(path.parent) == [path.name]  # written atomically: no temporary file left
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(key.rsplit(".", 1)[1] for key in pickle.loads(path.read_bytes())) == result["built"]
        assert probe(None, SOME, **env)["installed"] == result["built"]


def test_a_cache_file_others_may_write_is_not_read(tmp_path):
    cache = tmp_path / "validators.pickle"
    built = probe(cache, SOME)["built"]
    cache.chmod(0o664)
    again = probe(cache, SOME)
    assert again["installed"] == [] and again["built"] == built
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600  # rewritten, private
    link = tmp_path / "link.pickle"
    link.symlink_to(cache)
    assert probe(link, SOME)["installed"] == []
    assert probe(cache, SOME)["installed"] == built


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away takes root")
def test_a_cache_file_of_another_user_is_not_read(tmp_path):
    cache = tmp_path / "validators.pickle"
    built = probe(cache, SOME)["built"]
    os.chown(cache, 4242, -1)
    again = probe(cache, SOME)
    assert again["installed"] == [] and again["built"] == built
