"""Training throughput of specdsl.train.fit against hand-written PyTorch loops and Keras' fit, in one run.

    python benchmarks/train_speed.py [--model mnist|resnet50|all] [--device D] [--precision fp32|bf16|fp16]
        [--images N] [--batch B] [--size S] [--windows 3] [--rounds 5] [--threads N] [--quick] [--json PATH]

Models: ``mnist``, the MNIST lab CNN (28x28x1: conv 64 3x3 relu, conv 32 3x3 relu, flatten, dense 10 softmax) at
batch 128 on MNIST from specdsl.data (digits resized to 28x28 when MNIST cannot be had); ``resnet50``,
examples/resnet50.yaml (Keras' ResNet50, 1,000 classes) at ``--size`` (224) on synthetic batches (random uint8
images and labels) at batch 64. Every contender trains the same model (specdsl.build) on the same images, built
once and trained on across rounds. In each round each contender runs one warm-up epoch and ``--windows`` timed
epochs of ``--images`` images, the contenders one after the other; the best window of each is the headline
(other processes on a shared machine only ever slow a window down), the median is shown beside it.

Contenders: ``fit`` (specdsl.train.fit, ``train.channels_last: auto``, the precision asked); ``plain`` and
``plain_cl`` (what a PyTorch user writes: tensors on the device, randperm batches, Adam as Keras sets it, autocast
and a gradient scaler for fp16, in NCHW and in channels_last: the hand-written AMP + channels_last loop is the
target's reference); ``keras`` (Keras 3's fit on its torch backend, in the precision's dtype policy). Printed:

- images/s of each; fit / plain_cl (target >= 0.95), fit / plain, fit / keras (target >= 1.3);
- the FLOP/s of a large matmul on the device in the precision's dtype (fp32 matmuls on CUDA in full fp32:
  torch's default, no TF32), and the fraction of it fit's training step reaches, a step taken as 3x the plan's
  forward FLOPs per image.

``--quick`` is a tiny configuration that runs anywhere in seconds (the smoke test's): 64 images, batch 16,
ResNet-50 at 32x32, one round of one window, a 512x512 matmul. ``--json`` writes the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parents[1]
MNIST_SPEC = {
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
DEFAULTS = {"mnist": {"batch": 128, "images": 1280}, "resnet50": {"batch": 64, "images": 640}}


def resnet_plan(size: int):
    import yaml

    import specdsl

    doc = yaml.safe_load((ROOT / "examples" / "resnet50.yaml").read_text())
    doc["input"] = [size, size, 3]
    return specdsl.check(doc)


def load_mnist(n: int):
    from specdsl.data import Dataset, load_dataset
    from specdsl.errors import DataError

    try:
        ds = load_dataset("mnist")
    except DataError as e:
        print(f"MNIST not available ({e.message}); using digits resized to 28x28")
        ds = load_dataset("digits", image_size=(28, 28), split=(0.98, 0.01, 0.01))
    x, y = ds.x_train[:n], ds.y_train[:n]
    return Dataset(ds.name, x, y, x[:0], y[:0], x[:0], y[:0], ds.class_names)


def synthetic(n: int, shape: tuple[int, int, int], classes: int):
    import numpy as np

    from specdsl.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    y = rng.integers(0, classes, n).astype(np.int64)
    return Dataset("synthetic", x, y, x[:0], y[:0], x[:0], y[:0], [str(i) for i in range(classes)])


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_fit(plan, ds, model, windows: int, batch: int, device: str, precision: str) -> list[float]:
    from specdsl.spec import TrainSpec
    from specdsl.train import fit

    train = TrainSpec(epochs=windows + 1, batch_size=batch, device=device, precision=precision)
    result = fit(plan, dataset=ds, train=train, model=model)
    return [h["images_per_s"] for h in result.history[1:]]  # the first epoch warms up


def make_plain(plan, ds, batch: int, device: str, precision: str, channels_last: bool):
    """What a PyTorch user writes for this model: tensors on the device, randperm batches, Adam as Keras sets it,
    autocast (and a gradient scaler for fp16), optionally channels_last model and data."""
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
        sync(device)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g).to(x.device)
        for lo in range(0, n, batch):
            idx = perm[lo : lo + batch]
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
        sync(device)
        return n / (time.perf_counter() - t0)

    def run(windows: int) -> list[float]:
        epoch()
        return [epoch() for _ in range(windows)]

    return run


def make_keras(plan, ds, batch: int, device: str, precision: str):
    import keras
    import numpy as np

    import specdsl
    from specdsl.train._keras import POLICIES, keras_device

    keras.utils.set_random_seed(0)
    where = keras_device(keras, device)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision] or previous)
    try:
        with keras.device(where):
            model = specdsl.build(plan, backend="keras")
    finally:
        keras.config.set_dtype_policy(previous)
    optimizer = keras.optimizers.Adam(1e-3)
    if precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = ds.x_train.astype(np.float32) / 255

    def run(windows: int) -> list[float]:
        times: list[float] = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                sync(device)
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                sync(device)
                times.append(time.perf_counter() - self.t0)

        with keras.device(where):
            model.fit(x, ds.y_train, batch_size=batch, epochs=windows + 1, verbose=0, callbacks=[Timer()])
        return [len(ds.y_train) / t for t in times[1:]]

    return run


def matmul_flops(device: str, precision: str, n: int, repeats: int = 5) -> float:
    """The best FLOP/s of an n x n matmul on ``device`` in the precision's dtype (fp32 for fp32)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    if device == "cpu" and dtype == torch.float16:
        dtype = torch.float32  # a CPU has no fast fp16 matmul: fp32 is the rate to compare with
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def bench_model(name: str, args, device: str) -> dict:
    import torch

    import specdsl

    batch = args.batch or DEFAULTS[name]["batch"]
    images = args.images or DEFAULTS[name]["images"]
    if name == "mnist":
        plan = specdsl.check(MNIST_SPEC)
        ds = load_mnist(images)
    else:
        plan = resnet_plan(args.size)
        ds = synthetic(images, (args.size, args.size, 3), plan.output_shape[-1])
    print(
        f"{plan.name} at {'x'.join(map(str, plan.input_shape))}: {plan.params:,} parameters, "
        f"{plan.flops / 1e6:,.2f} MFLOPs forward per image; {ds.name}, {len(ds.y_train):,} images per window, "
        f"batch {batch}, torch {torch.__version__}, {torch.get_num_threads()} threads, {device} in "
        f"{args.precision}, load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    fit_model = specdsl.build(plan)
    contenders = {
        "fit": lambda w: bench_fit(plan, ds, fit_model, w, batch, device, args.precision),
        "plain_cl": make_plain(plan, ds, batch, device, args.precision, channels_last=True),
        "plain": make_plain(plan, ds, batch, device, args.precision, channels_last=False),
    }
    if not args.no_keras:
        contenders["keras"] = make_keras(plan, ds, batch, device, args.precision)
    runs: dict[str, list[float]] = {k: [] for k in contenders}
    flops: list[float] = []
    for r in range(args.rounds):
        for key, run in contenders.items():
            runs[key].extend(run(args.windows))
        flops.append(matmul_flops(device, args.precision, args.matmul))
        print(
            f"  round {r + 1}: "
            + ", ".join(f"{k} {max(v[-args.windows :]):,.0f}" for k, v in runs.items())
            + " images/s (best window)",
            flush=True,
        )
    best = {k: max(v) for k, v in runs.items()}
    median = {k: statistics.median(v) for k, v in runs.items()}
    peak = max(flops)
    step = 3 * plan.flops * best["fit"]
    ratios = {
        "fit/plain_cl": best["fit"] / best["plain_cl"],
        "fit/plain": best["fit"] / best["plain"],
        **({"fit/keras": best["fit"] / best["keras"]} if "keras" in best else {}),
    }
    print(f"best window of {len(runs['fit'])} per contender (median in brackets):")
    print(f"specdsl.train.fit          {best['fit']:9,.1f} images/s ({median['fit']:,.1f})")
    print(
        f"plain AMP + channels_last  {best['plain_cl']:9,.1f} images/s ({median['plain_cl']:,.1f})   "
        f"fit / plain_cl = {ratios['fit/plain_cl']:.2f} (target >= 0.95)"
    )
    print(
        f"plain AMP, NCHW            {best['plain']:9,.1f} images/s ({median['plain']:,.1f})   "
        f"fit / plain = {ratios['fit/plain']:.2f}; channels_last / NCHW = "
        f"{best['plain_cl'] / best['plain']:.2f}"
    )
    if "keras" in best:
        print(
            f"Keras fit (torch)          {best['keras']:9,.1f} images/s ({median['keras']:,.1f})   "
            f"fit / keras = {ratios['fit/keras']:.2f} (target >= 1.3)"
        )
    dtype = (
        "fp32"
        if args.precision == "fp32" or (device == "cpu" and args.precision == "fp16")
        else args.precision
    )
    print(f"matmul {args.matmul}x{args.matmul} {dtype}  {peak / 1e9:9,.1f} GFLOP/s")
    print(
        f"training step              {step / 1e9:9,.1f} GFLOP/s (3 x {plan.flops / 1e6:,.2f} MFLOPs per image) "
        f"= {step / peak:.1%} of the matmul's"
    )
    return {
        "model": plan.name,
        "input": list(plan.input_shape),
        "batch": batch,
        "images": len(ds.y_train),
        "device": device,
        "precision": args.precision,
        "best": best,
        "median": median,
        "ratios": ratios,
        "matmul_flops": peak,
        "step_flops": step,
        "fraction_of_matmul": step / peak,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mnist", choices=["mnist", "resnet50", "all"])
    parser.add_argument(
        "--images", type=int, default=None, help="images per timed window (mnist 1280, resnet 640)"
    )
    parser.add_argument("--batch", type=int, default=None, help="batch size (mnist 128, resnet50 64)")
    parser.add_argument(
        "--size", type=int, default=224, help="ResNet-50's input height and width (default 224)"
    )
    parser.add_argument("--windows", type=int, default=3, help="timed windows per contender and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the contenders interleaved in each")
    parser.add_argument(
        "--matmul", type=int, default=None, help="matmul size (default 8192 on CUDA, else 2048)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)"
    )
    parser.add_argument("--device", default="auto", help="a train.device value (default auto)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--no-keras", action="store_true", help="leave Keras' fit out")
    parser.add_argument("--quick", action="store_true", help="a tiny configuration that runs in seconds")
    parser.add_argument("--json", type=Path, default=None, help="write the summary to this file")
    args = parser.parse_args(argv)

    import torch

    from specdsl.train import device_name

    if args.threads:
        torch.set_num_threads(args.threads)
    device = device_name(args.device)
    if args.quick:
        args.images, args.batch, args.rounds, args.windows = args.images or 64, args.batch or 16, 1, 1
        args.size = 32 if args.size == 224 else args.size
        args.matmul = args.matmul or 512
    args.matmul = args.matmul or (8192 if device.startswith("cuda") else 2048)
    if device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    models = ["mnist", "resnet50"] if args.model == "all" else [args.model]
    summary = {"models": [bench_model(m, args, device) for m in models]}
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
