"""Backbones: another spec used as a block of this one, with or without its top, with pretrained weights.

    layers:
      - backbone: {spec: vgg16, include_top: false, weights: imagenet, name: base}
      - global_avgpool2d
      - dense: {units: 1, activation: sigmoid}

``spec`` is a bundled network (:func:`zoo_names`: the specs of ``examples/``, shipped in the package as
``specdsl/zoo``) or a spec file, relative to the spec that uses it. Its layers are expanded as a block's are (its
own ``blocks:`` and ``params:``, which ``params:`` of the use overrides), reading the layer before the use (or
``inputs:``), so they are planned on the incoming shape; its ``input:`` is only what it was made for.
``include_top: false`` drops its top: the layers from its first top-level flatten or global pooling layer on, or
from the layer its ``top:`` names. ``weights`` (a weights file relative to the spec that uses it, or ``imagenet``
for the bundled networks Keras publishes weights of) is recorded in :attr:`ModelSpec.backbones` with the names of
the backbone's layers; ``specdsl.weights.load_backbones`` loads it into a built model. Any other key of the use
(``trainable``, ...) is passed on as a block use's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._text import shown
from ..errors import Loc, PluginError, SpecError
from ._blocks import Block, parse_blocks
from ._draw import has_distributions
from ._expand import Expander
from ._kinds import canonical_kind
from ._located import check_keys, loc_of, suggest, type_name
from ._yaml import LocDict, load_file

BACKBONE = "backbone"
OWN_KEYS = ("spec", "include_top", "weights", "params")
TOP_KINDS = frozenset(
    {"flatten", "global_avgpool2d", "global_maxpool2d", "global_avgpool1d", "global_maxpool1d"}
)
"""The kinds a network's top starts at, unless its spec's ``top:`` names the first layer of its top."""
PRETRAINED = "imagenet"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Backbone:
    """One use of a backbone: where it is written, what it expanded to, and the weights it asks for.

    ``weights`` is None (fresh weights), ``"imagenet"``, or a path resolved against the using spec's folder;
    ``nodes`` the names of the layers it expanded to, in order; ``network`` its spec's name (``vgg16``);
    ``bundled`` whether ``spec`` named a bundled network."""

    name: str
    network: str
    spec_file: str
    bundled: bool
    include_top: bool
    weights: str | None
    nodes: tuple[str, ...]
    loc: Loc
    path: str

    @property
    def where(self) -> str:
        return f"{self.path} (backbone {self.network})"


class BackboneExpander(Expander):
    """The :class:`Expander` that expands ``- backbone: {...}`` items too, keeping them in :attr:`backbones`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.backbones: list[Backbone] = []

    def item(self, item: Any, loc: Loc, path: str, scope: Any, prev: str) -> str:
        if (
            item == BACKBONE
            or isinstance(item, dict)
            and (item.get("kind") == BACKBONE if "kind" in item else len(item) == 1 and BACKBONE in item)
        ):
            _, args, key_loc = self.form(item, loc, path)
            return expand_backbone(self, args, key_loc, path, scope, prev)
        return super().item(item, loc, path, scope, prev)


def zoo_dir() -> Path:
    """The folder of the bundled networks: ``specdsl/zoo`` in an installed package, ``examples/`` in a clone."""
    here = Path(__file__).resolve().parents[1]
    installed = here / "zoo"
    return installed if installed.is_dir() else here.parent / "examples"


def zoo_names() -> list[str]:
    """The bundled networks a backbone may name, sorted."""
    folder = zoo_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def expand_backbone(ex: BackboneExpander, args: Any, loc: Loc, path: str, scope: Any, prev: str) -> str:
    """Expand one ``- backbone: {...}`` into ``ex.entries``; record it in ``ex.backbones``; return its output."""
    where = f"{path} ({BACKBONE})"
    if not isinstance(args, dict):
        raise SpecError(
            f"a backbone is a mapping, e.g. `- backbone: {{spec: vgg16, include_top: false}}`, but got "
            f"{type_name(args)}.",
            loc=loc,
            path=where,
        )
    args = ex.subst(args, scope.variables, loc, where)
    if "spec" not in args:
        raise SpecError(
            f"a backbone needs `spec:`: a bundled network ({', '.join(zoo_names())}) or a spec file.",
            loc=loc,
            path=where,
        )
    file, bundled = _spec_file(args["spec"], loc_of(args, "spec", ex.file), ex.file, where)
    include_top = args.get("include_top", True)
    if not isinstance(include_top, bool):
        raise SpecError(
            f"`include_top` is true or false, but got {type_name(include_top)}.",
            loc=loc_of(args, "include_top", ex.file),
            path=where,
        )
    weights = _weights(args.get("weights"), bundled, loc_of(args, "weights", ex.file), ex.file, where)
    raw = load_file(file)
    if not isinstance(raw, dict) or not isinstance(raw.get("layers"), list) or not raw["layers"]:
        raise SpecError(
            "is not a spec a backbone can use: it needs `input:` and a non-empty `layers:` list.",
            loc=Loc(file),
        )
    if has_distributions(raw):
        raise SpecError(
            "is a search space (it holds distributions); a backbone is a concrete spec.",
            loc=Loc(file),
            hint="Use a spec the search wrote, or draw the values into a copy.",
        )
    network = str(raw.get("name") or Path(file).stem)
    _input_named_input(raw, file)
    layers = raw["layers"]
    if not include_top:
        layers = layers[: top_index(raw, file, required=where)]
        if not layers:
            raise SpecError(
                "is all top (its first layer starts its top), so `include_top: false` leaves no layer.",
                loc=Loc(file),
                path=where,
                hint="Use it with its top, or name where its top starts: `top: NAME`.",
            )
    globals_ = _params(raw, args, file, ex.file, network, where)
    blocks = parse_blocks(raw.get("blocks"), file)
    block_name = network if network not in blocks else f"{network}_backbone"
    output = None
    if include_top and raw.get("outputs") is not None:
        outputs = raw["outputs"] if isinstance(raw["outputs"], list) else [raw["outputs"]]
        if len(outputs) != 1:
            raise SpecError(
                f"backbone `{network}` has {len(outputs)} outputs; a backbone gives one.",
                loc=loc_of(raw, "outputs", file),
                path=where,
            )
        output = outputs[0]
    body = Block(block_name, {}, layers, output, getattr(raw, "loc", None) or Loc(file, 1, 1))
    use = LocDict(loc=getattr(args, "loc", loc))
    for key, value in args.items():
        if key not in OWN_KEYS:  # name, inputs, and a block use's other keys
            use[key] = value
            if isinstance(args, LocDict):
                use.key_locs[key] = args.loc_of(key) or loc
                use.value_locs[key] = args.loc_of(key, value=True) or loc
    saved = (ex.file, ex.blocks, ex.globals, ex.block_sizes)
    ex.file, ex.blocks, ex.globals, ex.block_sizes = file, {**blocks, block_name: body}, globals_, {}
    start = len(ex.entries)
    try:
        out = ex.block(body, use, loc, path, scope, prev)
    finally:
        ex.file, ex.blocks, ex.globals, ex.block_sizes = saved
    instance = args.get("name") if isinstance(args.get("name"), str) else network
    ex.backbones.append(
        Backbone(
            instance,
            network,
            file,
            bundled,
            include_top,
            weights,
            tuple(e.name for e in ex.entries[start:]),
            loc,
            path,
        )
    )
    return out


def top_index(raw: dict, file: str, *, required: str | None = None) -> int:
    """The index of the first top-level layer of a spec's top: the one its ``top:`` names, else its first flatten
    or global pooling layer; ``len(layers)`` when it has neither (an error at the use ``required`` names, when
    given)."""
    layers = raw["layers"]
    top = raw.get("top")
    if top is not None:
        names = [_item_name(item) for item in layers]
        if top not in names:
            known = [n for n in names if n]
            hint = suggest(str(top), known)
            raise SpecError(
                f"`top: {shown(top)}` names no top-level layer; {hint + ' ' if hint else ''}"
                f"top-level names: {', '.join(known) or 'none (give the first layer of the top a name:)'}.",
                loc=loc_of(raw, "top", file),
            )
        return names.index(top)
    for i, item in enumerate(layers):
        if _item_kind(item) in TOP_KINDS:
            return i
    if required is not None:
        raise SpecError(
            "has no top to drop (no top-level flatten or global pooling layer), so `include_top: false` "
            "cannot cut it.",
            loc=Loc(file),
            path=required,
            hint="Name the first layer of its top in the spec: `top: NAME`.",
        )
    return len(layers)


def _item_kind(item: Any) -> str | None:
    key = item if isinstance(item, str) else None
    if isinstance(item, dict):
        key = item.get("kind") if "kind" in item else next(iter(item)) if len(item) == 1 else None
    if not isinstance(key, str):
        return None
    try:
        return canonical_kind(key)
    except PluginError:
        return None


def _item_name(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    if "kind" in item or "repeat" in item:
        name = item.get("name")
    elif len(item) == 1:
        args = next(iter(item.values()))
        name = args.get("name") if isinstance(args, dict) else None
    else:
        name = None
    return name if isinstance(name, str) else None


def _spec_file(value: Any, loc: Loc, using: str, where: str) -> tuple[str, bool]:
    """(the backbone's spec file, whether it is a bundled network)."""
    names = zoo_names()
    if not isinstance(value, str) or not value:
        raise SpecError(
            f"`spec` is a bundled network ({', '.join(names)}) or a spec file, but got {type_name(value)}.",
            loc=loc,
            path=where,
        )
    if not value.endswith(SPEC_SUFFIXES) and "/" not in value and os.sep not in value:
        if value not in names:
            hint = suggest(value, names)
            raise SpecError(
                f"no bundled network `{shown(value)}`; {hint + ' ' if hint else ''}"
                f"Bundled: {', '.join(names)}; or give a spec file (`spec: nets/mine.yaml`).",
                loc=loc,
                path=where,
            )
        return str(zoo_dir() / f"{value}.yaml"), True
    return _relative(value, using), False


def _weights(value: Any, bundled: bool, loc: Loc, using: str, where: str) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str) or not value:
        raise SpecError(
            f"`weights` is `{PRETRAINED}` or a weights file (.h5, .keras, .pth, .npz), but got "
            f"{type_name(value)}.",
            loc=loc,
            path=where,
        )
    if value == PRETRAINED:
        if not bundled:
            raise SpecError(
                f"`weights: {PRETRAINED}` is for the bundled networks; for a spec file give its weights file.",
                loc=loc,
                path=where,
            )
        return value
    return _relative(value, using)


def _relative(value: str, using: str) -> str:
    """``value`` read relative to the folder of the spec ``using`` (the working folder for a spec not in a file)."""
    path = Path(value).expanduser()
    if path.is_absolute() or using.startswith("<"):
        return str(path)
    return str(Path(using).parent / path)


def _input_named_input(raw: dict, file: str) -> None:
    inp = raw.get("input")
    name = inp.get("name", "input") if isinstance(inp, dict) else "input"
    if name != "input":
        raise SpecError(
            f"names its input `{shown(name)}`; a backbone's layers read the layer before it as `input`.",
            loc=loc_of(inp, "name", file),
            hint="Drop `name:` from its `input:` (and read it as `input`).",
        )


def _params(raw: dict, args: dict, file: str, using: str, network: str, where: str) -> dict[str, Any]:
    """The backbone spec's ``params:``, with the use's ``params:`` over them."""
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise SpecError("`params` must be a mapping of names to values.", loc=loc_of(raw, "params", file))
    given = args.get("params")
    if given is None:
        return dict(params)
    if not isinstance(given, dict):
        raise SpecError(
            f"`params` of a backbone is a mapping of its spec's params, but got {type_name(given)}.",
            loc=loc_of(args, "params", using),
            path=where,
        )
    check_keys(given, tuple(params), f"the params of backbone `{network}`", using)
    return {**params, **given}


def backbone_schema(text: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a ``- backbone: {...}`` item (``text``: the schema of a text value)."""
    return {
        "type": "object",
        "description": "Another spec used as a block: a bundled network or a spec file, with or without its top, "
        "with pretrained weights.",
        "examples": [
            {BACKBONE: {"spec": "vgg16", "include_top": False, "weights": PRETRAINED, "name": "base"}}
        ],
        "properties": {
            BACKBONE: {
                "type": "object",
                "properties": {
                    "spec": {
                        **text,
                        "description": "A bundled network (vgg16, resnet50, ...) or a spec file.",
                    },
                    "include_top": {"type": "boolean", "description": "false: drop the network's top."},
                    "weights": {
                        "anyOf": [text, {"type": "null"}],
                        "description": "`imagenet`, or a weights file (.h5, .keras, .pth, .npz) relative to the spec.",
                    },
                    "params": {"type": "object", "description": "Values for the network's `params`."},
                },
                "required": ["spec"],
            }
        },
        "required": [BACKBONE],
        "additionalProperties": False,
    }
