"""docs/ci/*.yml and .pre-commit-hooks.yaml as a user's repository runs them, offline: specdsl is installed from a
git repository (a clone of this working tree's package, by a ``git+file://`` URL or as pre-commit's hook
repository), into a fresh environment, and checks a good spec and a bad one.

Offline: the environments see the installed packages (``VIRTUALENV_SYSTEM_SITE_PACKAGES``), pip looks at no
index (``PIP_NO_INDEX``) and builds with the installed setuptools (no build isolation). Each test builds and
installs specdsl once (about 20-40 s): marked slow (``-m 'not slow'`` leaves them out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT

pytestmark = pytest.mark.slow

GOOD = "input: [28, 28, 1]\nlayers:\n  - conv2d: {filters: 8, kernel: 3}\n  - flatten\n  - dense: 10\n"
BAD = GOOD.replace("filters: 8", "filters: -4")
MESSAGE = (
    "specs/bad.yaml:3:23: layers[0] (conv2d): `filters`: input should be greater than or equal to 1 (got -4)."
)
PACKAGE = (
    "specdsl",
    "examples",  # the wheel's specdsl.zoo (pyproject's package-dir)
    "pyproject.toml",
    "README.md",
    ".pre-commit-hooks.yaml",
)  # what a clone needs to install


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=specdsl", "-c", "user.email=specdsl@localhost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, str]:
    """A git repository holding this working tree's package (its files as they are now), and its commit."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    repo = tmp_path_factory.mktemp("specdsl-source")
    for name in git(
        "ls-files", "--cached", "--others", "--exclude-standard", "--", *PACKAGE, cwd=ROOT
    ).splitlines():
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "specdsl", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo)


def offline(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed specdsl, not this tree
    env.update(
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip reads this one backwards: "0" turns build isolation off
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        VIRTUALENV_SYSTEM_SITE_PACKAGES="1",
        PRE_COMMIT_HOME=str(tmp / "pre-commit"),
        XDG_CACHE_HOME=str(tmp / "cache"),
    )
    return env


def user_repo(tmp: Path, spec: str) -> Path:
    repo = tmp / "user"
    (repo / "specs").mkdir(parents=True)
    (repo / "specs" / ("bad.yaml" if spec is BAD else "good.yaml")).write_text(spec)
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    return repo


def test_the_pre_commit_hook_passes_a_good_spec_and_fails_a_bad_one_with_its_message(source, tmp_path):
    pytest.importorskip("pre_commit")
    path, rev = source
    env = offline(tmp_path)
    for spec, code in ((GOOD, 0), (BAD, 1)):
        repo = user_repo(tmp_path / ("bad" if spec is BAD else "good"), spec)
        config = {"repos": [{"repo": str(path), "rev": rev, "hooks": [{"id": "specdsl-validate"}]}]}
        (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
        done = subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == code, done.stdout + done.stderr
        lines = [line for line in done.stdout.splitlines() if not line.startswith("[INFO] ")]
        assert lines[0].startswith("specdsl validate (shapes, parameter counts, references)...")
        assert lines[0].endswith("Passed" if code == 0 else "Failed")
        if code:
            assert lines[1:] == ["- hook id: specdsl-validate", "- exit code: 2", "", f"error: {MESSAGE}", ""]
        else:
            assert lines == [lines[0]]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh environment (as a CI job's Python), whose `pip` installs into it."""
    path = tmp_path_factory.mktemp("ci") / "venv"
    env = offline(path.parent)
    subprocess.run([sys.executable, "-m", "virtualenv", "-q", str(path)], env=env, check=True, timeout=300)
    return path


def run_steps(
    steps: list[str], variables: dict[str, str], repo: Path, venv: Path
) -> subprocess.CompletedProcess:
    env = {**offline(venv.parent), **variables, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    script = "set -e\n" + "\n".join(steps) + "\n"
    return subprocess.run(
        ["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_ci_documents_install_specdsl_from_git_and_check_the_specs(source, venv, tmp_path):
    path, rev = source
    where = {"SPECDSL_GIT": path.as_uri(), "SPECDSL_REV": rev}

    github = yaml.safe_load((ROOT / "docs" / "ci" / "github-workflow.yml").read_text())
    assert set(github["env"]) == set(where)
    install, check = [s["run"] for s in github["jobs"]["validate"]["steps"] if "run" in s]
    assert install == 'pip install "specdsl @ git+${SPECDSL_GIT}@${SPECDSL_REV}"'
    done = run_steps([install], where, tmp_path, venv)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import specdsl; print(specdsl.__file__)"],
        env=offline(venv.parent),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.startswith(str(venv))  # the copy from git, not this tree nor another install
    done = run_steps([check], where, user_repo(tmp_path / "good", GOOD), venv)
    assert (done.returncode, done.stdout) == (0, "")
    done = run_steps([check], where, user_repo(tmp_path / "bad", BAD), venv)
    assert done.returncode == 2
    assert done.stdout.splitlines() == [f"::error file=specs/bad.yaml,line=3,col=23::{MESSAGE}"]

    gitlab = yaml.safe_load((ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text())["specs"]
    assert set(gitlab["variables"]) == set(where)
    assert gitlab["script"][0] == install  # the same install
    done = run_steps(gitlab["script"][1:], where, tmp_path / "bad" / "user", venv)
    assert done.returncode == 2
    report = json.loads((tmp_path / "bad" / "user" / "specdsl-report.json").read_text())
    error = report["files"][0]["error"]
    assert (error["file"], error["line"], error["col"]) == ("specs/bad.yaml", 3, 23)
    assert error["message"] == MESSAGE.split(": ", 2)[2]
