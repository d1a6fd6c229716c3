"""A trial frozen into a concrete spec: the search space with the trial's values in place of its distributions,
and no ``search:`` section. ``specdsl check``, ``compile`` and ``train`` take it as any other spec."""

from __future__ import annotations

from typing import Any

import yaml

from .._text import terminal
from ..spec import ModelSpec
from ..spec._document import from_tree
from ._sampler import ReplaySampler


def plain(node: Any) -> Any:
    """LocDict/LocList trees as plain dicts and lists (what yaml.safe_dump writes)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain(v) for v in node]
    return node


def freeze(tree: Any, file: str, params: dict[str, Any], *, name: str | None = None) -> tuple[dict, ModelSpec]:
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


_Dumper.add_representer(_FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


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
    body = yaml.dump(_styled(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110,
                     allow_unicode=True)
    # a header line holds names a user chose (the study's, the space file's): none may end its comment
    head = "".join(f"# {terminal(line)}\n" if line else "#\n" for line in header)
    return head + body
