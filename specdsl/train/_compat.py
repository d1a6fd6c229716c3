"""Static checks of the ``train:`` and ``data:`` sections against the model, and loading the data a plan needs.

Nothing here imports a framework: the checks read the plan, the sections and the dataset registry, so a spec
whose loss, output layer and dataset disagree fails in milliseconds, before any model is built.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, Loc, SpecError, TrainError
from ..plan import Plan, PlanNode, fmt
from ..spec import DataSpec, LocDict, TrainSpec
from ._stages import stage_plans

if TYPE_CHECKING:
    from ..data import Dataset

SIGMOIDS = ("sigmoid", "hard_sigmoid")
# layers that pass their input's values through unchanged in range (an activation before them still holds)
_TRANSPARENT = ("dropout", "spatial_dropout2d", "flatten", "reshape")
_ACCURACY_METRICS = ("accuracy", "top5_accuracy")


def output_activation(plan: Plan) -> str | None:
    """The activation the model's (first) output comes out of: ``softmax``, ``sigmoid``, ... or None for linear.

    An ``activation`` layer counts, as does the ``activation:`` of a dense or conv layer; dropout, flatten and
    reshape after it are looked through.
    """
    node = plan[plan.outputs[0]]
    while True:
        if node.kind == "activation":
            return node.layer.function if node.layer.function != "linear" else None
        if node.kind in _TRANSPARENT and len(node.inputs) == 1 and node.inputs[0] in plan.by_name:
            previous = plan[node.inputs[0]]
            if previous.kind == "input":
                return None
            node = previous
            continue
        act = getattr(node.layer, "activation", None)
        return act if act not in (None, "linear") else None


def section_loc(plan: Plan, *keys: str) -> Loc:
    """The location of ``train.early_stopping.monitor`` and the like in the spec text, as deep as it exists."""
    node: Any = plan.spec.raw
    loc = Loc(plan.spec.file)
    for i, key in enumerate(keys):
        if not isinstance(node, LocDict) or key not in node:
            break
        loc = node.loc_of(key, value=i == len(keys) - 1) or loc
        node = node[key]
    return loc


def _where(node: PlanNode) -> str:
    return f"{node.path} ({node.kind})" if node.kind != "input" else "input"


def _units(n: int) -> str:
    return f"{n} unit" if n == 1 else f"{n} units"


def _describe(act: str | None) -> str:
    return "no activation (linear)" if act is None else act


def log_keys(train: TrainSpec, has_val: bool = True) -> list[str]:
    """The metric names a run logs each epoch (besides ``lr``, ``epoch_seconds``, ``images_per_s``)."""
    base = ["loss", *(m for m in _ACCURACY_METRICS if m in train.metrics)]
    return base + ([f"val_{k}" for k in base] if has_val else [])


def check_compatible(
    plan: Plan, train: TrainSpec | None = None, data_or_dataset: DataSpec | Dataset | None = None
) -> None:
    """Check that a model can be trained with ``train`` on ``data_or_dataset``, without building or loading anything.

    Accepted: ``binary_crossentropy`` with one ``sigmoid`` unit on a two-class dataset (the probability of class
    1); ``categorical_crossentropy`` and ``sparse_categorical_crossentropy`` with a ``softmax`` output of one unit
    per class (labels are class indices for both; one-hot encoding is done for Keras' categorical loss). Two
    softmax units with binary_crossentropy are refused: use a categorical loss for them. The model must take
    (H, W, 1) or (H, W, 3) images; a ``data:`` section is loaded at the input's size and channels (grayscale and
    RGB are converted), while an already loaded :class:`~specdsl.data.Dataset` must match the input exactly.

    Raises a :class:`SpecError` (the spec disagrees with itself) or a :class:`DataError` (the dataset does not fit
    the model), located at the output layer, the input, or the offending key of the ``train:``/``data:`` section.

        >>> check_compatible(specdsl.check("examples/mnist_cnn.yaml"))  # its own train: and data: sections
    """
    train = train if train is not None else (plan.spec.train or TrainSpec())
    if data_or_dataset is None:
        data_or_dataset = plan.spec.data
    out = plan[plan.outputs[0]]
    where = _where(out)
    if len(plan.outputs) != 1:
        raise SpecError(
            f"training takes a model with one output, but this one has {len(plan.outputs)}: {', '.join(plan.outputs)}.",
            loc=out.loc,
            path=where,
            hint="List one layer under `outputs:`.",
        )
    inp = plan.nodes[0]
    if len(inp.shape) != 3 or inp.shape[2] not in (1, 3):
        raise DataError(
            f"the datasets hold images of shape (height, width, 1 or 3 channels), but the input is {fmt(inp.shape)}.",
            loc=inp.loc,
            path="input",
            hint="Use `input: [H, W, 1]` for grayscale or `input: [H, W, 3]` for RGB.",
        )
    if len(out.shape) != 1:
        raise SpecError(
            f"a classifier's output must be a vector of class scores, but this layer gives {fmt(out.shape)}.",
            loc=out.loc,
            path=where,
            hint="End with flatten (or global_avgpool2d) and dense: {units: N, activation: softmax}.",
        )
    units = out.shape[0]
    act = output_activation(plan)
    loss = train.loss
    binary = loss == "binary_crossentropy"
    if binary:
        if units != 1 or act not in SIGMOIDS:
            raise SpecError(
                f"loss binary_crossentropy needs one sigmoid unit (the probability of class 1), but this layer gives "
                f"{_units(units)} with {_describe(act)}.",
                loc=out.loc,
                path=where,
                hint="Use loss: sparse_categorical_crossentropy with a softmax output, or end with "
                "dense: {units: 1, activation: sigmoid}."
                if act == "softmax"
                else "End with dense: {units: 1, activation: sigmoid}.",
            )
    elif act != "softmax" or units == 1:
        rule = f"loss {loss} needs a softmax output with one unit per class"
        if units == 1 and act in SIGMOIDS:
            raise SpecError(
                f"{rule}, but this layer gives 1 unit with {act}.",
                loc=out.loc,
                path=where,
                hint="For two classes use loss: binary_crossentropy with this layer, or end with "
                "dense: {units: 2, activation: softmax}.",
            )
        if units == 1 and act == "softmax":
            raise SpecError(
                f"{rule}, but this layer's softmax has 1 unit, which always outputs 1.0.",
                loc=out.loc,
                path=where,
                hint="Give it one unit per class (2 for two classes), or use one sigmoid unit with "
                "loss: binary_crossentropy.",
            )
        raise SpecError(
            f"{rule}, but this layer gives {_units(units)} with {_describe(act)}.",
            loc=out.loc,
            path=where,
            hint="Add activation: softmax to it (the loss takes probabilities, as Keras' from_logits=False)."
            if act is None
            else "Use activation: softmax.",
        )
    if "top5_accuracy" in train.metrics and units <= 5:
        raise SpecError(
            f"top5_accuracy needs more than 5 classes, but the output has {_units(units)}.",
            loc=section_loc(plan, "train", "metrics"),
            path="train.metrics",
            hint="Use metrics: [accuracy].",
        )

    name, classes, has_val = _dataset_facts(plan, data_or_dataset)
    if classes is not None:
        if binary and classes != 2:
            raise DataError(
                f"loss binary_crossentropy is for two classes, but the dataset `{name}` has {classes}.",
                loc=out.loc,
                path=where,
                hint=f"Use loss: sparse_categorical_crossentropy and end with "
                f"dense: {{units: {classes}, activation: softmax}}.",
            )
        if not binary and units != classes:
            raise DataError(
                f"loss {loss} needs one output unit per class, but this layer has {_units(units)} and the dataset "
                f"`{name}` has {classes} classes.",
                loc=out.loc,
                path=where,
                hint=f"Set units: {classes} in this layer.",
            )

    _check_monitor(plan, train, name, has_val)
    if train.stages:
        stage_plans(plan, train)  # what each stage unfreezes must be frozen layers of the model


def _check_monitor(plan: Plan, train: TrainSpec, name: str | None, has_val: bool | None) -> None:
    """``train.monitor`` and ``train.early_stopping.monitor`` name a value the run logs, the same one when both
    are given, and a validation value only where there is a validation split."""
    stopping = train.early_stopping
    if train.monitor is not None and stopping is not None and stopping.monitor not in (None, train.monitor):
        raise SpecError(
            f"is `{train.monitor}`, but train.early_stopping.monitor is `{stopping.monitor}`: one value picks the "
            f"best epoch and stops the run.",
            loc=section_loc(plan, "train", "monitor"),
            path="train.monitor",
            hint="Drop one of the two (early stopping watches train.monitor when it names none).",
        )
    if train.monitor is not None:
        monitor, keys = train.monitor, ("monitor",)
    elif stopping is not None and stopping.monitor is not None:
        monitor, keys = stopping.monitor, ("early_stopping", "monitor")
    else:
        return
    path = "train." + ".".join(keys)
    allowed = log_keys(train)
    if monitor not in allowed:
        near = difflib.get_close_matches(monitor, allowed, n=1)
        raise SpecError(
            f"must name a metric the run logs ({', '.join(allowed)}), but got `{monitor}`.",
            loc=section_loc(plan, "train", *keys),
            path=path,
            hint=f"Did you mean `{near[0]}`?" if near else None,
        )
    if monitor.startswith("val_") and has_val is False:
        raise DataError(
            f"`{monitor}` needs a validation split, but the dataset `{name}` has none.",
            loc=section_loc(plan, "train", *keys),
            path=path,
            hint=f"Monitor `{monitor[4:]}`, or give `data.split` a val fraction.",
        )


def _dataset_facts(plan: Plan, data: Any) -> tuple[str | None, int | None, bool | None]:
    """(dataset name, number of classes, whether it has a validation split) as far as they are known statically."""
    if data is None:
        return None, None, None
    if isinstance(data, DataSpec):
        from ..data import get_source

        try:
            source = get_source(data.dataset)
        except DataError as e:  # names the registered datasets; located here at the spec's key
            raise DataError(
                e.message, loc=section_loc(plan, "data", "dataset"), path="data.dataset", hint=e.hint
            ) from None
        h, w = plan.input_shape[:2]
        if data.image_size is not None and tuple(data.image_size) != (h, w):
            raise SpecError(
                f"must be the input's height and width, {h}x{w}, but got "
                f"{data.image_size[0]}x{data.image_size[1]}.",
                loc=section_loc(plan, "data", "image_size"),
                path="data.image_size",
                hint="Leave it out (it defaults to the input's size), or change `input:`.",
            )
        has_val = None if data.split is None else data.split.val > 0
        return data.dataset, source.num_classes, has_val
    # a loaded Dataset
    inp = plan.nodes[0]
    if tuple(data.image_shape) != tuple(inp.shape):
        h, w, c = inp.shape
        raise DataError(
            f"the model takes {fmt(inp.shape)} images, but the dataset `{data.name}` holds "
            f"{fmt(data.image_shape)} images.",
            loc=inp.loc,
            path="input",
            hint=f"Load it with load_dataset(..., image_size=({h}, {w}), channels={c}), or change `input:`.",
        )
    return data.name, data.num_classes, len(data.y_val) > 0


def data_path(plan: Plan, data: DataSpec) -> Path | None:
    """``data.path`` as written in a spec is relative to the spec file's folder (absolute paths stay)."""
    if data.path is None:
        return None
    path = Path(data.path).expanduser()
    if not path.is_absolute() and os.path.exists(plan.spec.file):
        path = Path(plan.spec.file).resolve().parent / path
    return path


def load_for(plan: Plan, data: DataSpec | None) -> Dataset:
    """Load ``data`` at the size and channels of the plan's input (the split and limit drawn with ``data.seed``,
    so that the validation and test sets stay the same whatever the training seed)."""
    if data is None:
        raise TrainError(
            "there is no data to train on: the spec has no `data:` section and none was given.",
            loc=Loc(plan.spec.file),
            hint="Add `data: {dataset: NAME}` (see `specdsl data list`), or pass --data.",
        )
    from ..data import load_dataset

    h, w, c = plan.input_shape
    split = (data.split.train, data.split.val, data.split.test) if data.split is not None else None
    return load_dataset(
        data.dataset,
        path=data_path(plan, data),
        image_size=(h, w),
        channels=c,
        split=split,
        limit=data.limit,
        seed=data.seed,
        resize=data.resize,
        storage=data.storage,
    )
