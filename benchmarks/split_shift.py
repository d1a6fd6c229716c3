"""How far a held-out split's score is from the test score for a model no search picked: the part of the
search's "reported - test" gap that no way of choosing can remove.

    python benchmarks/split_shift.py [--data catsdogs|fashion] [--runs 8] [--epochs 10]

With ``--draw fixed``, the benchmark of ``search_vs_kerastuner.py`` draws its data once (``data.seed`` 0), so
every seed of it scores on the same test images (by default each seed draws its own). A model that nobody chose is
then trained ``--runs`` times on fresh stratified splits of the training and validation images (the
re-evaluation's own splits, ``specdsl.search._select.resplit``), with fresh seeds, for exactly ``--epochs`` epochs
(no early stopping, the last epoch's weights kept, so the validation score is read at an epoch chosen by nobody).
Printed per run: the fresh validation accuracy and the test accuracy of the same model; then the mean and standard
error of (validation - test). A mean far from 0 is what this test draw costs or gives every estimate, whatever
picked the model.

The model: the middle of the reference space (``benchmarks/<data>_reference.yaml``): two conv blocks of 32 and 64
3x3 'same' filters with ReLU and 2x2 max pooling, dropout 0.25, dense 128 ReLU, Adam at 1e-3, batches of 64.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

DATA = {
    "catsdogs": (
        "[32, 32, 3]",
        "{dataset: catsdogs}",
        "dense: {units: 1, activation: sigmoid}",
        "binary_crossentropy",
    ),
    "fashion": (
        "[28, 28, 1]",
        "{dataset: fashion_mnist, split: {train: 0.995, val: 0.005, test: 0.0}, limit: 1000}",
        "dense: {units: 10, activation: softmax}",
        "sparse_categorical_crossentropy",
    ),
}

SPEC = """
name: unpicked
input: {input}
layers:
  - conv2d: {{filters: 32, kernel: 3, padding: same, activation: relu}}
  - maxpool2d: 2
  - conv2d: {{filters: 64, kernel: 3, padding: same, activation: relu}}
  - maxpool2d: 2
  - flatten
  - dropout: 0.25
  - dense: {{units: 128, activation: relu}}
  - {top}
data: {data}
train:
  optimizer: {{name: adam, lr: 0.001}}
  loss: {loss}
  epochs: {epochs}
  batch_size: 64
  early_stopping: {{patience: 1000, restore_best: false}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(DATA), default="catsdogs")
    parser.add_argument(
        "--runs", type=int, default=8, help="fresh splits, each with its own seed (default 8)"
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every run, all kept (default 10)")
    args = parser.parse_args()

    from specdsl.plan import plan
    from specdsl.search._select import resplit
    from specdsl.spec import load
    from specdsl.train import fit, load_for

    shape, data, top, loss = DATA[args.data]
    spec = load(SPEC.format(input=shape, data=data, top=top, loss=loss, epochs=args.epochs), file="unpicked")
    p = plan(spec)
    ds = load_for(p, spec.data)  # as a search's trials load it: the benchmark's own split (seed 0)
    print(
        f"{args.data}: {len(ds.y_train)} / {len(ds.y_val)} / {len(ds.y_test)} images; {args.runs} runs of "
        f"{args.epochs} epochs, each on a fresh train/validation split"
    )
    gaps = []
    for run in range(1, args.runs + 1):
        start = time.time()
        fresh = resplit(ds, seed=run)
        train = spec.train.model_copy(update={"seed": spec.train.seed + run})
        result = fit(p, dataset=fresh, train=train)
        val = result.history[-1]["val_accuracy"]
        test = result.test["accuracy"]
        gaps.append(val - test)
        print(
            f"run {run}: validation {val:.3f}, test {test:.3f}, gap {val - test:+.3f} ({time.time() - start:.0f} s)"
        )
    mean = statistics.fmean(gaps)
    se = statistics.stdev(gaps) / len(gaps) ** 0.5 if len(gaps) > 1 else float("nan")
    print(f"validation - test over {len(gaps)} runs: {mean:+.3f} (standard error {se:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
