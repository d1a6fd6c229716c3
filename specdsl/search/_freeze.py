"""A trial frozen into a concrete spec: the search space with the trial's values in place of its distributions,
and no ``search:`` section. ``specdsl check``, ``compile`` and ``train`` take it as any other spec.

:func:`freeze` does it for a parsed space and a trial's parameters, :func:`frozen_text` for a trial of a
stored study (its space is kept with the study), and :func:`freeze_best` finds the study and the trial
(``specdsl best``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .._text import terminal
from ..errors import SearchError
from ..plan import plan
from ..spec import ModelSpec, from_tree, load_text, suggest
from ._config import (
    CHOSEN_ATTR,
    HELD_OUT,
    METRICS_ATTR,
    REASON,
    REJECTED,
    SPACE_ATTR,
    SPACE_FILE_ATTR,
    WATCHED_ATTR,
)
from ._results import best_trial
from ._sampler import ReplaySampler
from ._setup import quiet_optuna
from ._space import watch_objective
from ._storage import DEFAULT_STORAGE, display_url, open_storage, study_store_errors


def plain(node: Any) -> Any:
    """LocDict/LocList trees as plain dicts and lists (what yaml.safe_dump writes)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain(v) for v in node]
    return node


def freeze(
    tree: Any, file: str, params: dict[str, Any], *, name: str | None = None
) -> tuple[dict, ModelSpec]:
    """(the concrete document, its loaded spec) for a trial's ``params`` (names as Optuna records them)."""
    spec = from_tree(tree, file, sampler=ReplaySampler(params))
    doc = plain(spec.raw)
    doc.pop("search", None)
    if name is not None:
        doc = {"name": name, **{k: v for k, v in doc.items() if k != "name"}}
    return doc, spec


class _FlowDict(dict):
    pass


class _FlowList(list):
    pass


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)  # list items indented under their key


_Dumper.add_representer(
    _FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True)
)
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def _scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _styled(node: Any, item: bool = False) -> Any:
    """Mark what is written inline: lists of scalars, and mappings of scalars that are a key's value
    (``conv2d: {filters: 32, kernel: 3}``); a list item stays a block (``- maxpool2d: 2``)."""
    if isinstance(node, dict):
        out = {k: _styled(v) for k, v in node.items()}
        return _FlowDict(out) if out and not item and all(_scalar(v) for v in node.values()) else out
    if isinstance(node, list):
        out_list = [_styled(v, item=True) for v in node]
        return _FlowList(out_list) if out_list and all(_scalar(v) for v in node) else out_list
    return node


def dump(doc: dict, header: list[str] = ()) -> str:
    """YAML text of a concrete spec, written as people write specs: keys in spec order, short mappings inline."""
    body = yaml.dump(
        _styled(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110, allow_unicode=True
    )
    # a header line holds names a user chose (the study's, the space file's): none may end its comment
    head = "".join(f"# {terminal(line)}\n" if line else "#\n" for line in header)
    return head + body


def frozen_text(study: Any, trial: Any, note: str | None = None) -> str:
    """A trial of a study frozen into a concrete spec (YAML), from the search space text kept with the study."""
    text = study.user_attrs.get(SPACE_ATTR)
    file = study.user_attrs.get(SPACE_FILE_ATTR, "search space")
    if text is None:
        raise SearchError(
            f"study `{study.study_name}` was not created by `specdsl search` (it keeps no search space)."
        )
    metrics = study.user_attrs.get(METRICS_ATTR) or [f"objective {i}" for i in range(len(study.directions))]
    tree = load_text(text, file)
    watched = study.user_attrs.get(WATCHED_ATTR)
    if isinstance(watched, int) and trial.number >= watched:  # it trained with its objective as the monitor
        tree = watch_objective(tree, metrics)
    doc, spec = freeze(tree, file, dict(trial.params), name=f"{study.study_name}_trial_{trial.number}")
    values = ", ".join(f"{m} {v:.4g}" for m, v in zip(metrics, trial.values or ()))
    p = plan(spec)
    header = [
        f"Trial {trial.number} of study {study.study_name}"
        + (f": {values}" if values else f" ({trial.state.name})"),
        f"frozen from {file} by `specdsl best`: {p.params:,} parameters.",
    ]
    if note:
        header.append(note)
    return dump(doc, header)


def freeze_best(study: str, *, storage: str | None = None, trial: int | None = None) -> tuple[int, str]:
    """The best trial of the stored study ``study`` (or its trial number ``trial``) frozen into a concrete
    spec: (the trial's number, the spec's YAML text). ``storage`` defaults to ``sqlite:///optuna.db`` in the
    working folder, which is only read. A missing storage, study or trial, an invalid sample and a study with
    no complete trial are a SearchError; a store that fails, a StoreError naming it."""
    import optuna

    quiet_optuna()
    url = storage or DEFAULT_STORAGE
    if url == DEFAULT_STORAGE and not Path("optuna.db").exists():
        raise SearchError(
            f"no study storage here ({DEFAULT_STORAGE} does not exist).",
            hint="Run `specdsl best` in the folder where `specdsl search` ran, or pass --storage.",
        )
    with study_store_errors(url):  # reads only: a folder that cannot be written is fine
        store = open_storage(url, read_only=True)
        names = optuna.get_all_study_names(store)
        if study not in names:
            hint = suggest(study, names)
            raise SearchError(
                f"no study `{study}` in {display_url(url)}; {hint + ' ' if hint else ''}"
                f"Studies: {', '.join(sorted(names)) or 'none'}."
            )
        s = optuna.load_study(study_name=study, storage=store)
        note = None
        if trial is not None:
            found = [t for t in s.get_trials(deepcopy=False) if t.number == trial]
            if not found:
                raise SearchError(f"study `{study}` has no trial {trial} (trials 0 .. {len(s.trials) - 1}).")
            chosen = found[0]
            if chosen.user_attrs.get(REJECTED):
                raise SearchError(
                    f"trial {trial} of study `{study}` is an invalid sample: {chosen.user_attrs.get(REASON)}"
                )
        else:
            chosen = best_trial(s)
            if chosen is None:
                raise SearchError(
                    f"study `{study}` has no complete trial yet.", hint="Pick one with --trial N."
                )
            picked = s.user_attrs.get(CHOSEN_ATTR)
            if isinstance(picked, dict) and picked.get("trial") == chosen.number:
                metrics = s.user_attrs.get(METRICS_ATTR) or ["the objective"]
                spread = picked.get("spread")
                n = picked.get("n")
                note = (
                    f"Chosen by re-evaluation: {metrics[0]} {picked['mean']:.4f}"
                    + (f" +- {spread:.4f}" if isinstance(spread, (int, float)) else "")
                    + f" over {n} fresh train/validation split{'s' if n != 1 else ''}"
                    + (HELD_OUT if picked.get("held_out") else "")
                    + ", the estimate to trust (the value above is its search value, on one split)."
                )
            if len(s.directions) > 1:
                metrics = s.user_attrs.get(METRICS_ATTR) or ["the first objective"]
                note = (
                    f"The study has {len(s.directions)} objectives: of the {len(s.best_trials)} trials on the "
                    f"Pareto front this is the best on {metrics[0]}; pick another with --trial N."
                )
        return chosen.number, frozen_text(s, chosen, note)
