"""What a search costs besides training: sampling, expanding and planning, and tracking, per trial.

    python benchmarks/search_overhead.py                 # catsdogs, 6 trials of 3 epochs on the real images
    python benchmarks/search_overhead.py --trials 10 --epochs 5
    python benchmarks/search_overhead.py --seeds 3     # the study three times (seeds 0, 1, 2): mean and spread

Three measurements, in a temporary folder (nothing is left in the working folder):

1. a real study of ``search_spaces/catsdogs.yaml`` (Optuna in SQLite, MLflow in its SQLite store): per trained trial,
   everything it spends outside training, as a share of the trial's time (target: under 3 %), and its parts: Optuna's
   ask and suggest calls, expanding and planning the spec, MLflow calls, the pruner's report and check (the rest is
   Optuna's tell and the search's bookkeeping);
2. the cost of an invalid sample (rejected before anything is built), on a small space of digits models whose
   deepest corners do not plan;
3. Optuna's own cost per trial on each storage (SQLite as configured here, a journal file, memory) for the
   catsdogs space's six parameters, with a trivial objective.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def study_overhead(trials: int, epochs: int, folder: Path, seed: int = 0) -> dict:
    from specdsl.search import run_search

    result = run_search(
        ROOT / "search_spaces" / "catsdogs.yaml",
        trials=trials,
        epochs=epochs,
        seed=seed,
        study_name=f"overhead seed {seed}",
        storage=f"sqlite:///{folder / 'optuna.db'}",
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        plots=False,
    )
    return {"result": result, **result.overhead}


DEEP = """
input: [8, 8, 1]
layers:
  - repeat: {int: [1, 5], name: convs}          # 4 or 5 3x3 'valid' convolutions do not fit 8x8
    layers:
      - conv2d: {filters: {choice: [4, 8], name: filters}, kernel: 3, activation: relu}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 1, batch_size: 128}
search: {sampler: random, pruner: none, seed: 5}
"""


def rejection_cost(folder: Path) -> dict:
    import optuna
    from mlflow import MlflowClient

    from specdsl.search import run_search

    space = folder / "deep.yaml"
    space.write_text(DEEP)
    storage, uri = f"sqlite:///{folder / 'optuna.db'}", f"sqlite:///{folder / 'mlflow.db'}"
    result = run_search(
        space, trials=6, study_name="rejections", storage=storage, tracking_uri=uri, plots=False
    )
    rejected = [
        t
        for t in optuna.load_study(study_name="rejections", storage=storage).trials
        if t.user_attrs.get("specdsl.rejected")
    ]
    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`specdsl.study` = 'rejections' and tags.`specdsl.rejected` = 'true'",
    )
    plan_ms = [r.data.metrics["overhead.spec_plan_ms"] for r in runs]
    total_ms = [(t.datetime_complete - t.datetime_start).total_seconds() * 1000 for t in rejected]
    return {
        "n": len(rejected),
        "plan_ms": statistics.mean(plan_ms) if plan_ms else float("nan"),
        "total_ms": statistics.mean(total_ms) if total_ms else float("nan"),
        "result": result,
    }


def storage_cost(folder: Path, n: int = 60) -> dict:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from specdsl.search._storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)

    def objective(trial):
        trial.suggest_categorical("filters", [16, 32, 64])
        trial.suggest_categorical("batch_norm", [0, 1])
        trial.suggest_int("conv_blocks", 1, 3)
        trial.suggest_float("dropout", 0.0, 0.5)
        trial.suggest_categorical("dense_units", [64, 128, 256])
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        trial.set_user_attr("specdsl.worker", {"host": "h", "pid": 1})
        return 0.5

    costs = {}
    for name, storage in (
        ("sqlite (WAL, heartbeat)", open_storage(f"sqlite:///{folder / 'bench.db'}")),
        ("journal file", JournalStorage(JournalFileBackend(str(folder / "bench.log")))),
        ("memory", None),
    ):
        study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=5)
        start = time.perf_counter()
        study.optimize(objective, n_trials=n)
        costs[name] = (time.perf_counter() - start) / n * 1000
    return costs


def spread(values: list[float], fmt: str) -> str:
    """``mean`` for one value, ``mean ± standard deviation`` for more."""
    mean = fmt.format(statistics.mean(values))
    return mean if len(values) == 1 else f"{mean} ± {fmt.format(statistics.stdev(values))}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--seeds", type=int, default=1, help="studies with seeds 0..N-1: mean and spread (default 1)"
    )
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "torch")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = [study_overhead(args.trials, args.epochs, folder, seed) for seed in range(args.seeds)]
        r = rejection_cost(folder)
        s = storage_cost(folder)
    seeds = "seed 0" if args.seeds == 1 else f"seeds 0-{args.seeds - 1}, mean ± standard deviation"
    trial_s = spread([o["trial_s"] for o in runs], "{:.1f}")
    print(
        f"catsdogs, {args.trials} trials of {args.epochs} epochs on {os.cpu_count()} cores, {seeds} "
        f"(mean trial {trial_s} s):"
    )
    for label, key in (
        ("Optuna ask + suggest", "suggest_ms"),
        ("expand + plan", "spec_plan_ms"),
        ("MLflow calls", "tracking_ms"),
        ("pruner", "pruning_ms"),
        ("all of it", "overhead_ms"),
    ):
        print(f"  {label:21s} {spread([o[key] for o in runs], '{:.1f}'):>14s} ms")
    share = spread([o["share"] * 100 for o in runs], "{:.2f}")
    time_share = spread([o["time_share"] * 100 for o in runs], "{:.2f}")
    print(f"  share of the trial    {share:>14s} %   (target < 3 %; mean over trials)")
    print(f"  share of the search   {time_share:>14s} %   (all trials' overhead over all their time)")
    print(
        f"invalid samples ({r['n']} of them, a digits space with invalid corners): "
        f"expand + plan {r['plan_ms']:.1f} ms; the whole trial, "
        f"with Optuna's storage writes and its MLflow run, {r['total_ms']:.0f} ms"
    )
    print("Optuna per trial (6 parameters, trivial objective):")
    for name, ms in s.items():
        print(f"  {name:24s} {ms:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
