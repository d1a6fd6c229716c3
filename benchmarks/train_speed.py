"""Training throughput of specdsl.train.fit against a hand-written PyTorch loop and Keras' fit, in one run.

    python benchmarks/train_speed.py [--images 1280] [--windows 3] [--rounds 5] [--threads N] [--device D]
        [--precision fp32|bf16|fp16]

The model is the MNIST lab CNN (28x28x1: conv 64 3x3 relu, conv 32 3x3 relu, flatten, dense 10 softmax) at batch
128, on MNIST from specdsl.data (digits resized to 28x28 when MNIST cannot be had). Every contender trains the
same model (specdsl.build) on the same images, built once and trained on across rounds. In each round each
contender runs one warm-up epoch and ``--windows`` timed epochs of ``--images`` images, the contenders one after
the other; the best window of each is the headline (other processes on a shared machine only ever slow a
window down), the median is shown beside it. Printed:

- images/s of each, and the ratios fit / plain loop (target >= 0.95) and fit / Keras (target >= 1.3);
- the FLOP/s of a large float32 matmul measured in the same run, and the fraction of it the training step
  reaches, with a training step taken as 3x the plan's forward FLOPs per image;
- the same plain loop with channels_last tensors and model, for the memory-format choice in specdsl/train/_torch.py.

``--device`` (a ``train.device`` value, default auto) and ``--precision`` apply to every contender: fit takes them
as ``train.device`` / ``train.precision``, the plain loops move model and data there and autocast as fit does,
Keras fits inside ``keras.device``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

SPEC = {
    "name": "mnist_lab_cnn",
    "input": [28, 28, 1],
    "layers": [
        {"conv2d": {"filters": 64, "kernel": 3, "activation": "relu"}},
        {"conv2d": {"filters": 32, "kernel": 3, "activation": "relu"}},
        "flatten",
        {"dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "batch_size": 128},
}
BATCH = 128


def load(n: int):
    from specdsl.data import Dataset, load_dataset
    from specdsl.errors import DataError

    try:
        ds = load_dataset("mnist")
    except DataError as e:
        print(f"MNIST not available ({e.message}); using digits resized to 28x28")
        ds = load_dataset("digits", image_size=(28, 28), split=(0.98, 0.01, 0.01))
    x, y = ds.x_train[:n], ds.y_train[:n]
    empty_x, empty_y = x[:0], y[:0]
    return Dataset(ds.name, x, y, empty_x, empty_y, empty_x, empty_y, ds.class_names), ds.name


def bench_fit(plan, ds, model, windows: int, device: str, precision: str) -> list[float]:
    from specdsl.spec import TrainSpec
    from specdsl.train import fit

    train = TrainSpec(epochs=windows + 1, batch_size=BATCH, device=device, precision=precision)
    result = fit(plan, dataset=ds, train=train, model=model)
    return [h["images_per_s"] for h in result.history[1:]]  # the first epoch warms up


def make_plain(plan, ds, device: str, precision: str, channels_last: bool = False):
    """What a PyTorch user writes for this model: tensors in memory, randperm batches, Adam as Keras sets it."""
    import contextlib

    import torch
    import torch.nn.functional as F

    import specdsl

    torch.manual_seed(0)
    model = specdsl.build(plan).to(device)
    x = torch.from_numpy(ds.x_train).permute(0, 3, 1, 2).float().div_(255).contiguous().to(device)
    y = torch.from_numpy(ds.y_train).to(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = (lambda: torch.autocast(x.device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler(x.device.type) if precision == "fp16" else None
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    g = torch.Generator().manual_seed(0)
    n = len(y)

    def epoch() -> float:
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g).to(x.device)
        for lo in range(0, n, BATCH):
            idx = perm[lo : lo + BATCH]
            with autocast():
                out = model(x[idx])
            loss = F.nll_loss(torch.log(out.float().clamp(1e-7, 1 - 1e-7)), y[idx])
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - t0)

    def run(windows: int) -> list[float]:
        epoch()
        return [epoch() for _ in range(windows)]

    return run


def make_keras(plan, ds, device: str):
    import keras
    import numpy as np

    import specdsl

    keras.utils.set_random_seed(0)
    with keras.device(device):
        model = specdsl.build(plan, backend="keras")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    x = ds.x_train.astype(np.float32) / 255

    def run(windows: int) -> list[float]:
        times: list[float] = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t0)

        with keras.device(device):
            model.fit(x, ds.y_train, batch_size=BATCH, epochs=windows + 1, verbose=0, callbacks=[Timer()])
        return [len(ds.y_train) / t for t in times[1:]]

    return run


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images", type=int, default=1280, help="images per timed window (default 1280 = 10 batches)"
    )
    parser.add_argument("--windows", type=int, default=3, help="timed windows per contender and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the contenders interleaved in each")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)"
    )
    parser.add_argument("--device", default="auto", help="a train.device value (default auto)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    args = parser.parse_args()

    import torch

    import specdsl

    if args.threads:
        torch.set_num_threads(args.threads)
    from specdsl.train import device_name

    plan = specdsl.check(SPEC)
    device = device_name(args.device)
    ds, name = load(args.images)
    print(
        f"{plan.name}: {plan.params:,} parameters, {plan.flops / 1e6:.2f} MFLOPs forward per image; "
        f"{name}, {len(ds.y_train):,} images per window, batch {BATCH}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {device} in {args.precision}, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )

    runs: dict[str, list[float]] = {"fit": [], "plain": [], "keras": [], "plain_cl": []}
    fit_model = specdsl.build(plan)
    contenders = {
        "fit": lambda w: bench_fit(plan, ds, fit_model, w, device, args.precision),
        "plain": make_plain(plan, ds, device, args.precision),
        "keras": make_keras(plan, ds, device),
        "plain_cl": make_plain(plan, ds, device, args.precision, channels_last=True),
    }
    flops: list[float] = []
    for r in range(args.rounds):
        for name, run in contenders.items():
            runs[name].extend(run(args.windows))
        flops.append(matmul_flops())
        print(
            f"  round {r + 1}: "
            + ", ".join(f"{k} {max(v[-args.windows :]):,.0f}" for k, v in runs.items())
            + " images/s (best window)",
            flush=True,
        )
    best = {k: max(v) for k, v in runs.items()}
    median = {k: statistics.median(v) for k, v in runs.items()}
    peak = max(flops)
    step_flops = 3 * plan.flops
    print(f"best window of {len(runs['fit'])} per contender (median in brackets):")
    print(f"specdsl.train.fit      {best['fit']:8,.0f} images/s ({median['fit']:,.0f})")
    print(
        f"plain PyTorch loop     {best['plain']:8,.0f} images/s ({median['plain']:,.0f})   "
        f"fit / plain = {best['fit'] / best['plain']:.2f} (target >= 0.95)"
    )
    print(
        f"Keras fit (torch)      {best['keras']:8,.0f} images/s ({median['keras']:,.0f})   "
        f"fit / keras = {best['fit'] / best['keras']:.2f} (target >= 1.3)"
    )
    print(
        f"plain, channels_last   {best['plain_cl']:8,.0f} images/s ({median['plain_cl']:,.0f})   "
        f"channels_last / NCHW = {best['plain_cl'] / best['plain']:.2f}"
    )
    print(f"matmul 2048x2048 fp32  {peak / 1e9:8,.1f} GFLOP/s")
    print(
        f"training step          {best['fit'] * step_flops / 1e9:8,.1f} GFLOP/s (3 x {plan.flops / 1e6:.2f} MFLOPs per "
        f"image) = {best['fit'] * step_flops / peak:.0%} of the matmul's"
    )


if __name__ == "__main__":
    main()
