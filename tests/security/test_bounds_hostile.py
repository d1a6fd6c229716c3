"""The hostile files of the size and expression bounds (classes 2, 5 and 6 of tests/security/hostile/): each one is
refused by `specdsl validate` with exit code 2 and exactly its one line, in under 2 s of CPU time, and the process
that refuses them all stays under 512 MB of peak resident memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

HOSTILE = Path(__file__).resolve().parent / "hostile"
CPU_SECONDS = (
    3.0  # a guard against blow-ups: the heaviest case, a 7 MB flow list, takes 1.9 s on a quiet machine
)
PEAK_BYTES = 512 * 1024**2

EXPECTED = {
    "block_chain_1000.yaml": "203:14: layers[0].b0.layers[0].b1.layers[0].b2.l...0].b98.layers[0].b99.layers[0]: "
    "blocks and repeats nest more than 100 levels deep here (blocks b0 -> b1 -> b2 -> ... -> b99 -> b100). "
    "Write the inner blocks' layers out, or repeat them instead of nesting.",
    "block_parameters_at_every_pass.yaml": "10:9: layers[0].repeat[398].layers[0]: the spec expands to more than "
    "100,000 layers by here. Lower the repeat counts, or use fewer blocks.",
    "blocks_doubling_2_40.yaml": "166:10: layers[0]: block `b0` expands to at least 1,099,511,627,776 layers; a spec "
    "expands to at most 100,000. Lower the repeat counts, or use fewer blocks.",
    "blocks_doubling_without_repeat.yaml": "86:10: layers[0]: block `b0` expands to at least 1,099,511,627,776 layers; "
    "a spec expands to at most 100,000. Lower the repeat counts, or use fewer blocks.",
    "expression_100000_minus.yaml": "4:5: layers[0] (dense): an expression of 100,001 characters is too long; "
    "expressions are limited to 1,000 characters.",
    "expression_200000_terms.yaml": "4:5: layers[0] (dense): an expression of 399,999 characters is too long; "
    "expressions are limited to 1,000 characters.",
    "expression_chained_comparison.yaml": "7:18: layers[0]: `${0.5 if a < a < a < a < a < a < a < a < a < a < a "
    "< a < ...` takes 244 operations to evaluate, and the repeats around it run it 5,000 times; a spec's expressions "
    "take at most 1,000,000. Compute fewer values, or use fewer repeat passes.",
    "expression_complex_result.yaml": "4:5: layers[0] (dense): `(-8) ** 0.5` has no real value (a negative number to a "
    "fractional power).",
    "expression_conditional_chain.yaml": "4:5: layers[0] (dense): `1 if true else 1 if true else 1 if true else 1 if "
    "true el...` nests 66 operations deep; expressions are limited to 50.",
    "expression_deep_parentheses.yaml": "4:5: layers[0] (dense): `" + "(" * 57 + "...` is not an expression.",
    "expression_infinite_parameter.yaml": "5:5: layers[0] (dense): `x * 2` gives inf, not a finite number.",
    "expression_operations_repeated.yaml": "6:27: layers[0]: `${min(index,index,index,index,index,index,index,index,"
    "ind...` takes 164 operations to evaluate, and the repeats around it run it 20,000 times; a spec's expressions "
    "take at most 1,000,000. Compute fewer values, or use fewer repeat passes.",
    "expression_string_repetition.yaml": "5:35: layers[0] (dense): arithmetic takes numbers, but `word` is 'relu' (a "
    "string), in `word * 2 ** 62`.",
    "float_power_overflow.yaml": "4:5: layers[0] (dense): `1000000.0**64` overflows: its result is too large for a "
    "number.",
    "grid_float_step_1e-9.yaml": "6:14: layers[2].dropout: the grid would hold 500,000,001 combinations, more than the "
    "100,000 a grid search may have; this distribution (float in [0.0, 0.5] step 1e-09) has 500,000,001 values. Give "
    "it a coarser `step` or fewer options, or use another sampler (tpe, random, qmc).",
    "grid_float_without_step.yaml": "6:14: layers[2].dropout: the grid sampler needs a `step` on every float "
    "distribution, but `layers.2.dropout` has none. Add e.g. `step: 0.1`, or use another sampler (tpe, random, qmc).",
    "grid_product.yaml": "5:20: layers[1].dense.units: the grid would hold 1,000,000,000,000 combinations, more than "
    "the 100,000 a grid search may have; this distribution (int in [1, 100]) has 100 values, and 5 more "
    "distributions multiply them. Give it a coarser `step` or fewer options, or use another sampler (tpe, random, "
    "qmc).",
    "grid_two_billion_ints.yaml": "5:20: layers[1].dense.units: the grid would hold 2,000,000,000 combinations, more "
    "than the 100,000 a grid search may have; this distribution (int in [1, 2000000000]) has 2,000,000,000 values. "
    "Give it a coarser `step` or fewer options, or use another sampler (tpe, random, qmc).",
    "integer_in_message.yaml": "4:5: layers[0] (dense): `units`: input should be less than or equal to 2147483647 (got "
    "9999",  # the start: how much of the number a message quotes is the messages' rule, not the bounds'
    "integer_literal_5000_digits.yaml": "4:12: an integer of 5,000 digits; integers in a spec have at most 4,300 "
    "digits.",
    "integer_sexagesimal.yaml": "4:12: an integer of 6,001 digits; integers in a spec have at most 4,300 digits.",
    "long_names_of_deep_blocks.yaml": "201:19: layers[0].b0.layers[0].b1.layers[0].b2.l...repeat[7142].layers[0] "
    "(dense): the spec expands to more than 100,000 layers by here. Lower the repeat counts, or use fewer blocks.",
    "merge_key_not_a_mapping.yaml": "4:17: a merge key `<<` takes a mapping (such as `*base`) or a list of mappings, "
    "but got `5`.",
    "min_of_one_number.yaml": "4:5: layers[0] (dense): `min()` takes two or more numbers, but got one, in `min(5)`.",
    "nested_repeats_1000_cubed.yaml": "4:5: layers[0]: repeat of 1,000 expands to at least 1,000,000,000 layers; a "
    "spec expands to at most 100,000. Lower the repeat counts, or use fewer blocks.",
    "parameter_squared_30_times.yaml": "21:23: layers[0].s0.layers[0].s1.layers[0].s2.layers[0].s3.layers[0].s4."
    "layers[0].s5: `x * x` gives an integer of 31 digits, beyond the bound of 2**63 on integers in expressions.",
    "power_tower.yaml": "4:5: layers[0] (dense): `9 ** 10 ** 18` would give an integer of 954,242,509,439,324,929 "
    "digits, beyond the bound of 2**63 on integers in expressions.",
    "repeat_billion.yaml": "4:5: layers[0]: repeat of 1,000,000,000 expands to at least 1,000,000,000 layers; a spec "
    "expands to at most 100,000. Lower the repeat counts, or use fewer blocks.",
    "repeat_count_11000_digits.yaml": "4:13: layers[0]: an expression of 11,000 characters is too long; expressions "
    "are limited to 1,000 characters.",
    "repeat_unexpanded_body.yaml": "2010:5: layers[1] (dense): `units`: input should be greater than or equal "
    "to 1 (got 0).",
    "repeat_empty_passes.yaml": "4:5: layers[0]: repeat of 1,000,000,000 expands to at least 1,000,000,000 layers; a "
    "spec expands to at most 100,000. Lower the repeat counts, or use fewer blocks.",
    "repeat_int_distribution.yaml": "5:5: every one of 200 sampled architectures is invalid; the most common reason: "
    "repeat_int_distribution.yaml:5:5: layers[1]: repeat of 906,691,060 expands to at least 906,691,060 layers; a "
    "spec expands to at most 100,000. Narrow the distributions (fewer pooling stages, larger input) so some choices "
    "plan.",
    "reshape_600_axes.yaml": "4:5: layers[0] (reshape): `shape`: list should have at most 8 items after validation, "
    "not 600.",
}

PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from typer.testing import CliRunner
    from specdsl.cli import app
    runner = CliRunner()
    runner.invoke(app, ["validate", sys.argv[1]])  # the imports and validators, before anything is timed
    results = {}
    for name in sys.argv[1:]:
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = runner.invoke(app, ["validate", name])
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        results[name] = [result.exit_code, result.stderr, result.stdout, cpu]
    # the peak of this process image (ru_maxrss would count the parent's pages this process was forked with)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"results": results, "peak": peak}))
    """
)


def test_every_bounds_file_has_its_class_line():
    for name in EXPECTED:
        first = (HOSTILE / name).read_text().splitlines()[0]
        assert first.startswith(("# class 2: ", "# class 5: ", "# class 6: ", "# class 8: ")), name


def test_every_bounds_file_is_refused_in_one_line_quickly_and_small():
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *EXPECTED], cwd=HOSTILE, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (code, stderr, stdout, cpu) in report["results"].items():
        assert code == 2, (name, stderr)
        assert stdout == ""
        assert "Traceback" not in stderr
        (line,) = stderr.splitlines()
        expected = f"error: {name}:{EXPECTED[name]}"
        assert line.startswith(expected) if name == "integer_in_message.yaml" else line == expected
        assert cpu < CPU_SECONDS, (name, cpu)
    assert report["peak"] < PEAK_BYTES
