"""End to end: a tiny real search, then the README's "comparing trials" walk-through in the MLflow UI, in headless
Chromium.

1. ``python -m specdsl search`` runs 2 trials of a tiny space (8x8 ``digits``, 2 epochs, 64 examples) with Optuna in
   SQLite and MLflow in SQLite, in the test's own folder;
2. ``mlflow ui`` serves that store on a free port of 127.0.0.1 (one worker, no job runner), stopped at the end;
3. Chromium (Debian's /usr/bin/chromium, driven by Playwright) follows the walk-through: it opens the address the
   search's summary prints (the experiment's runs, as model training), unfolds the study's parent run, selects the
   trial runs and clicks *Compare*; the comparison shows every trial's parameters and its ``objective``. Then it
   opens the parent run's page (its child runs, the sampler and pruner) and every trial's page (its metrics).

What the UI shows is compared with what the tracking server's REST API returns for the same runs, and with the
names the search gives them (the parent run is the study, the trials are ``STUDY-N``). A screenshot per step is
saved in the test's tmp_path (``step1_runs.png``, ``step2_trials.png``, ``step3_selected.png``,
``step4_compare.png``, ``step5_parent.png``, ``step6_trial.png``; ``failure.png`` when a check fails) and their
paths printed.

Needs: Debian's ``chromium`` (skipped with a reason when no binary is found; ``SPECDSL_CHROMIUM`` names another)
and the ``playwright`` PyPI package (only its driver; no browser is downloaded).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

STUDY = "e2e_study"
EXPERIMENT = "specdsl-e2e"
TRIALS = 2
EPOCHS = 2
SAMPLER, PRUNER = "tpe", "median"

# A tiny space: one searched convolution width and learning rate, on the 8x8 digits that scikit-learn ships.
SPACE = f"""\
name: e2e_digits
input: [8, 8, 1]

params:
  filters: {{choice: [4, 8], name: filters}}

layers:
  - conv2d: {{filters: $filters, kernel: 3, padding: same, activation: relu}}
  - flatten
  - dense: {{units: 10, activation: softmax}}

data:
  dataset: digits

train:
  optimizer:
    name: adam
    lr: {{float: [0.001, 0.01], log: true, name: lr}}
  loss: sparse_categorical_crossentropy
  epochs: {EPOCHS}
  batch_size: 32

search:
  objectives: {{metric: val_accuracy, direction: maximize}}
  sampler: {SAMPLER}
  pruner: {PRUNER}
  seed: 0
"""

# Without the background-networking flags Chromium tries hosts that this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def _chromium() -> str | None:
    named = os.environ.get("SPECDSL_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """End the process group this test started (the CLI and the server workers it spawned)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers left behind by a CLI that already exited
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _run_search(workdir: Path, db: Path) -> str:
    space = workdir / "e2e_space.yaml"
    space.write_text(SPACE)
    cmd = [
        sys.executable,
        "-m",
        "specdsl",
        "search",
        str(space),
        "--study-name",
        STUDY,
        "--experiment",
        EXPERIMENT,
        "--trials",
        str(TRIALS),
        "--epochs",
        str(EPOCHS),
        "--limit",
        "64",
        "--tracking-uri",
        f"sqlite:///{db}",
        "--storage",
        f"sqlite:///{workdir / 'optuna.db'}",
    ]
    log = workdir / "search.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **QUIET_ENV},
            start_new_session=True,
        )
        try:
            rc = proc.wait(240)
        except subprocess.TimeoutExpired:
            _stop(proc)
            pytest.fail(f"`specdsl search` did not finish in 240 s:\n{_tail(log)}")
        finally:
            _stop(proc)
    assert rc == 0, f"`specdsl search` exited {rc}:\n{_tail(log)}"
    return log.read_text()


@contextlib.contextmanager
def _mlflow_server(db: Path, workdir: Path, ready_timeout: float = 90.0):
    """``mlflow ui`` on a free loopback port, stopped on exit; yields its base URL."""
    env = {**os.environ, **QUIET_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job-runner process
    for attempt in range(3):  # the free port can be taken between _free_port() and the server's bind
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = workdir / f"mlflow_server_{attempt}.log"
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--default-artifact-root",
            str(workdir / "mlruns"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        with log.open("w") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.3)
            else:
                text = _tail(log)
                if proc.poll() is not None and "address already in use" in text.lower() and attempt < 2:
                    continue
                pytest.fail(f"mlflow ui did not answer {base}/health in {ready_timeout:.0f} s:\n{text}")
            yield base
            return
        finally:
            _stop(proc)


def _api(base: str, path: str, body: dict | None = None, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _tracked_runs(base: str) -> tuple[str, dict, list[dict]]:
    """The experiment id, the study's parent run and its trial runs (by name), as the tracking server has them;
    checked against the shape the search promises."""
    exp_id = _api(base, "experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]["experiment_id"]
    runs = _api(base, "runs/search", {"experiment_ids": [exp_id], "max_results": 100}).get("runs", [])

    def tags(run):
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

    by_name = {r["info"]["run_name"]: r for r in runs}
    trial_names = [f"{STUDY}-{n}" for n in range(TRIALS)]
    assert sorted(by_name) == sorted([STUDY, *trial_names]), f"runs tracked: {sorted(by_name)}"
    parent = by_name[STUDY]
    assert "mlflow.parentRunId" not in tags(parent)
    # its duration is the search's working time, which it logs too
    info = parent["info"]
    worked = {m["key"]: m["value"] for m in parent["data"]["metrics"]}["search_seconds"]
    assert abs((int(info["end_time"]) - int(info["start_time"])) / 1000 - worked) <= 0.002, (info, worked)
    params = {p["key"]: p["value"] for p in parent["data"].get("params", [])}
    assert params.get("sampler") == SAMPLER and params.get("pruner") == PRUNER, params
    trials = [by_name[n] for n in trial_names]
    for t in trials:
        assert tags(t).get("mlflow.parentRunId") == parent["info"]["run_id"], t["info"]["run_name"]
        assert t["info"]["status"] == "FINISHED", (t["info"]["run_name"], tags(t).get("specdsl.reason"))
        metrics = {m["key"]: m["value"] for m in t["data"]["metrics"]}
        assert metrics["objective"] == metrics["objective.val_accuracy"], metrics
        for key in ("val_accuracy", "loss"):  # one value per epoch
            history = _api(base, "metrics/get-history", run_id=t["info"]["run_id"], metric_key=key)["metrics"]
            assert sorted(m["step"] for m in history) == list(range(EPOCHS)), (
                t["info"]["run_name"],
                key,
                history,
            )
    return exp_id, parent, trials


def _table(page, header: str):
    """A run page's key/value table (``Metric`` or ``Parameter``) as {name: text}."""
    # By the header's text: its accessible name also holds its "Resize Column" handle.
    heading = page.locator('[role="columnheader"]', has_text=re.compile(rf"^\s*{re.escape(header)}\s*$"))
    table = page.get_by_role("table").filter(has=heading)
    table.get_by_role("row").nth(1).wait_for()
    rows = {}
    for row in table.get_by_role("row").all():
        cells = [c.strip() for c in row.get_by_role("cell").all_inner_texts()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return table, rows


def _compared_metric(page, name: str) -> list[str]:
    """A metric's values on the Compare page, one per run in the page's order (the metrics are a grid of
    positioned cells: the values of a metric are the cells level with its name)."""
    return page.evaluate(
        """name => {
            const link = [...document.querySelectorAll('a[title="Plot chart"]')]
                .find(a => a.textContent.trim() === name);
            if (!link) return null;
            const cell = link.parentElement;
            return [...document.querySelectorAll('div')]
                .filter(d => d.style.position === 'absolute' && d.style.top === cell.style.top
                        && d.parentElement !== cell.parentElement && !d.querySelector('a, div')
                        && d.innerText.trim() !== '')
                .sort((a, b) => parseFloat(a.style.left) - parseFloat(b.style.left))
                .map(d => d.innerText.trim());
        }""",
        name,
    )


def _compared_params(page) -> dict[str, list[str]]:
    """The Compare page's parameters table: {name: [value per run, in the page's order]}."""
    table = page.locator("table.mlflow-compare-table").filter(
        has=page.locator("th", has_text=re.compile(r"^filters$"))
    )
    table.first.wait_for()
    rows = {}
    for row in table.first.locator("tr").all():
        head = row.locator("th").all_inner_texts()
        if head:
            rows[head[0].strip()] = [c.strip() for c in row.locator("td").all_inner_texts()]
    return rows


def _skip_or_fail(reason: str) -> None:
    """On a developer's machine a missing browser is a skip; in CI, where set-up installs it, a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


def test_mlflow_ui_shows_the_study_and_its_trials(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        _skip_or_fail("no Chromium binary (apt-get install chromium, or set SPECDSL_CHROMIUM)")
    try:
        from playwright import sync_api
    except ImportError:
        _skip_or_fail("the `playwright` package is not installed")

    started = time.monotonic()
    db = tmp_path / "mlflow.db"
    output = _run_search(tmp_path, db)
    searched = time.monotonic()
    # the summary says where the UI shows the experiment's runs (on `mlflow ui`'s default address)
    found = re.search(
        r"at http://127\.0\.0\.1:5000(/#/experiments/\d+/runs\?workflowType=machine_learning)", output
    )
    assert found, output

    steps = ["runs", "trials", "selected", "compare", "parent", "trial"]
    shots = {name: tmp_path / f"step{i}_{name}.png" for i, name in enumerate(steps, 1)}
    with _mlflow_server(db, tmp_path) as base, sync_api.sync_playwright() as pw:
        served = time.monotonic()
        exp_id, parent, trials = _tracked_runs(base)
        parent_id = parent["info"]["run_id"]
        assert found.group(1).startswith(f"/#/experiments/{exp_id}/runs"), (found.group(1), exp_id)
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
            timeout=60_000,
        )
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.set_default_timeout(30_000)
        try:
            # 1. The address the summary printed: the experiment's runs, as model training.
            page.goto(base + found.group(1), wait_until="domcontentloaded")
            sync_api.expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
            parent_link = page.get_by_role("link", name=STUDY, exact=True)
            parent_link.wait_for()
            assert parent_link.get_attribute("href").endswith(f"/runs/{parent_id}")
            page.screenshot(path=str(shots["runs"]))
            # 2. Nested runs are folded under their parent: unfold it with the button in its name cell.
            first_trial = page.get_by_role("link", name=trials[0]["info"]["run_name"], exact=True)
            if not first_trial.is_visible():
                row = page.locator(f'[role="row"][row-id="{parent_id}"]').filter(has=parent_link)
                row.get_by_role("gridcell").filter(has=parent_link).get_by_role("button").first.click()
            for t in trials:
                link = page.get_by_role("link", name=t["info"]["run_name"], exact=True)
                link.wait_for()
                assert link.get_attribute("href").endswith(f"/runs/{t['info']['run_id']}")
            run_link = re.compile(rf"#/experiments/{exp_id}/runs/([0-9a-f]{{32}})$")
            shown = {
                a.inner_text().strip()
                for a in page.locator('[role="row"] a[href*="/runs/"]').all()
                if run_link.search(a.get_attribute("href") or "")
            }
            assert shown == {STUDY, *(t["info"]["run_name"] for t in trials)}, shown
            page.screenshot(path=str(shots["trials"]))
            # 3. Select the trial runs (the checkbox of each row) and click Compare.
            for t in trials:
                row = page.locator(f'[role="row"][row-id="{t["info"]["run_id"]}"]').first
                row.locator('input[type="checkbox"]').first.check()
            compare = page.get_by_role("button", name="Compare", exact=True)
            sync_api.expect(compare).to_be_enabled()
            page.screenshot(path=str(shots["selected"]))
            compare.click()
            # 4. The comparison: every trial's parameters and its objective, as the tracking server has them.
            page.wait_for_url(re.compile(r"#/compare-runs\?runs="))
            sync_api.expect(
                page.get_by_text(f"Comparing {len(trials)} Runs from 1 Experiment")
            ).to_be_visible()
            order = json.loads(urllib.parse.unquote(page.url.split("runs=", 1)[1].split("&", 1)[0]))
            by_id = {t["info"]["run_id"]: t for t in trials}
            assert sorted(order) == sorted(by_id), order
            params = _compared_params(page)
            for key in ("filters", "lr"):
                want = [{p["key"]: p["value"] for p in by_id[r]["data"]["params"]}[key] for r in order]
                assert params.get(key) == want, (key, params, want)
            page.get_by_title("Plot chart").filter(has_text=re.compile(r"^objective$")).first.wait_for()
            objective = _compared_metric(page, "objective")
            want = [{m["key"]: m["value"] for m in by_id[r]["data"]["metrics"]}["objective"] for r in order]
            assert objective is not None and len(objective) == len(want), (objective, want)
            for text, value in zip(objective, want):  # the page rounds to 3 or 4 significant digits
                assert math.isclose(float(text), value, rel_tol=5e-3), (objective, want)
            page.screenshot(path=str(shots["compare"]), full_page=True)

            # The parent run's page: its trials as child runs, the study's sampler and pruner.
            page.goto(
                f"{base}/#/experiments/{exp_id}/runs/{parent_id}?workflowType=machine_learning",
                wait_until="domcontentloaded",
            )
            sync_api.expect(page.get_by_test_id("key-value-Run ID")).to_contain_text(parent_id)
            children = page.get_by_test_id("key-value-Child runs").get_by_role("link")
            sync_api.expect(children).to_have_count(len(trials))
            assert sorted(c.strip() for c in children.all_inner_texts()) == sorted(
                t["info"]["run_name"] for t in trials
            )
            _, params = _table(page, "Parameter")
            assert params.get("sampler") == SAMPLER and params.get("pruner") == PRUNER, params
            page.screenshot(path=str(shots["parent"]))

            # Every trial's page: nested under the study, and its latest metrics as the tracking server has them.
            for t in trials:
                name, run_id = t["info"]["run_name"], t["info"]["run_id"]
                page.goto(
                    f"{base}/#/experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning",
                    wait_until="domcontentloaded",
                )
                page.get_by_role("heading", name=name, exact=True).wait_for()
                sync_api.expect(page.get_by_test_id("key-value-Run ID")).to_contain_text(run_id)
                parent_field = page.get_by_test_id("key-value-Parent run").get_by_role("link")
                assert parent_field.inner_text().strip() == STUDY
                assert parent_field.get_attribute("href").endswith(f"/runs/{parent_id}")
                table, shown_metrics = _table(page, "Metric")
                tracked = {m["key"]: m["value"] for m in t["data"]["metrics"]}
                assert {"val_accuracy", "loss"} <= set(shown_metrics), (name, shown_metrics)
                assert set(shown_metrics) <= set(tracked), (name, sorted(set(shown_metrics) - set(tracked)))
                for key, text in shown_metrics.items():  # the UI shows the latest value in full
                    want = tracked[key]
                    same = (
                        text.lower() == "nan"
                        if math.isnan(want)
                        else math.isclose(float(text), want, rel_tol=1e-9)
                    )
                    assert same, (name, key, text, want)
                table.evaluate("e => e.scrollIntoView({block: 'start'})")  # the page scrolls inside the app
                page.screenshot(path=str(shots["trial"]))
        except BaseException:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"failure screenshot: {tmp_path / 'failure.png'} (page {page.url})")
            raise
        finally:
            ctx.close()
    print("screenshots:", *shots.values())
    print(
        f"search {searched - started:.1f}s, server up {served - searched:.1f}s, "
        f"browser checks {time.monotonic() - served:.1f}s"
    )
