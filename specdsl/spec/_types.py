"""Value types shared by the layer kinds: pairs, paddings, activations, names."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Activation = Literal[
    "linear",
    "relu",
    "relu6",
    "elu",
    "selu",
    "gelu",
    "leaky_relu",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "softplus",
    "swish",
    "silu",
]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)

# The kernel initializers the backends know by name, in Keras' own spelling; the first is Keras' default.
INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "zeros",
    "ones",
)

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]


def _pair(value: Any) -> Any:
    """3 -> (3, 3); [3, 5] -> (3, 5). Anything else is left for pydantic to reject."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    return value


def _single(value: Any) -> Any:
    """[3] -> 3, for 1-D layers whose users write sizes as one-element lists."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


MAX_SIZE = 2**31 - 1  # sizes beyond int32 are typos, and overflow the frameworks
PosInt = Annotated[int, Field(ge=1, le=MAX_SIZE, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_SIZE, strict=True)]
# json_schema_input_type: what a user may write (the JSON Schema describes it), before it is normalized
Pair = Annotated[
    tuple[PosInt, PosInt], BeforeValidator(_pair, json_schema_input_type=PosInt | tuple[PosInt, PosInt])
]
Single = Annotated[PosInt, BeforeValidator(_single, json_schema_input_type=PosInt | tuple[PosInt])]


def _padding2d(value: Any) -> Any:
    """'valid' | 'same' | p | [ph, pw] | [[top, bottom], [left, right]] -> mode or ((t, b), (l, r))."""
    if isinstance(value, str) or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return ((value, value), (value, value))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        a, b = value
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
            return ((a, a), (b, b))
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return (tuple(a), tuple(b))
    return value


def _padding1d(value: Any) -> Any:
    if isinstance(value, str) or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], int):
        return (value[0], value[0])
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    return value


PadAmounts2D = tuple[tuple[NonNegInt, NonNegInt], tuple[NonNegInt, NonNegInt]]
PadAmounts1D = tuple[NonNegInt, NonNegInt]
PadInput2D = NonNegInt | tuple[NonNegInt, NonNegInt] | PadAmounts2D  # p | [ph, pw] | [[t, b], [l, r]]
Padding2D = Annotated[
    Literal["valid", "same"] | PadAmounts2D,
    BeforeValidator(_padding2d, json_schema_input_type=Literal["valid", "same"] | PadInput2D),
]
Padding1D = Annotated[
    Literal["valid", "same"] | PadAmounts1D,
    BeforeValidator(
        _padding1d,
        json_schema_input_type=Literal["valid", "same"] | NonNegInt | tuple[NonNegInt] | PadAmounts1D,
    ),
]
PoolPadding = Literal["valid", "same"]


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors, values are checked on assignment too."""

    # defer_build: a model's validator is built the first time it is used, so that a process validating a
    # spec pays only for the kinds it uses (building all of them up front costs ~0.1 s at import).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, populate_by_name=True, frozen=True, defer_build=True
    )

    @classmethod
    def model_rebuild(
        cls,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Any = None,
    ) -> bool | None:
        # The first use of a deferred model comes here: take its validator from the on-disk cache when it has one
        # (see _validators), and otherwise let pydantic build it and keep the result for the next process.
        from . import _validators

        if not force and not cls.__pydantic_complete__ and _validators.install(cls):
            return True
        built = super().model_rebuild(
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=_parent_namespace_depth + 1,
            _types_namespace=_types_namespace,
        )
        if built and not force:
            _validators.remember(cls)
        return built
