"""Writing a plan's torch model to a file: generated source, ONNX, TorchScript or a torch.export program."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._text import file_stem
from ...errors import BackendError, BackendMissingError
from ...plan import Plan
from ._model import build, torch_shape
from ._source import source

FORMATS = ("source", "onnx", "torchscript", "export")
LAYOUTS = ("nchw", "nhwc")  # the input layouts an exported file can take: torch's, or Keras' channels-last
SUFFIXES = {"source": ".py", "onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}
RTOL, ATOL = 1e-4, 1e-5


def example_input(plan: Plan, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A reproducible random input batch for a plan, in torch's layout."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *torch_shape(plan.input_shape)), generator=generator)


def export(
    plan: Plan,
    path: str | os.PathLike,
    format: str,
    model: nn.Module | None = None,
    *,
    layout: str | None = None,
    verify: bool = True,
    dynamo: bool | None = None,
) -> Path:
    """Write the plan's model to ``path`` (a file, or a folder to hold ``<model name><suffix>``, the name made a safe
    file name) and return the file.

    Formats: ``source`` (standalone Python, see :func:`source`; ``model`` plays no part), ``onnx``
    (``torch.onnx.export``, checked with ``onnx.checker``), ``torchscript`` (traced, ``.pt``) and ``export``
    (``torch.export``, ``.pt2``). A path without a suffix gets the format's (``.py``, ``.onnx``, ``.pt``, ``.pt2``).
    ``model`` is the module to write (e.g. a trained one; traced in eval mode and left in the mode it was in); by
    default a fresh :func:`build` of the plan. The batch axis stays dynamic in ONNX and torch.export files.
    ``layout`` is the input layout of the file: ``"nchw"`` (default, torch's: (N, C, H, W)) or ``"nhwc"``
    (Keras', channels last: the file takes (N, H, W, C), as the Keras model of the plan does, and gives every
    output of more than one axis besides the batch's channels last too, so that it computes exactly what the Keras
    model computes; the channels are moved inside the file, see :class:`ChannelsLast`).
    With ``verify`` (the default), the written file is loaded back and run on a random batch of another size (ONNX
    with onnxruntime, when installed), and its outputs must equal the model's within 1e-4 relative. ``dynamo``
    picks torch's ONNX exporter: True for the torch.export-based one (needs onnxscript), False for the
    TorchScript-based one (needs only onnx), None (default) for the first when onnxscript is installed.

        >>> export(plan, "out/", "onnx")
        PosixPath('out/lenet5.onnx')
        >>> export(plan, "lenet5_nhwc.onnx", "onnx", layout="nhwc")  # input (N, 32, 32, 1)
    """
    if format not in FORMATS:
        raise BackendError(f"the torch backend exports to {', '.join(FORMATS)}, but got format={format!r}.")
    if layout not in (None, *LAYOUTS):
        raise BackendError(f"an exported file's input layout is nchw or nhwc, but got layout={layout!r}.")
    if layout == "nhwc" and format == "source":
        raise BackendError(
            "generated source builds the torch model, which takes NCHW input; the nhwc layout is for exported "
            f"files ({', '.join(FORMATS[1:])}).",
            hint="Give --format onnx (or torchscript, export) with --layout nhwc, or --backend keras for source.",
        )
    path = Path(path)
    if path.is_dir():
        path = path / f"{file_stem(plan.name)}{SUFFIXES[format]}"
    elif not path.suffix:
        path = path.with_name(path.name + SUFFIXES[format])
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "source":
        path.write_text(source(plan), encoding="utf-8")
        return path
    if format == "onnx":
        _need("onnx", "ONNX export")
        if dynamo:
            _need("onnxscript", "ONNX export with dynamo=True")
    model = build(plan) if model is None else model
    was_training = model.training
    x = example_input(plan, batch=2)  # what the file is written with
    probe = example_input(plan, batch=3, seed=1)  # what it is checked on
    inner = model
    if layout == "nhwc":
        model = ChannelsLast(model, plan)
        x, probe = channels_last(x), channels_last(probe)
    try:
        with torch.no_grad():
            model.eval()
            if format == "onnx":
                run = _onnx(plan, model, x, path, dynamo)
            elif format == "torchscript":
                torch.jit.trace(model, (x,), check_trace=False).save(str(path))
                run = lambda t: torch.jit.load(str(path))(t)
            else:
                program = torch.export.export(
                    model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)
                )
                torch.export.save(program, str(path))
                run = lambda t: torch.export.load(str(path)).module()(t)
            if verify and run is not None:
                _compare(format, path, [t.numpy() for t in _as_list(model(probe))], _as_list(run(probe)))
    finally:
        inner.train(was_training)
    return path


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """A tensor in torch's layout (N, C, ...) with its channels moved last: (N, ..., C)."""
    return t.permute(0, *range(2, t.dim()), 1).contiguous() if t.dim() > 2 else t


class ChannelsLast(nn.Module):
    """A model of a plan taking channels-last input, (N, H, W, C) as Keras models do, and giving each output of more
    than one axis besides the batch channels last as well: what the Keras model of the plan computes, with torch's
    modules. ``model`` (torch's layout) is its one submodule, ``model``."""

    def __init__(self, model: nn.Module, plan: Plan):
        super().__init__()
        self.model = model
        rank = len(plan.input_shape) + 1
        self.to_torch = (0, rank - 1, *range(1, rank - 1))  # (N, ..., C) -> (N, C, ...)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs = [channels_last(y) for y in _as_list(self.model(x.permute(*self.to_torch)))]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _onnx(plan: Plan, model: nn.Module, x: torch.Tensor, path: Path, dynamo: bool | None):
    """Write ONNX and check it; return a function running the file (None without onnxruntime)."""
    import onnx

    if dynamo is None:
        dynamo = importlib.util.find_spec("onnxscript") is not None
    input_name = plan.nodes[0].name
    output_names = list(plan.outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the exporters and of what they call
        options: dict[str, Any]
        if dynamo:
            options = {"dynamic_shapes": ({0: torch.export.Dim("batch", min=1)},), "external_data": False}
        else:
            options = {
                "dynamic_axes": {name: {0: "batch"} for name in (input_name, *output_names)},
                "opset_version": 17,
            }
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=[input_name],
            output_names=output_names,
            dynamo=dynamo,
            **options,
        )
    onnx.checker.check_model(str(path), full_check=True)
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda t: session.run(output_names, {input_name: t.numpy()})


def _need(package: str, purpose: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise BackendMissingError(package, purpose, extra="export")


def _as_list(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _compare(format: str, path: Path, expected: list[np.ndarray], got: list) -> None:
    for i, (a, b) in enumerate(zip(expected, got)):
        b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
        if a.shape != b.shape or not np.allclose(b, a, rtol=RTOL, atol=ATOL):
            worst = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("nan")
            raise BackendError(
                f"the {format} file {path} does not reproduce the model: output {i} is {b.shape} with largest "
                f"difference {worst:.3g}, where torch gives {a.shape} (tolerance {RTOL} relative)."
            )
