"""How fast is static checking? Ratios against baselines measured in the same run.

1. `specdsl validate examples/` as a whole process, against `python -c pass` (the interpreter's own start-up),
   `python -c "import torch"` (what any framework-based check pays before it starts), and the reference the goal
   was set against: a process that imports yaml and pydantic, validates one layer model and plans it (about
   0.16 s when the goal "validate examples/ in under 0.3 s" was set). Since this machine's speed varies, the goal
   is checked as a ratio to that reference measured in the same run: 0.3 / 0.16 = 1.9x. The validators' cache
   (specdsl/spec/_validators.py) is measured warm, as after the first run, and cold.
2. Planning one model in-process (load + expand + validate + plan), against building the same model in torch
   and running torchinfo on it. Goal: planning >= 1000x faster.

    python benchmarks/plan_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


# The goal's reference: yaml + pydantic, one layer model validated and planned.
REFERENCE = """
import yaml
from pydantic import BaseModel, ConfigDict, Field

class Conv2D(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filters: int = Field(ge=1)
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"

doc = yaml.safe_load("input: [32, 32, 3]\\nlayers:\\n  - conv2d: {filters: 32, kernel: [3, 3]}\\n")
conv = Conv2D.model_validate(doc["layers"][0]["conv2d"])
h, w, c = doc["input"]
out = ((h - conv.kernel[0]) // conv.strides[0] + 1, (w - conv.kernel[1]) // conv.strides[1] + 1, conv.filters)
params = conv.kernel[0] * conv.kernel[1] * c * conv.filters + conv.filters
"""
GOAL_SECONDS, GOAL_REFERENCE = 0.3, 0.16


def wall(
    cmds: dict[str, list[str]], repeats: int, env: dict[str, dict[str, str]] | None = None
) -> dict[str, float]:
    """Median wall time of whole processes, the commands interleaved so that the machine's drift hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeats):
        for key, cmd in cmds.items():
            start = time.perf_counter()
            subprocess.run(
                cmd,
                cwd=ROOT,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, **(env or {}).get(key, {})},
            )
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable

    # As an installed package is: byte-compiled (pip does it at install), the validators' cache written.
    subprocess.run(
        [py, "-m", "compileall", "-q", str(ROOT / "specdsl")], check=True, stdout=subprocess.DEVNULL
    )
    validate_cmd = [py, "-m", "specdsl", "validate", str(EXAMPLES)]
    subprocess.run(validate_cmd, cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    print("1. whole process (median of", args.repeats, "runs)")
    t = wall(
        {
            "pass": [py, "-c", "pass"],
            "reference": [py, "-c", REFERENCE],
            "validate": validate_cmd,
            "cold": validate_cmd,
            "torch": [py, "-c", "import torch"],
        },
        args.repeats,
        env={"cold": {"SPECDSL_NO_VALIDATOR_CACHE": "1"}},
    )
    n = len(list(EXAMPLES.glob("*.yaml")))
    ratio = t["validate"] / t["reference"]
    print(f"   python -c pass                          {t['pass']:7.3f} s")
    print(
        f"   reference: yaml + pydantic, plan 1 layer {t['reference']:7.3f} s   (0.16 s when the goal was set)"
    )
    print(
        f"   specdsl validate examples/ ({n} files)  {t['validate']:7.3f} s   ({ratio:.2f}x the reference; "
        f"{t['validate'] / t['torch']:.2f}x `import torch`)"
    )
    print(
        f"     without the validators' cache         {t['cold']:7.3f} s   "
        f"({t['cold'] / t['reference']:.2f}x the reference)"
    )
    print(f"   python -c 'import torch'                {t['torch']:7.3f} s")
    goal = GOAL_SECONDS / GOAL_REFERENCE
    print(
        f"   goal: validate within {goal:.2f}x the reference (0.3 s against 0.16 s): "
        f"{'met' if ratio <= goal else 'NOT met'}; "
        f"under 0.3 s absolute: {'yes' if t['validate'] < GOAL_SECONDS else 'no'}"
    )

    print(
        "2. one model in-process: plan (and text -> plan) vs torch build + torchinfo; ratios = build / ours"
    )
    import specdsl

    try:
        import torchinfo  # noqa: F401
    except ImportError:
        torchinfo = None
    for name in ("mnist_cnn", "cifar10_cnn", "resnet50", "inceptionv3"):
        path = EXAMPLES / f"{name}.yaml"
        text = path.read_text()
        t_check = per_call(
            lambda text=text: specdsl.check(text)
        )  # text -> YAML -> expand -> validate -> plan
        spec = specdsl.load(text)
        t_plan = per_call(
            lambda spec=spec: specdsl.plan(spec)
        )  # the analytic count alone, from a loaded spec
        plan = specdsl.check(text)

        def build_and_count(plan=plan):
            model = specdsl.build(plan, "torch")
            if torchinfo is not None:
                torchinfo.summary(
                    model, input_size=(1, *plan.input_shape[-1:], *plan.input_shape[:-1]), verbose=0
                )
            else:
                sum(p.numel() for p in model.parameters())

        t_build = per_call(build_and_count, min_time=2.0)
        what = "build + torchinfo" if torchinfo is not None else "build + count"
        print(
            f"   {name:12s} plan {t_plan * 1e3:7.3f} ms ({t_build / t_plan:6.0f}x)   "
            f"text->plan {t_check * 1e3:7.3f} ms ({t_build / t_check:5.0f}x)   {what} {t_build * 1e3:8.1f} ms"
        )


if __name__ == "__main__":
    main()
