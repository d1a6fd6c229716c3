"""Search spaces without any framework: their distributions, their ``search:`` section, and how many of their
sampled architectures plan.

This module imports neither optuna, mlflow nor torch: ``specdsl validate`` calls :func:`check_space` on every
search space it is given.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .._text import shown
from ..errors import Loc, SearchError, SpecdslError, SpecError
from ..plan import Plan, iec_bytes, plan
from ..spec import (
    DIST_KINDS,
    SECTIONS,
    Draw,
    LocDict,
    RandomSampler,
    SearchSpec,
    duration_seconds,
    from_tree,
    gc_paused,
    has_distributions,
    is_distribution,
    load_text,
    loc_of,
    read_text,
    suggest,
    validate_model,
)
from ..train import check_compatible, training_memory  # pure: they build and load nothing
from ._grid import grid_size

# Metrics an objective may name that come from the plan, without training.
PLAN_METRICS = ("params", "trainable", "flops", "activation_bytes")
# Metrics the training loop reports per epoch (and ``test_*`` after it).
TRAIN_METRICS = ("loss", "accuracy", "top5_accuracy", "val_loss", "val_accuracy", "val_top5_accuracy")
FINAL_METRICS = ("test_loss", "test_accuracy", "test_top5_accuracy", "seconds", "images_per_s")
METRICS = (*TRAIN_METRICS, *FINAL_METRICS, *PLAN_METRICS)

SCALAR_TYPES = (str, int, float, bool, type(None))
_NAME_OK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*")
PARAM_NAME_LIMIT = 250  # MLflow's longest parameter key


@functools.lru_cache(maxsize=65536)  # a search space's names are drawn for every trial
def param_name(name: str) -> str:
    """The name a distribution has in Optuna and MLflow: its spec name with ``[i]`` written ``.i``, because MLflow
    names hold only letters, digits and ``_ - . / : space``
    (``layers[2].conv2d.filters`` -> ``layers.2.conv2d.filters``)."""
    name = re.sub(r"\[(\d+)\]", r".\1", name)
    return re.sub(r"[^A-Za-z0-9_.:\-]", "_", name)


@dataclass(frozen=True)
class Distribution:
    """One distribution of a search space, as written.

    ``name`` is what Optuna and MLflow call the parameter (its path in the spec, or the ``name:`` given, see
    :func:`param_name`);
    ``structural`` choices pick between mappings or lists and are recorded as the index of the option.
    """

    name: str
    kind: str  # choice | int | float
    path: str
    loc: Loc | None
    options: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def structural(self) -> bool:
        return self.kind == "choice" and not scalar_options(list(self.options))

    def signature(self) -> tuple:
        options = tuple(repr(o) for o in self.options) if self.kind == "choice" else ()
        return (self.kind, options, self.low, self.high, self.step, self.log)

    def describe(self) -> str:
        if self.kind == "choice":
            if self.structural:
                return f"choice of {len(self.options)} structures"
            return "choice of " + ", ".join(repr(o) for o in self.options)
        text = f"{self.kind} in [{self.low}, {self.high}]"
        if self.step is not None and not (self.kind == "int" and self.step == 1):
            text += f" step {self.step}"
        if self.log:
            text += " (log)"
        return text


def scalar_options(options: list[Any]) -> bool:
    """Options Optuna can hold as categorical values themselves (else the option's index is recorded)."""
    return all(isinstance(o, SCALAR_TYPES) for o in options)


class _Probe:
    """A sampler that draws the first option / the low end: lets ``Draw`` check a distribution's form."""

    def choice(self, name: str, options: list[Any]) -> int:
        return 0

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return low

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        return low


def read_space(source: str | os.PathLike) -> tuple[Any, str, str]:
    """(tree, file name, text) of a search space file."""
    file = os.fspath(source)
    text = read_text(file)  # located errors for missing, binary, oversized or non-UTF-8 files
    tree = load_text(text, file)
    return _as_space(tree, file), file, text


def _as_space(tree: Any, file: str) -> Any:
    if not isinstance(tree, dict):
        raise SearchError(
            "a search space is a spec (a mapping with `input:` and `layers:`).", loc=Loc(file, 1, 1)
        )
    return tree


def distributions(tree: Any, file: str) -> list[Distribution]:
    """Every distribution in the tree, including those inside every option of a choice, in document order.

    Each one's form is checked (keys, ranges, ``log``/``step``); two distributions may share a name only when
    they are the same distribution (then they draw one value). Raises a located :class:`SearchError`.
    """
    found: list[Distribution] = []
    _walk(tree, "", file, found)
    seen: dict[str, Distribution] = {}
    for d in found:
        first = seen.setdefault(d.name, d)
        if first is not d and first.signature() != d.signature():
            raise SearchError(
                f"two different distributions are named `{d.name}` ({first.describe()} at {first.loc}, and "
                f"{d.describe()} here); a name is one parameter in Optuna and MLflow.",
                loc=d.loc,
                path=d.path,
                hint="Give one of them another `name:`, or make them identical to draw one value for both.",
            )
    return found


def _walk(node: Any, path: str, file: str, found: list[Distribution]) -> None:
    if isinstance(node, dict):
        if is_distribution(node):
            found.append(_form(node, path, file))
            kind = next(k for k in DIST_KINDS if k in node)
            if kind == "choice":  # inside option i, names carry the index, as the loader draws them
                for i, option in enumerate(node["choice"]):
                    _walk(option, f"{path}[{i}]", file, found)
            return
        for key, child in node.items():
            _walk(child, f"{path}.{key}" if path else str(key), file, found)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            _walk(child, f"{path}[{i}]", file, found)


def _form(node: dict, path: str, file: str) -> Distribution:
    try:
        Draw(file, _Probe(), {}).draw(node, path)
    except SearchError:
        raise
    except SpecError as e:  # the loader's form errors, as search errors
        raise SearchError(e.message, loc=e.loc, path=e.path, hint=e.hint) from None
    kind = next(k for k in DIST_KINDS if k in node)
    loc = getattr(node, "loc", None) or Loc(file)
    given = node.get("name")
    if given is not None and (not isinstance(given, str) or not _NAME_OK.fullmatch(given) or ".." in given):
        raise SearchError(
            f"a parameter `name` may hold letters, digits, `_`, `-`, `.` and `:` (it names an Optuna and an MLflow "
            f"parameter), but got {shown(repr(given))}.",
            loc=loc_of(node, "name", file),
            path=path,
        )
    name = param_name(given or (path if path else kind))
    if len(name) > PARAM_NAME_LIMIT:
        raise SearchError(
            f"a parameter name has at most {PARAM_NAME_LIMIT} characters (MLflow's limit), but {shown(name)} has "
            f"{len(name)}.",
            loc=loc_of(node, "name", file) if given is not None else loc,
            path=path,
            hint="Give the distribution a shorter `name:`.",
        )
    if kind == "choice":
        return Distribution(str(name), kind, path, loc, options=tuple(node["choice"]))
    low, high = node[kind]
    step = node.get("step")
    if kind == "int" and step is None:
        step = 1
    return Distribution(
        str(name), kind, path, loc, low=low, high=high, step=step, log=bool(node.get("log", False))
    )


def read_search(tree: Any, file: str) -> SearchSpec:
    """The validated ``search:`` section (defaults when there is none); distributions are not allowed in it."""
    section = tree.get("search") if isinstance(tree, dict) else None
    if section is None:
        return SearchSpec()
    found: list[Distribution] = []
    _walk(section, "search", file, found)
    if found:
        raise SearchError(
            "the `search:` section holds settings, not distributions.", loc=found[0].loc, path=found[0].path
        )
    spec = validate_model(SearchSpec, section, tree, "search", file, "search")
    for i, objective in enumerate(spec.objectives):
        if objective.metric not in METRICS:
            hint = suggest(objective.metric, list(METRICS))
            raise SearchError(
                f"unknown objective metric `{objective.metric}`; {hint + ' ' if hint else ''}"
                f"Metrics: {', '.join(METRICS)}.",
                loc=loc_of(section, "objectives", file) if isinstance(section, dict) else Loc(file),
                path=f"search.objectives[{i}]",
            )
    if len(spec.objectives) > 1 and spec.sampler == "cmaes":
        raise SearchError(
            f"the cmaes sampler optimizes one objective, but this search has {len(spec.objectives)}.",
            loc=loc_of(section, "sampler", file) if isinstance(section, dict) else Loc(file),
            path="search.sampler",
            hint="Use nsga2 or tpe for several objectives.",
        )
    return spec


def logged_objective(metrics: list[str]) -> str | None:
    """The one objective a trial logs every epoch (reported to the pruner, watched by its training), or None."""
    if len(metrics) != 1 or metrics[0] in PLAN_METRICS or metrics[0] in FINAL_METRICS:
        return None
    return metrics[0]


def watch_objective(tree: Any, metrics: list[str]) -> Any:
    """``tree`` (a loaded space) whose trials keep the weights of the epoch their objective ranks best: with one
    objective the run logs (``val_accuracy``, not ``params`` nor ``test_accuracy``), a train section that names no
    monitor (neither ``monitor`` nor ``early_stopping.monitor``) gets ``monitor: <objective>``. Without it a trial
    would keep its best ``val_loss`` epoch, tested and re-evaluated as the model chosen, while the search ranks it
    by another epoch, its best by the objective. A trial's frozen spec says so, and ``specdsl train`` repeats it.

        >>> watch_objective(load_text("train: {epochs: 3}"), ["val_accuracy"])["train"]
        {'epochs': 3, 'monitor': 'val_accuracy'}
    """
    metric = logged_objective(metrics)
    if metric is None or not isinstance(tree, LocDict):
        return tree
    train = tree.get("train")
    if train is None:
        train = tree["train"] = LocDict(loc=tree.loc)
    if not isinstance(train, LocDict) or is_distribution(train) or "monitor" in train:
        return tree
    stopping = train.get("early_stopping")
    if isinstance(stopping, dict) and "monitor" in stopping:
        return tree
    train["monitor"] = metric
    return tree


def constraint_violation(p: Plan, constraints: Any) -> str | None:
    """Why a planned model breaks the search's constraints (``max_params``, ``max_flops``,
    ``max_activation_bytes``), or None."""
    if constraints is None:
        return None
    if constraints.max_params is not None and p.params > constraints.max_params:
        return (
            f"constraint max_params: the model has {p.params:,} parameters, more than the "
            f"{constraints.max_params:,} allowed."
        )
    if constraints.max_flops is not None and p.flops > constraints.max_flops:
        return (
            f"constraint max_flops: the model needs {p.flops:,} FLOPs per example, more than the "
            f"{constraints.max_flops:,} allowed."
        )
    if constraints.max_activation_bytes is not None and p.activation_bytes > constraints.max_activation_bytes:
        return (
            f"constraint max_activation_bytes: activations take {iec_bytes(p.activation_bytes)} per example, "
            f"more than the {iec_bytes(constraints.max_activation_bytes)} allowed."
        )
    return None


def memory_violation(p: Plan, train: Any, limit: int | None) -> str | None:
    """Why a planned model's estimated training memory (:func:`specdsl.train.training_memory`) breaks the search's
    ``trial_memory``, or None."""
    if limit is None:
        return None
    estimate = training_memory(p, train)
    if estimate.total <= limit:
        return None
    return (
        f"trial_memory: training would take about {iec_bytes(estimate.total)} ({estimate.describe()}), more "
        f"than the {iec_bytes(limit)} allowed."
    )


class MemoSampler:
    """Wraps a sampler so that a name drawn twice in one sample gets one value, as in an Optuna trial."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.values: dict[str, Any] = {}

    def reset(self) -> None:
        self.values = {}

    def choice(self, name: str, options: list[Any]) -> int:
        key = param_name(name)
        if key not in self.values:
            self.values[key] = self.inner.choice(name, options)
        return self.values[key]

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        key = param_name(name)
        if key not in self.values:
            self.values[key] = self.inner.int(name, low, high, step, log)
        return self.values[key]

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        key = param_name(name)
        if key not in self.values:
            self.values[key] = self.inner.float(name, low, high, step, log)
        return self.values[key]


_NUMBER = re.compile(r"\d[\d,._]*(?:e-?\d+)?")


@dataclass
class SpaceReport:
    """What :func:`check_space` found.

    ``reasons`` counts the invalid samples by reason: samples failing at the same place of the text for the same
    rule (numbers aside) are one reason, shown by its first message.
    """

    file: str
    samples: int
    invalid: int = 0
    reasons: Counter = field(default_factory=Counter)
    distributions: list[Distribution] = field(default_factory=list)
    search: SearchSpec | None = None
    first_error: SpecdslError | None = None
    first_plan: Plan | None = None
    seconds: float = 0.0

    @property
    def valid(self) -> int:
        return self.samples - self.invalid

    @property
    def invalid_fraction(self) -> float:
        return self.invalid / self.samples if self.samples else 0.0

    @property
    def all_invalid(self) -> bool:
        return self.samples > 0 and self.invalid == self.samples

    @property
    def ok(self) -> bool:
        return not self.all_invalid

    def format(self, top: int = 5) -> str:
        lines = [
            f"{self.file}: {len(self.distributions)} distributions; {self.valid} of {self.samples} sampled "
            f"architectures plan ({self.invalid} invalid, {self.invalid_fraction:.0%})"
        ]
        for reason, n in self.reasons.most_common(top):
            lines.append(f"    {n} x {reason}")
        return "\n".join(lines)


CHECK_LAYERS = 50_000
"""Layers the architectures that :func:`check_space` samples may have in all: it stops sampling once they pass
it, before ``samples`` (a space of 250 layers gets its 200 samples; one of 500 layers, 100; of 5,000, 10)."""


def check_space(
    source: str | os.PathLike, samples: int = 200, seed: int = 0, *, tree: Any = None
) -> SpaceReport:
    """Check a search space without training anything.

    Every distribution's form is checked (a malformed one raises a located :class:`SearchError`, as does a bad
    ``search:`` section, or a grid too large for the grid sampler); then ``samples`` architectures are drawn at
    random (``seed``), expanded and planned (fewer when they pass :data:`CHECK_LAYERS` layers in all; the report's
    ``samples`` is how many were), and the search's constraints and ``trial_memory`` applied. The report says how
    many are invalid and why, grouped by reason.

        >>> r = check_space("search_spaces/catsdogs.yaml", samples=100)
        >>> r.invalid, r.samples
        (0, 100)
    """
    start = time.perf_counter()
    # `tree`: the file already parsed by the caller (validate reads it once to see that it is a search space)
    if tree is None:
        tree, file, _ = read_space(source)
    else:
        file = os.fspath(source)
        tree = _as_space(tree, file)
    dists = distributions(tree, file)
    search = read_search(tree, file)
    _check_fixed_sections(tree, file)
    if search.sampler == "grid":
        grid_size(dists)
    if not dists:
        samples = min(samples, 1)  # every sample is the same architecture
    report = SpaceReport(file=file, samples=samples, distributions=dists, search=search)
    sampler = MemoSampler(RandomSampler(seed))
    groups: dict[str, str] = {}
    with (
        gc_paused()
    ):  # each sample's objects are freed by their reference counts, without the collector's passes
        _sample(tree, file, samples, sampler, search, report, groups)
    report.seconds = time.perf_counter() - start
    return report


def _sample(
    tree: Any,
    file: str,
    samples: int,
    sampler: MemoSampler,
    search: SearchSpec,
    report: SpaceReport,
    groups: dict[str, str],
) -> None:
    layers = 0
    for n in range(samples):
        if layers > CHECK_LAYERS:
            report.samples = n
            return
        layers += 1  # an invalid sample counts one
        sampler.reset()
        try:
            spec = from_tree(tree, file, sampler=sampler)
            p = plan(spec)
            check_compatible(p, spec.train, spec.data)
        except SearchError:
            raise
        except SpecdslError as e:
            report.invalid += 1
            key, text = _group(e)
            report.reasons[groups.setdefault(key, text)] += 1
            report.first_error = report.first_error or e
            continue
        violation = constraint_violation(p, search.constraints) or memory_violation(
            p, spec.train, search.trial_memory
        )
        if violation is not None:
            report.invalid += 1
            key = _NUMBER.sub("#", violation)
            report.reasons[groups.setdefault(key, violation)] += 1
            report.first_error = report.first_error or SearchError(violation, loc=Loc(file))
            continue
        layers += len(p.nodes) - 1
        report.first_plan = report.first_plan or p


def _check_fixed_sections(tree: Any, file: str) -> None:
    """The sections that hold no distribution are the same in every sample: their errors are the space's, said
    once (rather than as every sample's reason for being invalid)."""
    for key, model in SECTIONS.items():
        if key != "search" and key in tree and not has_distributions(tree[key]):
            validate_model(model, tree[key], tree, key, file, key)


def _group(e: SpecdslError) -> tuple[str, str]:
    where = f"{e.loc.file}:{e.loc.line}:{e.loc.col}" if e.loc and e.loc.line else ""
    text = f"{where}: {e.path}: {e.message}" if e.path else f"{where}: {e.message}"
    return f"{type(e).__name__} {where} {_NUMBER.sub('#', e.message)}", text.lstrip(": ")


def parse_duration(value: Any) -> float | None:
    """Seconds from 90, "90", "90s", "15m", "2h", "1h30m" (None stays None); a SearchError for anything else."""
    try:
        return duration_seconds(value)
    except ValueError as e:
        raise SearchError(str(e)) from None
