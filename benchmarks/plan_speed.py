"""How fast is static checking? Ratios against baselines measured in the same run.

1. `specdsl validate examples/` as a whole process, against `python -c pass` (the interpreter's own start-up)
   and `python -c "import torch"` (what any framework-based check pays before it starts). Goal: < 0.3 s.
2. Planning one model in-process (load + expand + validate + plan), against building the same model in torch
   and running torchinfo on it. Goal: planning >= 1000x faster.

    python benchmarks/plan_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall time of a whole process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_call(fn, min_time: float = 0.5) -> float:
    """Median seconds per call over batches lasting at least ``min_time`` in all."""
    fn()  # warm up: first-use costs (pydantic validators, torch kernels) are not the steady state
    n, batches, spent = 1, [], 0.0
    while spent < min_time:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        batches.append(took / n)
        spent += took
        n = min(n * 2, 1024)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable

    print("1. whole process (median of", args.repeats, "runs)")
    base = wall([py, "-c", "pass"], args.repeats)
    validate = wall([py, "-m", "specdsl", "validate", str(EXAMPLES)], args.repeats)
    torch_import = wall([py, "-c", "import torch"], args.repeats)
    n = len(list(EXAMPLES.glob("*.yaml")))
    print(f"   python -c pass                     {base:7.3f} s")
    print(f"   specdsl validate examples/ ({n} files) {validate:7.3f} s   ({validate / base:.1f}x the bare interpreter)")
    print(f"   python -c 'import torch'           {torch_import:7.3f} s   (validate takes {validate / torch_import:.2f}x of it)")
    print(f"   goal < 0.3 s: {'met' if validate < 0.3 else 'NOT met'} on this machine now")

    print("2. one model in-process: plan (and text -> plan) vs torch build + torchinfo; ratios = build / ours")
    import specdsl

    try:
        import torchinfo  # noqa: F401
    except ImportError:
        torchinfo = None
    for name in ("mnist_cnn", "cifar10_cnn", "resnet50"):
        path = EXAMPLES / f"{name}.yaml"
        text = path.read_text()
        t_check = per_call(lambda: specdsl.check(text))  # text -> YAML -> expand -> validate -> plan
        spec = specdsl.load(text)
        t_plan = per_call(lambda: specdsl.plan(spec))  # the analytic count alone, from a loaded spec
        plan = specdsl.check(text)

        def build_and_count():
            model = specdsl.build(plan, "torch")
            if torchinfo is not None:
                torchinfo.summary(model, input_size=(1, *plan.input_shape[-1:], *plan.input_shape[:-1]), verbose=0)
            else:
                sum(p.numel() for p in model.parameters())

        t_build = per_call(build_and_count, min_time=2.0)
        what = "build + torchinfo" if torchinfo is not None else "build + count"
        print(
            f"   {name:12s} plan {t_plan * 1e3:7.3f} ms ({t_build / t_plan:6.0f}x)   text->plan {t_check * 1e3:7.3f} ms "
            f"({t_build / t_check:5.0f}x)   {what} {t_build * 1e3:8.1f} ms"
        )


if __name__ == "__main__":
    main()
