"""ONNX files -> operators (:mod:`._ops`): read with ``onnx.load`` (data only), shapes from ONNX's own inference.

The model's input is taken as channels-first (N, C, H, W), as torch exports it, unless every operator reading it
first transposes NHWC to NCHW (as tf2onnx writes a Keras model), in which case it is taken channels-last.
Initializers, ``Constant`` nodes and what is computed from constants alone (Identity, Transpose, Reshape,
Squeeze, Unsqueeze, Cast of a constant) are constants; shape arithmetic that only feeds a Reshape is not lowered
(the Reshape's target comes from the shape ONNX infers for its output).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .._text import shown
from ..errors import BackendMissingError, SourceError
from ._graph import Graph
from ._ops import Op, OpGraph
from ._ops_lower import lower

ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Selu": "selu"}
SELU = (1.67326319217681884765625, 1.05070102214813232421875)


def from_onnx(path: str | os.PathLike, source: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """The spec layers of an ONNX file (``input_shape``: the input's sizes without the batch axis, where the file
    leaves them open)."""
    if importlib.util.find_spec("onnx") is None:
        raise BackendMissingError("onnx", "Importing ONNX files", extra="export")
    return lower(read(Path(path), source, input_shape))


def read(path: Path, source: str, input_shape: tuple[int, ...] | None = None) -> OpGraph:
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for a file that is not a model
        raise SourceError(f"is not an ONNX model ({type(e).__name__}).", path=shown(source, 200)) from None
    graph = model.graph
    if not graph.node:
        raise SourceError("is not an ONNX model (its graph has no nodes).", path=shown(source, 200))
    constants: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        try:
            constants[init.name] = numpy_helper.to_array(init)
        except Exception as e:
            raise SourceError(
                f"its initializer `{shown(init.name)}` cannot be read: {shown(e, 200)}.",
                path=shown(source, 200),
            ) from None
    params = set(constants)  # the model's parameters: initializers, and what passes them on unchanged
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise SourceError(f"the model has {len(inputs)} inputs; a spec has one.", path=shown(source, 200))
    (inp,) = inputs
    dims = inp.type.tensor_type.shape.dim
    sizes = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims][1:]
    if input_shape is not None:
        if len(input_shape) != len(sizes) or any(
            s is not None and s != t for s, t in zip(sizes, input_shape)
        ):
            raise SourceError(
                f"--input-shape {'x'.join(map(str, input_shape))} does not fit the model's input "
                f"({', '.join('?' if s is None else str(s) for s in sizes)} after the batch axis).",
                path=shown(source, 200),
            )
        sizes = list(input_shape)
        for d, s in zip(list(dims)[1:], sizes):
            d.dim_value = s
    if not sizes or len(sizes) > 3 or any(s is None for s in sizes):
        raise SourceError(
            f"the model's input `{shown(inp.name)}` has sizes "
            f"({', '.join('?' if s is None else str(s) for s in sizes)}) after the batch axis; "
            "a spec needs them known.",
            path=shown(source, 200),
            hint="Give them with --input-shape, e.g. 3,224,224.",
        )
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception as e:
        raise SourceError(
            f"ONNX cannot infer its shapes: {shown(str(e).splitlines()[0], 200)}.", path=shown(source, 200)
        ) from None
    shapes = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        d = vi.type.tensor_type.shape.dim
        if d and all(x.HasField("dim_value") for x in list(d)[1:]):
            shapes[vi.name] = tuple(int(x.dim_value) for x in list(d)[1:])
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    ops = []
    for node in graph.node:
        attrs = {a.name: _shortest(onnx.helper.get_attribute_value(a)) for a in node.attribute}
        if node.op_type == "Constant" and "value" in attrs:
            constants[node.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        if _fold_constant(node, attrs, constants):
            if node.op_type == "Identity" and node.input[0] in params:
                params.add(node.output[0])  # torch's exporter shares equal initializers through Identity
            continue
        ops.append(_op(node, attrs, constants, shapes, opset))
    rank = len(sizes) + 1
    to_nchw = [0, rank - 1, *range(1, rank - 1)]
    readers = [op for op in ops if inp.name in op.inputs]
    channels_last = (
        rank > 2
        and bool(readers)
        and all(op.type == "Transpose" and list(op.attrs.get("perm", [])) == to_nchw for op in readers)
    )
    name = (
        graph.name
        if graph.name and graph.name not in ("main_graph", "torch_jit", "torch-jit-export")
        else path.stem
    )
    return OpGraph(
        name=name,
        source=source,
        input=inp.name,
        input_shape=tuple(sizes),
        ops=ops,
        outputs=[o.name for o in graph.output],
        constants=constants,
        shapes=shapes,
        input_channels_last=channels_last,
        fixed=set(constants) - params,
    )


def _shortest(value: Any) -> Any:
    """ONNX keeps float attributes as float32: 0.001 reads back as 0.0010000000474974513; give it back as 0.001."""
    if isinstance(value, float):
        return float(str(np.float32(value)))
    if isinstance(value, bytes):
        return value.decode()
    return value


def _fold_constant(node: Any, attrs: dict, constants: dict[str, np.ndarray]) -> bool:
    """Compute, with ONNX's reference evaluator (numpy), an op whose inputs are all constants: weights passed
    through Identity or Transpose, and the Concat / Slice / Reshape arithmetic that exporters write for a pad."""
    ins = [n for n in node.input if n]
    if (
        not all(n in constants for n in ins)
        or node.op_type in ("RandomNormal", "RandomUniform", "Multinomial")
        or (not ins and node.op_type != "ConstantOfShape")
    ):
        return False
    from onnx.reference import ReferenceEvaluator

    try:
        results = ReferenceEvaluator(node).run(None, {n: constants[n] for n in ins})
    except Exception:
        return False  # left to the lowering, which names it if the spec needs it
    for name, value in zip(node.output, results):
        constants[name] = np.asarray(value)
    return True


def _layer_name(node_name: str, op_type: str) -> str:
    """A layer name from torch's scoped node names: ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0_conv1``."""
    parts = [p for p in node_name.strip("/").split("/") if p]
    if len(parts) >= 2:
        path = parts[:-1]
        kept = [p for i, p in enumerate(path) if not (i + 1 < len(path) and path[i + 1].startswith(p + "."))]
        return "_".join(kept)
    base = re.sub(r"_\d+$", "", parts[0]) if parts else ""
    return "" if base.lower() == op_type.lower() else (parts[0] if parts else "")


def _op(node: Any, attrs: dict, constants: dict[str, np.ndarray], shapes: dict, opset: int) -> Op:
    t = node.op_type
    ins, outs = list(node.input), list(node.output)
    where = f"node `{shown(node.name or outs[0])}` ({t})"
    name = _layer_name(node.name, t)

    def op(type_: str, inputs=None, **kw: Any) -> Op:
        return Op(type_, ins if inputs is None else inputs, outs, kw, where, name)

    if t in ACTIVATIONS:
        if t == "Selu" and (
            abs(attrs.get("alpha", SELU[0]) - SELU[0]) > 1e-6
            or abs(attrs.get("gamma", SELU[1]) - SELU[1]) > 1e-6
        ):
            return Op("?", ins, outs, attrs, where + " with other constants than SELU's", name)
        return op("Act", function=ACTIVATIONS[t])
    if t == "Elu" and attrs.get("alpha", 1.0) == 1.0:
        return op("Act", function="elu")
    if t == "LeakyRelu":
        return op("Act", function="leaky_relu", negative_slope=float(attrs.get("alpha", 0.01)))
    if t == "HardSigmoid" and abs(attrs.get("alpha", 0.2) - 1 / 6) < 1e-6 and attrs.get("beta", 0.5) == 0.5:
        return op("Act", function="hard_sigmoid")
    if t == "Gelu" and attrs.get("approximate", "none") == "none":
        return op("Act", function="gelu")
    if t == "Clip":
        low = attrs.get("min", constants[ins[1]].item() if len(ins) > 1 and ins[1] in constants else None)
        high = attrs.get("max", constants[ins[2]].item() if len(ins) > 2 and ins[2] in constants else None)
        if low == 0 and high in (None, float("inf")):
            return op("Act", [ins[0]], function="relu")
        if low == 0 and high == 6:
            return op("Act", [ins[0]], function="relu6")
        return Op("?", ins, outs, attrs, where + f" to [{low}, {high}]", name)
    if t == "Softmax":
        axis = attrs.get("axis", -1 if opset >= 13 else 1)
        rank = len(shapes.get(outs[0], ())) + 1
        if opset < 13 and axis != rank - 1 and axis != -1:
            return Op("?", ins, outs, attrs, where + " over several axes", name)
        return op("Act", function="softmax", axis=axis - 1 if axis > 0 else axis)
    if t in ("Dropout", "Identity"):
        return op("Identity", [ins[0]])
    if t in ("Reshape", "Squeeze", "Unsqueeze", "Flatten") and outs[0] in shapes:
        if t == "Flatten" and attrs.get("axis", 1) == 1:
            return op("Flatten", [ins[0]])
        return op("Reshape", [ins[0]], shape=shapes[outs[0]])
    if t == "Concat":
        axis = attrs["axis"]
        return op("Concat", axis=axis - 1 if axis > 0 else axis)
    if t == "Transpose":
        return op("Transpose", [ins[0]], perm=list(attrs["perm"]))
    if t == "Pad":
        pads = (
            attrs.get("pads")
            if "pads" in attrs
            else ([int(p) for p in constants[ins[1]]] if len(ins) > 1 and ins[1] in constants else None)
        )
        value = attrs.get("value", 0.0)
        if len(ins) > 2 and ins[2] and ins[2] in constants:
            value = _shortest(float(constants[ins[2]].reshape(-1)[0]))
        if pads is None or (len(ins) > 3 and ins[3]):
            return Op("?", ins, outs, attrs, where + " with pads that are not constants", name)
        half = len(pads) // 2
        per_axis = [(pads[i], pads[i + half]) for i in range(half)]
        if per_axis[0] != (0, 0):
            return Op("?", ins, outs, attrs, where + " padding the batch axis", name)
        return op("Pad", [ins[0]], pads=per_axis[1:], value=value, mode=attrs.get("mode", "constant"))
    if t in ("ReduceMean", "ReduceMax"):
        axes = (
            attrs.get("axes")
            if "axes" in attrs
            else ([int(a) for a in constants[ins[1]]] if len(ins) > 1 else [])
        )
        return op(t, [ins[0]], axes=[a - 1 if a > 0 else a for a in axes], keepdims=attrs.get("keepdims", 1))
    if t == "AveragePool" or t == "MaxPool":
        if attrs.get("auto_pad", "NOTSET") != "NOTSET" or attrs.get("storage_order", 0):
            return Op("?", ins, outs, attrs, where + " with auto_pad", name)
        return Op(t, [ins[0]], outs[:1], attrs, where, name)
    if t == "Conv" or t == "ConvTranspose":
        if t == "ConvTranspose" and "output_shape" in attrs:
            return Op("?", ins, outs, attrs, where + " with output_shape", name)
        if t == "ConvTranspose" and attrs.get("auto_pad", "NOTSET") != "NOTSET":
            return Op("?", ins, outs, attrs, where + " with auto_pad", name)
    return Op(t, ins, outs, attrs, where, name)
