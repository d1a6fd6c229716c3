"""An architecture diagram of a plan, in the spirit of ``keras.utils.plot_model``, laid out by Graphviz.

One box per plan node (its name, its kind with the main arguments, its parameters; a frozen layer's box dashed and
marked "frozen"), one arrow per input a node reads, labelled with the shape that flows along it (channels-last, as
specs write shapes), and, when the nodes came from blocks, one dashed frame per block instance (nested as the
blocks are). The DOT text is made from the plan alone (no framework); ``dot`` (Graphviz) lays it out into SVG, PNG
or PDF.

Every text a user wrote (the model's name, layer and block names) reaches the DOT text only inside HTML-like
labels, after its control characters are written as escapes and ``& < > " '`` as entities, so no name can end a
label or add an attribute; node and cluster ids are made here (``n0``, ``cluster_0``), never from a name.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._text import shown, terminal
from ..errors import BackendError, BackendMissingError, SpecError
from ..plan import Plan, PlanNode, fmt
from ..spec import LAYERS

DIRECTIONS = ("TB", "LR")
FORMATS = ("svg", "png", "pdf", "dot")
DOT_TIMEOUT = 60.0  # seconds dot may take (ResNet-50: about 0.5 s)
TITLE_LIMIT = 120  # characters of the model's name in the title
PNG_DPI = 96
LARGE_PNG_DPI = 72  # for graphs of more than LARGE nodes: rasterizing InceptionV3 at 96 dpi takes 2-3 s
LARGE = 120

INSTALL_GRAPHVIZ = (
    "apt-get install graphviz (Debian, Ubuntu), brew install graphviz (macOS), conda install "
    "graphviz, or https://graphviz.org/download/"
)

# fill colours by kind, as plot_model's boxes are plain but a long graph reads better with families told apart
_COLOURS = {
    "input": "#ffffff",
    "conv": "#dbe9f6",
    "pool": "#dff0d8",
    "dense": "#fce5cd",
    "norm": "#eeeeee",
    "merge": "#fff2b3",
    "other": "#f5f5f5",
}
_FAMILY = {
    "conv1d": "conv",
    "conv2d": "conv",
    "depthwise_conv2d": "conv",
    "separable_conv2d": "conv",
    "conv2d_transpose": "conv",
    "maxpool2d": "pool",
    "avgpool2d": "pool",
    "maxpool1d": "pool",
    "avgpool1d": "pool",
    "global_avgpool2d": "pool",
    "global_maxpool2d": "pool",
    "global_avgpool1d": "pool",
    "global_maxpool1d": "pool",
    "dense": "dense",
    "batchnorm": "norm",
    "layernorm": "norm",
    "dropout": "norm",
    "spatial_dropout2d": "norm",
    "add": "merge",
    "concat": "merge",
    "multiply": "merge",
}


_NOT_XML = re.compile(
    "[\ufffe\uffff]"
)  # what terminal() leaves that XML (and so Graphviz's labels) cannot hold


def text(value: object, limit: int | None = None) -> str:
    """A user's text for an HTML-like label: control characters (and U+FFFE, U+FFFF) as escapes, markup characters
    and brackets as entities, and backslashes doubled (Graphviz reads ``\\G``, ``\\N`` as the graph's and node's
    names even in HTML labels); cut to ``limit`` characters."""
    out = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", terminal(value))
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "\u2026"
    # brackets as entities too: Graphviz's HTML-label lexer fails on some texts of a bare "]" (seen in 2.43)
    escaped = html.escape(out, quote=True).replace("[", "&#91;").replace("]", "&#93;")
    return escaped.replace("\\", "\\\\")


def _pair(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and all(isinstance(v, int) for v in value):
            return f"{value[0]}x{value[1]}"
        return "x".join(_pair(v) for v in value)
    return str(value)


def _padding(value: Any) -> str:
    if isinstance(value, str):
        return "" if value == "valid" else value
    flat = (
        [v for part in value for v in (part if isinstance(part, (tuple, list)) else (part,))]
        if isinstance(value, (tuple, list))
        else [value]
    )
    if flat and all(v == flat[0] for v in flat):
        return "" if flat[0] == 0 else f"pad {flat[0]}"
    return f"pad {_pair(value)}"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# the order arguments are shown in (the kind's main argument first, the activation last); others follow
_ORDER = (
    "filters",
    "units",
    "kernel",
    "pool",
    "strides",
    "dilation",
    "padding",
    "depth_multiplier",
    "groups",
)
_QUIET = frozenset(
    {"kind", "name", "inputs", "kernel_initializer", "epsilon", "momentum", "silence", "trainable"}
)  # details, not shown


def describe(node: PlanNode) -> str:
    """The node's kind and main arguments, short: ``conv2d 64 3x3 /2 same relu``, ``maxpool2d 3x3 /2``,
    ``dense 10 softmax``, ``dropout 0.25``. Arguments left at their defaults are not part."""
    layer = node.layer
    if layer is None:
        return "input"
    primary = LAYERS[node.kind].primary
    fields = type(layer).model_fields
    keys = [k for k in fields if k not in _QUIET and k != "activation"]
    keys.sort(key=lambda k: (k != primary, _ORDER.index(k) if k in _ORDER else len(_ORDER)))
    if "activation" in fields:
        keys.append("activation")
    parts = [node.kind]
    for key in keys:
        value = getattr(layer, key)
        if key == "strides":
            if value is None or value == getattr(layer, "pool", None) or value in ((1, 1), 1):
                continue
            part = "/" + (
                str(value[0]) if isinstance(value, tuple) and len(set(value)) == 1 else _pair(value)
            )
        elif key == "dilation":
            if value in ((1, 1), 1):
                continue
            part = "dilation " + _pair(value)
        elif key == "padding":
            part = _padding(value) or ("pad 0" if key == primary else "")
        elif key == primary or key in ("kernel", "pool", "activation"):
            part = (
                _pair(value)
                if isinstance(value, (tuple, list))
                else _number(value)
                if value is not None
                else ""
            )
        elif value == fields[key].default:
            continue
        elif isinstance(value, bool):
            part = key.replace("use_", "") if value else "no " + key.replace("use_", "")
        else:
            part = f"{key} {_pair(value) if isinstance(value, (tuple, list)) else _number(value)}"
        if part:
            parts.append(part)
    return " ".join(parts)


_BLOCK_SEGMENT = re.compile(r"(?:layers|repeat)\[\d+\]|input")


def block_frames(path: str) -> list[tuple[str, str]]:
    """The block instances a node's ``path`` lies in, outermost first: (the path up to the block, its name).
    ``layers[6].stage.layers[0].conv_block.layers[2]`` -> ``[("layers[6].stage", "stage"),
    ("layers[6].stage.layers[0].conv_block", "conv_block")]``."""
    segments = path.split(".")
    frames = []
    for i, segment in enumerate(segments[:-1]):
        if not _BLOCK_SEGMENT.fullmatch(segment):
            frames.append((".".join(segments[: i + 1]), segment))
    return frames


def _label(node: PlanNode, is_output: bool) -> str:
    about = f"input {fmt(node.shape)}" if node.kind == "input" else describe(node)
    rows = [f"<b>{text(node.name)}</b>"] + ([text(about)] if about != node.name else [])
    if node.params:
        counts = f"{node.params:,} params"
        if node.frozen:
            counts += ", frozen"
        elif node.non_trainable:
            counts += f" ({node.non_trainable:,} non-trainable)"
        rows.append(f'<font point-size="9" color="#555555">{counts}</font>')
    if is_output:
        rows.append(f'<font point-size="9">output {fmt(node.shape)}</font>')
    cells = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def diagram_dot(plan: Plan, *, direction: str = "TB", clusters: bool = True, title: bool = True) -> str:
    """The plan as Graphviz DOT text: one node per plan node (ids ``n0``, ``n1``, ... in plan order), one edge per
    input a node reads, labelled with the input's shape, and with ``clusters`` a frame around each block instance.

        >>> dot = diagram_dot(specdsl.check("examples/lenet5.yaml"))
        >>> dot.count(" -> ")
        8
    """
    if direction not in DIRECTIONS:
        raise SpecError(
            f"the direction must be one of {', '.join(DIRECTIONS)}, but got {shown(direction)!r}.",
            hint="Use TB (top to bottom) or LR (left to right).",
        )
    ids = {node.name: f"n{i}" for i, node in enumerate(plan.nodes)}
    outputs = set(plan.outputs)
    lines = [
        "digraph model {",
        f'  graph [rankdir={direction}, nodesep=0.25, ranksep=0.3, fontname="Helvetica", fontsize=11, '
        "newrank=true];",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.08,0.03", '
        "penwidth=0.8];",
        '  edge [fontname="Helvetica", fontsize=8, fontcolor="#444444", arrowsize=0.6, penwidth=0.8];',
    ]
    if title:
        lines.append(
            f"  labelloc=t; label=<<b>{text(plan.name, TITLE_LIMIT)}</b>  "
            f"{plan.params:,} params, {plan.flops:,} FLOPs>;"
        )

    # nodes, nested in the frames of the blocks they came from
    tree: dict[str, Any] = {"nodes": [], "children": {}}
    for node in plan.nodes:
        where = tree
        if clusters:
            for key, name in block_frames(node.path):
                where = where["children"].setdefault(key, {"name": name, "nodes": [], "children": {}})
        where["nodes"].append(node)
    counter = itertools.count()

    def emit(branch: dict[str, Any], indent: str) -> None:
        for node in branch["nodes"]:
            colour = _COLOURS[_FAMILY.get(node.kind, "input" if node.kind == "input" else "other")]
            frozen = ', style="rounded,filled,dashed"' if node.frozen else ""  # as the summary's "frozen"
            lines.append(
                f"{indent}{ids[node.name]} [label={_label(node, node.name in outputs)}, "
                f'fillcolor="{colour}"{frozen}];'
            )
        for child in branch["children"].values():
            lines.append(f"{indent}subgraph cluster_{next(counter)} {{")
            lines.append(
                f'{indent}  label=<<i>{text(child["name"])}</i>>; labeljust=l; style="rounded,dashed"; '
                f'color="#999999"; fontsize=9;'
            )
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit(tree, "  ")
    by_name = plan.by_name
    for node in plan.nodes:
        for source in node.inputs:
            lines.append(f"  {ids[source]} -> {ids[node.name]} [label=<{fmt(by_name[source].shape)}>];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str:
    """The path of Graphviz's ``dot``, or a BackendMissingError (exit 3) that says how to install it."""
    found = shutil.which("dot")
    if not found:
        raise BackendMissingError(
            "graphviz", "Drawing a diagram", install=INSTALL_GRAPHVIZ, what="Graphviz's `dot` program"
        )
    return found


def render_dot(dot: str, format: str, *, timeout: float = DOT_TIMEOUT, dpi: int = PNG_DPI) -> bytes:
    """DOT text laid out by Graphviz's ``dot`` as ``format`` (svg, png at ``dpi``, pdf); the file's bytes."""
    if format == "dot":
        return dot.encode("utf-8")
    if format not in FORMATS:
        raise SpecError(
            f"a diagram is written as {', '.join(FORMATS)}, not {shown(format)!r}.",
            hint="Name the output file .svg, .png, .pdf or .dot.",
        )
    args = [dot_program(), f"-T{format}"]
    if format == "png":
        args.append(f"-Gdpi={dpi}")
    try:
        done = subprocess.run(
            args, input=dot.encode("utf-8"), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"Graphviz's dot took more than {timeout:g} s to lay out the diagram.",
            hint="Draw it without block frames (--no-clusters), or as DOT text (-o model.dot).",
        ) from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackendError(
            f"Graphviz's dot failed (exit {done.returncode}): "
            f"{terminal(message[0] if message else 'no output')[:300]}"
        )
    return done.stdout


def diagram(
    plan: Plan,
    format: str = "svg",
    *,
    direction: str = "TB",
    clusters: bool = True,
    timeout: float = DOT_TIMEOUT,
) -> bytes:
    """The architecture diagram of ``plan`` as the bytes of an SVG, PNG or PDF file (or the DOT text, ``"dot"``).

    >>> svg = diagram(specdsl.check("examples/resnet50.yaml"), "svg")   # 177 boxes, 192 arrows
    """
    return render_dot(
        diagram_dot(plan, direction=direction, clusters=clusters),
        format,
        timeout=timeout,
        dpi=PNG_DPI if len(plan.nodes) <= LARGE else LARGE_PNG_DPI,
    )


def diagram_format(path: str | os.PathLike) -> str:
    """The format a diagram file's name asks for (its suffix), or a SpecError naming the ones there are."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise SpecError(
            f"a diagram is written as {', '.join('.' + f for f in FORMATS)}, but the output file "
            f"{terminal(path)} ends in `{terminal(suffix or '(nothing)')}`.",
            hint="Name it model.svg, model.png, model.pdf or model.dot.",
        )
    return suffix


def write_diagram(
    plan: Plan, path: str | os.PathLike, *, direction: str = "TB", clusters: bool = True
) -> Path:
    """Write the diagram of ``plan`` to ``path`` in the format its suffix names (.svg, .png, .pdf, .dot)."""
    from .._sqlite import store_error
    from ..errors import StoreError

    data = diagram(plan, diagram_format(path), direction=direction, clusters=clusters)
    path = Path(path)
    try:
        path.write_bytes(data)
    except OSError as e:
        failure = store_error(e, "output file", str(path), "-o")
        raise failure or StoreError(
            f"cannot write {terminal(path)} ({e.strerror or e}).",
            store=str(path),
            hint="Pass -o another path.",
        ) from None
    return path


def svg_later(plan: Plan, name: str = "model.svg") -> Callable[[], dict[str, str]]:
    """Start laying out the diagram of ``plan`` as SVG in the background (Graphviz runs while the caller goes on);
    the function returned waits for it and gives ``{name: the SVG text}``, or ``{}`` when Graphviz is missing or
    fails (a picture is a courtesy: it never stops what it is drawn for)."""
    done: dict[str, str] = {}

    def work() -> None:
        with contextlib.suppress(Exception):
            done[name] = diagram(plan, "svg").decode("utf-8")

    worker = threading.Thread(target=work, name="specdsl-diagram", daemon=True)
    worker.start()

    def result() -> dict[str, str]:
        worker.join(DOT_TIMEOUT)
        return dict(done)

    return result
