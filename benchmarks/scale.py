"""Training from images memory-mapped from disk against the in-memory float32 path, on one photo folder, in one run.

    python benchmarks/scale.py [--images 3000] [--size 150] [--epochs 1] [--rounds 2] [--threads N] [--folder DIR]

A folder of ``--images`` JPEGs at ``--size`` x ``--size`` (noisy made-up photos, two classes) is written to a temporary
folder (or ``--folder`` is read), decoded once into both caches (the .npz of ``storage: memory`` and the
memory-mapped .npy of ``storage: disk``), and a small CNN is trained for ``--epochs`` on it both ways, each in a
process of its own (so that each peak is its own), the two alternating for ``--rounds``. Printed per way:

- peak RSS (the kernel's ``VmHWM``; ``resource.getrusage`` where there is none), and above the baseline: the
  same process with torch and specdsl imported, the model built and one training step taken on a batch of
  zeros, before any data is loaded;
- training images/s (fit's epoch), and the whole fit's seconds (the in-memory path converts to float32 first);
- for the disk path: the loader alone (one epoch of batches, no model), and a training epoch with the batches
  gathered by the background thread and in the training thread, and how much of the loader's time the
  background thread hides (``overlap`` = (in thread - background) / loader alone: 1 is all of it, 0 none);

and the ratios disk / memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# 150x150x3 -> 37x37x16 -> 18x18x32 -> 2 classes: a step costs about what the loader does per image
SPEC = {
    "name": "scale_cnn",
    "layers": [
        {"conv2d": {"filters": 16, "kernel": 5, "strides": 4, "padding": "same", "activation": "relu"}},
        {"conv2d": {"filters": 32, "kernel": 3, "strides": 2, "padding": "same", "activation": "relu"}},
        "global_avgpool2d",
        {"dense": {"units": 2, "activation": "softmax"}},
    ],
    "train": {"optimizer": "adam", "batch_size": 64, "seed": 0},
}


def write_photos(root: Path, n: int, size: int) -> None:
    """``n`` JPEGs of ``size`` x ``size``, half cats and half dogs: smooth colour fields plus noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        name = ("cat", "dog")[i % 2]
        (root / name).mkdir(parents=True, exist_ok=True)
        base = np.stack([yy * rng.uniform(50, 200), xx * rng.uniform(50, 200), (yy + xx) * 60], axis=-1)
        noise = rng.normal(0, 20, (size, size, 3))
        a = np.clip(base + noise + (60 if name == "dog" else 0), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(root / name / f"{i}.jpg", quality=90)


def load(folder: str, size: int, storage: str):
    import warnings

    from specdsl.data import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("folder", path=folder, image_size=(size, size), storage=storage)


def plan_for(size: int):
    import yaml

    import specdsl

    spec = {**SPEC, "input": [size, size, 3], "data": {"dataset": "folder"}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(spec, f)
    try:
        return specdsl.check(f.name)
    finally:
        os.unlink(f.name)


def peak_rss() -> int:
    """The process's peak RSS: the kernel's VmHWM, else ``ru_maxrss`` (which, on Linux, a process started by
    fork and exec inherits from its parent's size at the fork: it would show this benchmark's own memory)."""
    from specdsl.train import peak_bytes

    return peak_bytes() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(args) -> dict:
    """One measured way (``args.child``): memory or disk."""
    import torch

    from specdsl.backends import get_backend
    from specdsl.train import fit, resident_bytes

    if args.threads:
        torch.set_num_threads(args.threads)
    plan = plan_for(args.size)
    torch.manual_seed(0)
    model = get_backend("torch").build(plan)
    # one step on a batch of zeros first, so that the baseline holds what the first step loads and keeps
    warm = get_backend("torch").build(plan)
    x = torch.zeros(plan.spec.train.batch_size, 3, args.size, args.size)
    torch.nn.functional.cross_entropy(warm(x), torch.zeros(len(x), dtype=torch.int64)).backward()
    del warm, x
    baseline = resident_bytes()
    t0 = time.perf_counter()
    dataset = load(args.folder, args.size, args.child)
    result = fit(plan, dataset=dataset, model=model, epochs=args.epochs)
    out = {
        "way": args.child,
        "baseline": baseline,
        "peak": peak_rss(),
        "images_per_s": max(h["images_per_s"] for h in result.history),
        "fit_s": time.perf_counter() - t0,
        "n_train": len(dataset.y_train),
    }
    if args.child == "disk":  # the fit's training time of its best epoch is both together
        out.update(overlap(plan, dataset), both_s=len(dataset.y_train) / out["images_per_s"])
    return out


def overlap(plan, dataset) -> dict:
    """Seconds of one epoch of the loader alone (no model), and of a fit's epoch with the batches gathered in the
    training thread instead of the background one."""
    import torch

    from specdsl.spec import Augment
    from specdsl.train import fit
    from specdsl.train._augment import Augmenter
    from specdsl.train._batches import normalization
    from specdsl.train._stream import StreamBatches, normalizer

    cpu = torch.device("cpu")
    scale, offset = normalization(dataset.x_train, "unit")
    low = torch.tensor(offset, dtype=torch.float32)
    batches = StreamBatches(
        dataset.x_train,
        dataset.y_train,
        plan.spec.train.batch_size,
        torch.Generator().manual_seed(0),
        Augmenter(Augment(), torch.Generator(), low, low + 1),
        torch.channels_last,
        normalizer(scale, offset, cpu),
        cpu,
    )
    t0 = time.perf_counter()
    for _ in batches.epoch():
        pass
    loader = time.perf_counter() - t0

    def in_this_thread(self):
        perm = torch.randperm(len(self.labels), generator=self.generator).numpy()
        for lo, hi in self.bounds:
            rows = perm[lo:hi]
            xb = self.normalize(torch.from_numpy(self.images.gather(rows)))
            yield xb.contiguous(memory_format=self.memory_format), torch.from_numpy(self.labels[rows])

    threaded, StreamBatches.epoch = StreamBatches.epoch, in_this_thread
    try:
        result = fit(plan, dataset=dataset, epochs=1)
    finally:
        StreamBatches.epoch = threaded
    return {"loader_s": loader, "serial_s": len(dataset.y_train) / result.history[0]["images_per_s"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--folder", default=None)
    parser.add_argument("--child", choices=["memory", "disk"], default=None)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SPECDSL_CACHE": str(Path(tmp) / "cache")}
        if args.folder is None:
            args.folder = str(Path(tmp) / "photos")
            t0 = time.perf_counter()
            write_photos(Path(args.folder), args.images, args.size)
            print(
                f"wrote {args.images:,} JPEGs at {args.size}x{args.size} in {time.perf_counter() - t0:.1f} s"
            )
        os.environ["SPECDSL_CACHE"] = env["SPECDSL_CACHE"]
        for storage in ("memory", "disk"):
            t0 = time.perf_counter()
            load(args.folder, args.size, storage)
            print(f"decoded into the {storage} cache in {time.perf_counter() - t0:.1f} s")
        npy = next((Path(tmp) / "cache" / "folders").glob("*.npy"))
        print(f"memory-mapped cache: {npy.stat().st_size / 1e6:,.0f} MB on disk")
        runs: dict[str, list[dict]] = {"memory": [], "disk": []}
        for _ in range(args.rounds):
            for way in runs:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    way,
                    "--folder",
                    args.folder,
                    "--size",
                    str(args.size),
                ]
                cmd += ["--epochs", str(args.epochs)] + (
                    ["--threads", str(args.threads)] if args.threads else []
                )
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
                runs[way].append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary = report(runs)
    return summary


def report(runs: dict[str, list[dict]]) -> dict:
    mib = 1024**2
    best = {}
    print(
        f"\n{'way':<8} {'peak RSS MiB':>13} {'above baseline':>15} {'images/s':>9} {'fit s':>7}   (best of runs)"
    )
    for way, rs in runs.items():
        b = {
            "peak": min(r["peak"] for r in rs),
            "above": min(r["peak"] - r["baseline"] for r in rs),
            "images_per_s": max(r["images_per_s"] for r in rs),
            "fit_s": min(r["fit_s"] for r in rs),
        }
        best[way] = b
        mem = f"{b['peak'] / mib:>13,.0f} {b['above'] / mib:>15,.0f}"
        print(f"{way:<8} {mem} {b['images_per_s']:>9,.0f} {b['fit_s']:>7.1f}")
    ratios = {k: best["disk"][k] / best["memory"][k] for k in ("peak", "above", "images_per_s", "fit_s")}
    print(
        f"disk / memory: peak RSS {ratios['peak']:.2f}, above baseline {ratios['above']:.2f}, "
        f"images/s {ratios['images_per_s']:.2f}, fit seconds {ratios['fit_s']:.2f}"
    )
    best["overlap"] = []
    for r in runs["disk"]:
        hidden = (r["serial_s"] - r["both_s"]) / r["loader_s"]
        best["overlap"].append(hidden)
        print(
            f"one epoch: the loader alone {r['loader_s']:.2f} s; training with it in the background "
            f"{r['both_s']:.2f} s, in the training thread {r['serial_s']:.2f} s: overlap {hidden:.2f}"
        )
    best["ratios"] = ratios
    best["median_overlap"] = statistics.median(best["overlap"])
    return best


if __name__ == "__main__":
    main()
