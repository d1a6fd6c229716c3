"""Does `specdsl validate` grow linearly with the spec? Times at two sizes, ten times apart, and their ratio.

1. Model specs of 5,000 and 50,000 layers, written out layer by layer and made by one `repeat`: the time to read
   the file (YAML), to expand and validate it (the spec's own work) and to plan it, in this process.
2. Search spaces of 500 and 5,000 distributions (one `{int: ...}` per dense layer): `check_space`, as `validate`
   runs it: every distribution's form ("forms", once), then samples drawn, expanded and planned until `samples`
   or CHECK_LAYERS layers in all (500 distributions get 100 samples, 5,000 get 10), and the time per sample.
3. `specdsl validate` as a process on the largest of each.

For each pair the ratio of the larger time to the smaller is printed beside 10.0 (linear); a quadratic step would
show as a ratio near 100. CPU time of this process is reported (time.process_time), not wall time, so that other
work on a shared machine does not count; each figure is the best of --repeats.

    python benchmarks/validate_scale.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from specdsl.plan import plan  # noqa: E402
from specdsl.search._space import check_space, distributions, read_search, read_space  # noqa: E402
from specdsl.spec import from_tree, load_text, read_text  # noqa: E402


def sequential(n: int) -> str:
    # short layers: a file holds at most 200,000 YAML values (specdsl.spec.MAX_VALUES)
    body = "".join("  - dense: 8\n" if i % 2 == 0 else "  - batchnorm\n" for i in range(n))
    return "input: [8]\nlayers:\n" + body


def repeated(n: int) -> str:
    return f"input: [8]\nlayers:\n  - repeat: {n // 2}\n    layers:\n      - dense: 8\n      - batchnorm\n"


def space(n: int) -> str:
    body = "".join("  - dense: {units: {int: [4, 16]}, activation: relu}\n" for _ in range(n))
    return (
        "input: [16, 16, 1]\nlayers:\n  - flatten\n" + body + "  - dense: {units: 10, activation: softmax}\n"
        "data: {dataset: digits}\n"
    )


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def model_times(path: Path, repeats: int) -> tuple[float, float, float, int]:
    name = str(path)
    read = best(lambda: load_text(read_text(name), name), repeats)
    raw = load_text(read_text(name), name)
    expand = best(lambda: from_tree(raw, name), repeats)
    spec = from_tree(raw, name)
    planned = best(lambda: plan(spec), repeats)
    return read, expand, planned, len(spec.layers)


# `specdsl validate PATH`, reporting the peak resident memory of its own process image at exit (VmHWM; a child's
# ru_maxrss would count the pages of this process it was forked from)
VALIDATE = """
import atexit, sys
def peak():
    with open("/proc/self/status") as f:
        print(next(line.split()[1] for line in f if line.startswith("VmHWM:")), file=sys.stderr)
atexit.register(peak)
sys.argv = ["specdsl", "validate", sys.argv[1]]
from specdsl.cli import main
main()
"""


def process(path: Path) -> tuple[float, float]:
    """CPU seconds and peak resident MiB of `specdsl validate PATH` as a process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-c", VALIDATE, str(path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, int(proc.stderr.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'model spec':32s} {'layers':>7s} {'read':>8s} {'expand':>8s} {'plan':>8s}   (CPU seconds)")
        largest = {}
        for form, make in (("layer by layer", sequential), ("by repeat", repeated)):
            rows = []
            for n in (5_000, 50_000):
                path = folder / f"{form.split()[-1]}_{n}.yaml"
                path.write_text(make(n))
                read, expand, planned, layers = model_times(path, args.repeats)
                rows.append((read, expand, planned))
                print(f"{form:32s} {layers:7,d} {read:8.3f} {expand:8.3f} {planned:8.3f}")
                largest[form] = path
            ratios = [big / small if small else float("nan") for small, big in zip(*rows)]
            print(f"{'  ratio 50k / 5k (linear: 10.0)':32s} {'':7s} " + " ".join(f"{r:8.1f}" for r in ratios))
        print()
        print(
            f"{'search space':32s} {'samples':>7s} {'forms':>8s} {'check':>8s} {'/sample':>8s}   (CPU seconds)"
        )
        forms, per_sample = [], []
        for n in (500, 5_000):
            path = folder / f"space_{n}.yaml"
            path.write_text(space(n))
            tree, file, _ = read_space(path)
            report = check_space(path, tree=tree)
            forms.append(
                best(
                    lambda tree=tree, file=file: (distributions(tree, file), read_search(tree, file)),
                    args.repeats,
                )
            )
            seconds = best(lambda path=path, tree=tree: check_space(path, tree=tree), args.repeats)
            per_sample.append((seconds - forms[-1]) / report.samples)
            print(
                f"{f'{n:,} distributions':32s} {report.samples:7d} {forms[-1]:8.3f} {seconds:8.3f} "
                f"{per_sample[-1]:8.4f}"
            )
            largest[f"{n:,} distributions"] = path
        print(
            f"{'  ratio 5k / 500 (linear: 10.0)':32s} {'':7s} {forms[1] / forms[0]:8.1f} {'':8s} "
            f"{per_sample[1] / per_sample[0]:8.1f}"
        )
        print()
        print(f"{'specdsl validate, a process':32s} {'CPU s':>7s} {'peak MiB':>9s}")
        for label in ("layer by layer", "by repeat", "5,000 distributions"):
            cpu, peak = process(largest[label])
            print(f"{label:32s} {cpu:7.2f} {peak:9.0f}")


if __name__ == "__main__":
    main()
