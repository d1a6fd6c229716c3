"""The non-layer sections of a spec: ``input``, ``limits``, ``data``, ``train`` and ``search``."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, field_validator, model_validator

from ._sizes import MAX_BATCH, MAX_SEED, duration_seconds, memory_bytes, shortened
from ._types import Name, PosInt, StrictModel


class Section(StrictModel):
    """Base of the sections: every number in them must be finite (``.inf`` is refused as ``.nan`` is)."""

    model_config = ConfigDict(allow_inf_nan=False)


class InputSpec(StrictModel):
    """The model's input: ``input: [32, 32, 3]`` (H, W, C) or ``{shape: [...], name: image}``."""

    shape: tuple[PosInt, ...] = Field(min_length=1, max_length=3)
    name: Name = "input"


MAX_COUNT = 2**62  # FLOPs and bytes: a real model's exceed 2**31 (ResNet-50: 4 GFLOPs an image)
Count = Annotated[int, Field(ge=1, le=MAX_COUNT, strict=True)]


class Limits(Section):
    """Bounds that refuse a model before anything is built (override per spec)."""

    max_params: PosInt = Field(default=1_000_000_000, description="Refuse models with more parameters.")
    max_flops: Count | None = Field(
        default=None, description="Refuse models with more forward FLOPs per example."
    )
    max_activation_bytes: Count = Field(
        default=16 * 1024**3,
        description="Refuse models whose forward activations for one example exceed this (float32).",
    )


class Augment(Section):
    """Random augmentation of training batches (as the lectures' ImageDataGenerator)."""

    flip: Literal["none", "horizontal", "vertical", "both"] = "none"
    rotation: float = Field(default=0.0, ge=0, le=180, description="Max rotation in degrees, either way.")
    shift: float = Field(default=0.0, ge=0, lt=1, description="Max shift as a fraction of height/width.")
    zoom: float = Field(default=0.0, ge=0, lt=1, description="Max zoom in or out as a fraction.")
    brightness: float = Field(default=0.0, ge=0, lt=1)
    contrast: float = Field(
        default=0.0, ge=0, lt=1, description="Max contrast change as a fraction, about each image's mean."
    )
    saturation: float = Field(
        default=0.0, ge=0, lt=1, description="Max colour saturation change as a fraction (RGB images)."
    )
    hue: float = Field(
        default=0.0, ge=0, le=0.5, description="Max hue rotation as a fraction of a turn (RGB)."
    )
    crop: int = Field(
        default=0,
        ge=0,
        description="Random crop: pad each side with this many black pixels, cut the size back.",
    )
    cutout: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Cutout: a black square this fraction of each side, placed at random.",
    )


class Split(Section):
    """Fractions of the examples for training, validation and test; they sum to 1."""

    train: float = Field(gt=0, le=1)
    val: float = Field(default=0.0, ge=0, lt=1)
    test: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _sum(self) -> Split:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + val + test must be 1, but got {self.train} + {self.val} + {self.test} = {total:g}"
            )
        return self


class DataSpec(Section):
    """Where the examples come from; ``dataset`` names a registered source (``specdsl data list``)."""

    dataset: str = Field(examples=["mnist", "cifar10", "catsdogs"])
    path: str | None = Field(
        default=None, description="Folder for image-folder datasets (or to override a source)."
    )
    image_size: tuple[PosInt, PosInt] | PosInt | None = Field(
        default=None,
        description="[height, width] (or one number for square); default: the input's height, width.",
    )
    split: Split | None = None
    limit: PosInt | None = Field(default=None, description="Use at most this many training examples.")
    seed: int = Field(
        default=0,
        ge=0,
        le=MAX_SEED,
        description="The draw of the split and of `limit`: another seed draws other validation and test examples "
        "(train.seed, the training's own seed, leaves them as they are).",
    )
    augment: Augment = Field(default_factory=Augment)
    normalize: Literal["unit", "none", "standard"] = Field(
        default="unit", description="unit: scale pixels to [0, 1]; standard: per-channel mean 0, std 1."
    )
    resize: Literal["squash", "crop", "pad"] = Field(
        default="squash",
        description="How images of another aspect ratio take image_size: squash (stretched), crop (the centre "
        "kept) or pad (black bands added).",
    )
    storage: Literal["auto", "memory", "disk"] = Field(
        default="auto",
        description="memory: decoded images held in memory; disk: decoded once into a uint8 file in the cache "
        "and memory-mapped, read a batch at a time; auto: disk when the images as float32 would pass 1 GiB.",
    )

    @field_validator("image_size", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value


class Optimizer(Section):
    """Defaults as Keras' optimizers have them: lr 0.01 for sgd, 0.001 for the others; weight decay 0.004 for adamw."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(default=1e-3, gt=0, validation_alias=AliasChoices("lr", "learning_rate"))
    momentum: float = Field(default=0.0, ge=0, lt=1, description="sgd and rmsprop")
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _keras_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("name", "adam")
        filled = data.copy()
        if "lr" not in data and "learning_rate" not in data:
            filled["lr"] = 0.01 if name == "sgd" else 0.001
        if "weight_decay" not in data and name == "adamw":
            filled["weight_decay"] = 0.004
        return filled


class Schedule(Section):
    """How the learning rate changes over the epochs (``schedule: cosine``, or ``{name: step, step_size: 10}``)."""

    name: Literal["constant", "cosine", "step", "exponential", "plateau"] = "constant"
    step_size: PosInt = Field(default=10, description="step: epochs between decays")
    gamma: float = Field(default=0.1, gt=0, le=1, description="step/exponential/plateau: decay factor")
    patience: PosInt = Field(default=3, description="plateau: epochs without improvement before decaying")
    warmup_epochs: int = Field(default=0, ge=0)


class EarlyStopping(Section):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str | None = Field(default=None, description="The value watched: train.monitor, else val_loss.")
    patience: PosInt = 5
    min_delta: float = Field(default=0.0, ge=0)
    restore_best: bool = True


class Stage(Section):
    """One stage of a staged fine-tune (``train.stages``): its epochs, the frozen layers it unfreezes when it
    begins, and the optimizer it trains with (default: the train section's, at ``learning_rate`` if given)."""

    epochs: PosInt = Field(description="Epochs of this stage; the run's epochs count on across the stages.")
    unfreeze: Annotated[int, Field(ge=0, strict=True)] | Literal["all"] | list[Name] | None = Field(
        default=None,
        description="Layers unfrozen when the stage begins: N, the last N frozen layers with weights (counted "
        "from the output); all; or a list of layer names.",
    )
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        validation_alias=AliasChoices("learning_rate", "lr"),
        description="The stage's rate.",
    )
    optimizer: Optimizer | Literal["adam", "adamw", "sgd", "rmsprop"] | None = Field(
        default=None, description="The stage's optimizer (default: the train section's)."
    )

    @field_validator("optimizer", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("unfreeze", mode="before")
    @classmethod
    def _what(cls, value: Any) -> Any:
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (value is None or count or value == "all" or names):
            raise ValueError(
                f"takes a count >= 0 (the last N frozen layers with weights), all, or a list of layer names, "
                f"but got {shortened(value)}"
            )
        return value

    def optimizer_of(self, train: TrainSpec) -> Optimizer:
        """The optimizer this stage trains with."""
        o = self.optimizer if isinstance(self.optimizer, Optimizer) else train.optimizer
        assert isinstance(o, Optimizer)
        return o if self.learning_rate is None else o.model_copy(update={"lr": self.learning_rate})


# Default factories are named functions, not lambdas: a validator's schema refers to them by name, and so can be
# kept between processes (see _validators).
def _accuracy() -> list[Literal["accuracy", "top5_accuracy"]]:
    return ["accuracy"]


class TrainSpec(Section):
    """How the model is trained (Keras names for losses and metrics)."""

    # A bare name (`optimizer: adam`) is accepted and becomes the full form; the union is for the JSON schema.
    optimizer: Optimizer | Literal["adam", "adamw", "sgd", "rmsprop"] = Field(default_factory=Optimizer)
    schedule: Schedule | Literal["constant", "cosine", "step", "exponential", "plateau"] = Field(
        default_factory=Schedule
    )
    loss: Literal["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"] = (
        "sparse_categorical_crossentropy"
    )
    metrics: list[Literal["accuracy", "top5_accuracy"]] = Field(default_factory=_accuracy)
    epochs: PosInt = 10
    batch_size: int = Field(
        default=32, ge=1, le=MAX_BATCH, strict=True, description="Examples a batch, at most 1,048,576."
    )
    early_stopping: EarlyStopping | None = None
    monitor: str | None = Field(
        default=None,
        description="The logged value that picks the best epoch, whose weights the run keeps and tests (the plateau "
        "schedule and early stopping watch it too): early_stopping.monitor when unset, else val_loss (loss "
        "without a validation split).",
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="0 .. 2**32 - 1.")
    backend: Literal["torch", "keras"] = "torch"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    device: str = Field(
        default="auto",
        description="Where to train: auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps.",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32",
        description="fp32, or mixed precision by autocast: bf16, or fp16 with a gradient scaler.",
    )
    stages: list[Stage] | None = Field(
        default=None,
        min_length=1,
        description="A staged fine-tune: stages trained one after the other in one run (epochs counting on), "
        "each unfreezing layers and setting its learning rate; `epochs` is then the stages' sum.",
    )

    channels_last: Literal["auto", True, False] = Field(
        default="auto",
        description="The torch loop's memory format for the model and batches: channels_last (NHWC strides) or "
        "not; auto: on the CPU, and on CUDA in bf16 or fp16, where it was measured faster.",
    )
    compile: bool = Field(
        default=False,
        strict=True,
        description="torch.compile the model in the torch loop: worth it for long runs (the first steps compile).",
    )

    @model_validator(mode="before")
    @classmethod
    def _staged_epochs(cls, data: Any) -> Any:
        """With stages, ``epochs`` is the sum of theirs (written as well, it must be that sum)."""
        stages = data.get("stages") if isinstance(data, dict) else None
        if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) for s in stages):
            return data
        counts = [s.get("epochs") for s in stages]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in counts):
            return data
        total = sum(counts)
        if "epochs" in data and data["epochs"] != total:
            raise ValueError(
                f"with `stages`, `epochs` is the sum of the stages' epochs ({total}), but got "
                f"epochs: {shortened(data['epochs'])}; leave `epochs` out"
            )
        return {**data, "epochs": total}

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.fullmatch(value):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, but got {shortened(value)}")
        return value

    @field_validator("optimizer", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("schedule", mode="before")
    @classmethod
    def _named_schedule(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class Objective(Section):
    """What a search ranks its trials by (a training metric, or the model's params, trainable, flops or
    activation_bytes), and which way."""

    metric: str = "val_accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"


class Constraints(Section):
    """Bounds a search's sampled models must keep; one beyond them is rejected before it is built."""

    max_params: PosInt | None = None
    max_flops: Count | None = None
    max_activation_bytes: Count | None = None


class Select(Section):
    """How the search chooses its final model: the ``top`` trials by their validation curves are trained again
    ``repeats`` times each, on fresh splits of the training and validation data (the test set untouched) with
    fresh seeds, and the one with the best mean of those fresh values is chosen. It is then trained on ``confirm``
    more fresh splits, which take no part in choosing it: their mean and spread are the estimate it reports (the
    best of several means is itself a lucky one). One validation set of a few hundred examples is too noisy to pick
    among many trials by (the trial picked is the luckiest); a fresh split is not. With a timeout, ``share`` of it
    is kept for this.
    By default a search with a timeout re-evaluates its top 3; one bounded by its trial count only does not."""

    top: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Trials re-evaluated (0 or 1: none); default 3 with a timeout, none without.",
    )
    repeats: int = Field(default=2, ge=1, le=10, description="Fresh splits each of them is trained on.")
    confirm: int = Field(
        default=2,
        ge=0,
        le=10,
        description="More fresh splits the chosen trial is trained on for its estimate alone (0: the estimate is "
        "the mean that chose it, which overstates).",
    )
    share: float = Field(
        default=0.3, ge=0, le=0.9, description="Share of the timeout kept for the re-evaluations."
    )


def _one_objective() -> list[Objective]:
    return [Objective()]


class SearchSpec(Section):
    """How a search space is explored (``specdsl search``)."""

    objectives: list[Objective] | Objective = Field(default_factory=_one_objective, min_length=1)
    sampler: Literal["tpe", "random", "cmaes", "nsga2", "grid", "qmc"] = "tpe"
    pruner: Literal["median", "hyperband", "successive_halving", "none"] = "median"
    constraints: Constraints = Field(default_factory=Constraints)
    select: Select = Field(default_factory=Select)
    trials: PosInt | None = 20
    timeout: PosInt | str | None = Field(default=None, description="Seconds, or e.g. '15m', '2h'.")
    seed: int | None = Field(default=0, ge=0, le=MAX_SEED, description="0 .. 2**32 - 1.")
    storage: str | None = Field(
        default=None,
        description="An Optuna storage URL (sqlite:///optuna.db, postgresql://...) or journal:PATH. "
        "Default: sqlite:///optuna.db in the working folder.",
    )
    study_name: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    startup_trials: int = Field(
        default=5, ge=0, description="Trials before the pruner and TPE start working."
    )
    warmup_epochs: int = Field(
        default=1,
        ge=1,
        description="Epochs every trial trains before the pruner may stop it (the median pruner's warm-up; the "
        "first rung of hyperband and successive halving). Early epochs say little when the schedule is long.",
    )
    trial_memory: int | str | None = Field(
        default=None,
        description="Memory one trial may use: bytes, or a size such as '2GiB' or '512MB' (KiB, MiB, GiB, TiB count "
        "1024s; KB, MB, GB, TB count 1000s). A sampled model whose estimated training memory (weights, gradients, "
        "optimizer state, a batch's activations) exceeds it is pruned before it is built; a trial during which its "
        "process's resident memory passes it fails with the reason, and the study goes on.",
    )

    @field_validator("objectives", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("trial_memory", mode="before")
    @classmethod
    def _memory_size(cls, value: Any) -> Any:
        return memory_bytes(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        duration_seconds(value)  # kept as written; search reads it with parse_duration
        return value

    @field_validator("storage")
    @classmethod
    def _storage_url(cls, value: Any) -> Any:
        # the URL is not quoted back: it may hold a password
        if value is not None and not (value.startswith("journal:") or _URL.match(value)):
            raise ValueError(
                "a study storage is a URL such as sqlite:///optuna.db or postgresql://user@host/db "
                "(SCHEME://...), or journal:PATH"
            )
        return value


_DEVICE = re.compile(r"auto|cpu|cuda(:\d{1,4})?|mps")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


SECTIONS: dict[str, type[StrictModel]] = {
    "limits": Limits,
    "data": DataSpec,
    "train": TrainSpec,
    "search": SearchSpec,
}
