"""Batched augmentation: specdsl's tensor ops (specdsl/train/_augment.py) against kornia's, on the same batches.

    python benchmarks/augment_speed.py [--repeats 20] [--threads N] [--device cpu]

Two batches, as the lectures' data have them: 256 images at 32x32x3 (CIFAR-10) and 64 at 150x150x3 (the cats and
dogs photos). Each contender applies the same set: horizontal flip, rotation 15 degrees, shift 0.1, zoom 0.1,
brightness, contrast and saturation 0.2, hue 0.05, a random crop with 4 pixels of padding and a cutout of a
quarter of each side; then each operation alone. Printed: the best and median milliseconds per batch over
``--repeats`` (the contenders interleaved, so a busy machine slows both alike) and kornia / specdsl (above 1:
specdsl is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

SETTINGS = {
    "flip": "horizontal",
    "rotation": 15.0,
    "shift": 0.1,
    "zoom": 0.1,
    "brightness": 0.2,
    "contrast": 0.2,
    "saturation": 0.2,
    "hue": 0.05,
    "crop": 4,
    "cutout": 0.25,
}
# each operation alone: the settings it takes
ALONE = {
    "flip": ["flip"],
    "affine": ["rotation", "shift", "zoom"],
    "crop": ["crop"],
    "colour": ["brightness", "contrast", "saturation", "hue"],
    "cutout": ["cutout"],
}
BATCHES = {"256x32x32": (256, 32), "64x150x150": (64, 150)}


def specdsl_augment(keys: list[str], device):
    import torch

    from specdsl.spec import Augment
    from specdsl.train._augment import Augmenter

    spec = Augment(**{k: SETTINGS[k] for k in keys})
    low = torch.zeros(3, device=device)
    return Augmenter(spec, torch.Generator().manual_seed(0), low, low + 1.0)


def kornia_augment(keys: list[str], size: int):
    import kornia.augmentation as K

    s = SETTINGS
    ops = []
    if "flip" in keys:
        ops.append(K.RandomHorizontalFlip())
    if "rotation" in keys:
        ops.append(
            K.RandomAffine(
                degrees=s["rotation"],
                translate=(s["shift"], s["shift"]),
                scale=(1 - s["zoom"], 1 + s["zoom"]),
                padding_mode="border",
                p=1.0,
            )
        )
    if "crop" in keys:
        ops.append(K.RandomCrop((size, size), padding=s["crop"], p=1.0))
    if "brightness" in keys:
        b, c, sat, hue = s["brightness"], s["contrast"], s["saturation"], s["hue"]
        ops.append(K.ColorJitter(brightness=b, contrast=c, saturation=sat, hue=hue, p=1.0))
    if "cutout" in keys:
        area = s["cutout"] ** 2
        ops.append(K.RandomErasing(scale=(area, area), ratio=(1.0, 1.0), value=0.0, p=1.0))
    return K.AugmentationSequential(*ops)


def time_pair(fns: dict, x, repeats: int) -> dict[str, list[float]]:
    import torch

    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn(x)  # warm-up
        for _ in range(repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(x)
                if x.device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - t0) * 1000)
    return times


def main(argv: list[str] | None = None, batches: dict | None = None) -> list[dict]:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}")
    print(
        f"{'batch':<12} {'ops':<8} {'specdsl ms':>11} {'kornia ms':>10} {'(medians)':>18} {'kornia/specdsl':>15}"
    )
    for label, (n, size) in (batches or BATCHES).items():
        x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        for ops, keys in {"all": list(SETTINGS), **ALONE}.items():
            fns = {"specdsl": specdsl_augment(keys, device), "kornia": kornia_augment(keys, size).to(device)}
            t = time_pair(fns, x, args.repeats)
            best = {k: min(v) for k, v in t.items()}
            med = {k: statistics.median(v) for k, v in t.items()}
            row = {
                "batch": label,
                "ops": ops,
                "best": best,
                "median": med,
                "ratio": best["kornia"] / best["specdsl"],
            }
            rows.append(row)
            print(
                f"{label:<12} {ops:<8} {best['specdsl']:>11.2f} {best['kornia']:>10.2f} "
                f"{med['specdsl']:>8.2f} {med['kornia']:>8.2f} {row['ratio']:>15.2f}"
            )
    return rows


if __name__ == "__main__":
    main()
