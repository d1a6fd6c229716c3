"""The README's promises about input are the code's numbers: every bound and exit code it states is checked here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from specdsl import errors, spec
from specdsl._text import FILE_STEM_LIMIT, QUOTE_LIMIT
from specdsl.search._grid import MAX_GRID_POINTS
from specdsl.search._space import CHECK_LAYERS, PARAM_NAME_LIMIT

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = (
    README.read_text(encoding="utf-8")
    .split("## What specdsl promises about its input", 1)[1]
    .split("\n## ", 1)[0]
)

# the start of each row's label -> the constant it states
BOUNDS = {
    "spec file size": spec.MAX_FILE_BYTES,
    "YAML values": spec.MAX_VALUES,
    "YAML nesting": spec.MAX_DEPTH,
    "digits of an integer literal": spec.MAX_INT_DIGITS,
    "layers a spec expands to": spec.MAX_LAYERS,
    "blocks and repeats nested": spec.MAX_NESTING,
    "characters of one `${...}` expression": spec.MAX_EXPR_CHARS,
    "nesting of one expression": spec.MAX_EXPR_DEPTH,
    "integers in expressions": spec.MAX_INT_BITS,
    "operations of all the expressions": spec.MAX_EXPR_OPERATIONS,
    "combinations of a `grid` search space": MAX_GRID_POINTS,
    "layers `validate` samples": CHECK_LAYERS,
    "`batch_size`": spec.MAX_BATCH,
    "seeds": spec.MAX_SEED,
    "`trial_memory`": spec.MAX_MEMORY,
    "`timeout`": spec.MAX_SECONDS,
    "characters of a user's string quoted": QUOTE_LIMIT,
    "characters of a message": errors.MESSAGE_LIMIT,
    "characters of a file name": FILE_STEM_LIMIT,
    "characters of a search parameter's name": PARAM_NAME_LIMIT,
}
EXIT_CODES = {
    2: errors.SpecError,
    3: errors.BackendMissingError,
    4: errors.DataError,
    5: errors.TrainError,
    6: errors.StoreError,
}


def rows(header: str) -> list[tuple[str, str]]:
    table = SECTION.split(header, 1)[1].split("\n\n", 1)[0]
    return [tuple(c.strip() for c in line.strip("|").split("|")) for line in table.splitlines()[2:]]


def stated(value: str) -> int:
    """The number a value cell states: the bits of a `(63 bits)` note, else its largest number."""
    bits = re.search(r"\((\d+) bits\)", value)
    if bits:
        return int(bits.group(1))
    return max(int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", value))


def test_every_bound_row_is_checked():
    labels = [label for label, _ in rows("| bound | value |")]
    assert len(labels) == len(BOUNDS)
    for label in labels:
        assert [key for key in BOUNDS if label.startswith(key)], f"README row not checked here: {label}"


@pytest.mark.parametrize("key", list(BOUNDS))
def test_the_readme_states_the_bound_the_code_has(key):
    (value,) = [value for label, value in rows("| bound | value |") if label.startswith(key)]
    assert stated(value) == BOUNDS[key]


def test_the_readme_states_the_exit_code_of_each_kind_of_failure():
    codes = {int(code): meaning for code, meaning in rows("| exit code | meaning |")}
    assert sorted(codes) == [0, 1, 2, 3, 4, 5, 6, 130]
    for code, cls in EXIT_CODES.items():
        assert cls.exit_code == code, cls
    assert errors.ShapeError.exit_code == errors.SearchError.exit_code == errors.BackendError.exit_code == 2
