"""How fast are large specs read and summarized? Times and ratios measured in the same run.

1. Reading YAML: a sequential spec of N dense layers (N = 12,500, 25,000, 50,000) through specdsl's loader (text
   with a location for every value), against PyYAML's own ``yaml.load(text, CSafeLoader)`` (plain data, no
   locations); and a 7 MB flow list of a million numbers, which the loader refuses past 200,000 values.
2. Summarizing: the plan's table as ``summary`` prints it, text and rich table, against rendering the same rows
   with ``rich.table.Table`` (how the table was printed before; measured on the first 2,000 rows and scaled,
   since it costs seconds per 10,000 rows).
3. ``specdsl summary`` as a whole process on the 50,000-layer spec (table, text and JSON), beside ``validate``.

Each size doubles the one before: a linear cost shows as a ratio of about 2 between neighbours.

    python benchmarks/summary_speed.py [--repeats 3] [--layers 50000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best(fn, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``fn()``, in seconds (the least disturbed by other work)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def layers_spec(n: int) -> str:
    return "input: [8]\nlayers:\n" + "".join("  - dense: 8\n" for _ in range(n))


def flow_list(size: int = 7_000_000) -> str:
    items = ", ".join(str(i) for i in range(1_000_000))[:size].rsplit(",", 1)[0]
    return "input: [8]\nlayers: [dense: 8]\ndescription: [" + items + "]\n"


def rich_table(rows: list[list[str]], header: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Model", title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if i in (2, 3, 4) else "left", no_wrap=i < 2)
    for r in rows:
        table.add_row(*r)
    Console(file=io.StringIO(), width=180).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=50_000)
    args = parser.parse_args()

    import yaml
    from rich.console import Console

    import specdsl
    from specdsl import SpecError
    from specdsl.cli._render import summary_table
    from specdsl.plan import summary_cells, summary_text
    from specdsl.spec import load_text

    sizes = [args.layers // 4, args.layers // 2, args.layers]
    print(f"1. reading YAML (best of {args.repeats})")
    print(f"{'layers':>8} {'specdsl':>9} {'PyYAML':>9} {'ratio':>6} {'vs half':>8}")
    previous = None
    for n in sizes:
        text = layers_spec(n)
        ours = best(lambda text=text: load_text(text, "spec.yaml"), args.repeats)
        plain = best(lambda text=text: yaml.load(text, Loader=yaml.CSafeLoader), args.repeats)
        growth = f"{ours / previous:.2f}x" if previous else "-"
        print(f"{n:>8,} {ours:>8.3f}s {plain:>8.3f}s {ours / plain:>5.2f}x {growth:>8}")
        previous = ours
    text = flow_list()

    def refuse() -> None:
        try:
            load_text(text, "flow.yaml")
        except SpecError:
            return
        raise AssertionError("the flow list was accepted")

    refused = best(refuse, args.repeats)
    print(
        f"a {len(text) / 1e6:.1f} MB flow list of {text.count(',') + 1:,} numbers: refused in {refused:.3f}s "
        f"(PyYAML's load of all of it: {best(lambda: yaml.load(text, Loader=yaml.CSafeLoader), 1):.3f}s)"
    )

    print(f"\n2. summarizing (best of {args.repeats})")
    print(
        f"{'layers':>8} {'check':>8} {'text':>8} {'table':>8} {'rich.table':>11} {'ratio':>7} {'vs half':>8}"
    )
    previous = None
    sample = 2_000
    for n in sizes:
        plan = specdsl.check(layers_spec(n))
        check = best(lambda n=n: specdsl.check(layers_spec(n)), 1)
        plain = best(lambda plan=plan: summary_text(plan), args.repeats)
        table = best(
            lambda plan=plan: summary_table(
                plan, Console(file=io.StringIO(), force_terminal=True, width=180)
            ),
            args.repeats,
        )
        header, cells = summary_cells(plan)
        old = best(lambda cells=cells, header=header: rich_table(cells[:sample], header), 1) * n / sample
        growth = f"{table / previous:.2f}x" if previous else "-"
        print(
            f"{n:>8,} {check:>7.3f}s {plain:>7.3f}s {table:>7.3f}s {old:>10.2f}s {old / table:>6.0f}x {growth:>8}"
        )
        previous = table

    print(f"\n3. whole processes on {args.layers:,} layers (median of {args.repeats})")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.yaml")
        Path(path).write_text(layers_spec(args.layers))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cmds = {
            "validate": ["validate", path],
            "summary": ["summary", path],
            "summary --format text": ["summary", path, "--format", "text"],
            "summary --format json": ["summary", path, "--format", "json"],
        }
        for name, cmd in cmds.items():
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "specdsl", *cmd],
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                times.append(time.perf_counter() - start)
            print(f"{name:>24}: {statistics.median(times):.2f}s")


if __name__ == "__main__":
    main()
