"""One process training a small CNN, as the search's re-evaluation of its top trials does after the workers end:
one torch thread against all of this process's cores, interleaved.

    python benchmarks/reevaluation_threads.py [--data fashion_mnist] [--limit 3000] [--rounds 3] [--epochs 2]

The model: 28x28x1, conv 16 3x3 same relu, maxpool 2, conv 32 3x3 same relu, maxpool 2, flatten, dense 64 relu,
dense 10 softmax (Adam, batch 64), on ``--limit`` training images of ``--data``. After one untimed warm-up,
each round trains it once on one thread and once on all the usable cores (``specdsl.train.usable_cores``);
printed: seconds and images/s of each run, and the median images/s of each thread count (with the machine's
load average, since other processes slow a many-thread run most).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

SPEC = """
name: small_cnn
input: [28, 28, 1]
layers:
  - conv2d: {filters: 16, kernel: 3, padding: same, activation: relu}
  - maxpool2d: 2
  - conv2d: {filters: 32, kernel: 3, padding: same, activation: relu}
  - maxpool2d: 2
  - flatten
  - dense: {units: 64, activation: relu}
  - dense: {units: 10, activation: softmax}
data: {dataset: DATA}
train: {optimizer: {name: adam, lr: 0.003}, epochs: 2, batch_size: 64}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion_mnist")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    import torch

    import specdsl
    from specdsl.data import load_dataset
    from specdsl.train import fit, usable_cores

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small_cnn.yaml"
        path.write_text(SPEC.replace("DATA", args.data), encoding="utf-8")
        plan = specdsl.check(path)
    ds = load_dataset(args.data, seed=0, limit=args.limit)
    images = args.epochs * len(ds.y_train)
    cores = usable_cores()
    seen: dict[int, list[float]] = {1: [], cores: []}
    fit(plan, dataset=ds, epochs=1)  # a warm-up, untimed: the first fit of a process pays its one-time costs
    for r in range(args.rounds):
        for threads in seen:
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            fit(plan, dataset=ds, epochs=args.epochs)
            dt = time.perf_counter() - t0
            seen[threads].append(images / dt)
            print(
                f"round {r}: {threads} thread(s) {dt:.2f} s, {images / dt:.0f} img/s "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    for threads, rates in seen.items():
        print(f"{threads} thread(s): median {statistics.median(rates):.0f} img/s over {len(rates)} runs")


if __name__ == "__main__":
    main()
