"""Sliding windows (convolution, pooling, transposed convolution): output sizes and padding amounts, the one place
they are computed, and :class:`Resolved`, the record of what a node's rule worked out for the backends.

Also the small vocabulary every rule speaks: :data:`Shape`, :class:`RuleError`, :func:`fmt`, :func:`numel`.
No framework is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

Shape = tuple[int, ...]
Amounts = tuple[tuple[int, int], ...]  # (before, after) per spatial axis

RuleWarning = tuple[
    str, str
]  # (code, message); the codes are specdsl.spec's WARNINGS, which `silence:` names
NO_WARNINGS: tuple[RuleWarning, ...] = ()
SILENCE_FLOOR = (
    " Use padding: same to keep them, or `silence: [drops-rows]` on the layer where the floor is meant."
)


class RuleError(ValueError):
    """A rule's inputs do not work out; the planner adds the file location and the layer's path."""

    def __init__(self, message: str, hint: str | None = None, *, too_small: bool = False):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # A window that does not fit a valid-padded input: the planner's hint names what shrank the input before it.
        self.too_small = too_small


def fmt(shape: Sequence[int]) -> str:
    """(2, 2, 128) -> '2x2x128'."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


numel: Callable[[Iterable[int]], int] = math.prod  # values in a tensor of a shape (1 for a scalar)


class Resolved(NamedTuple):
    """What a node's rule resolved beyond its shape and counts: what the backends read instead of recomputing it.

    Windows (convolutions, pooling), per spatial axis, as tuples whatever the spec wrote (``kernel: 3`` is (3, 3),
    a conv1d's ``kernel: 3`` is (3,)):

    - ``kernel``: the kernel, or the pool size; ``strides`` (a pool's default resolved: its pool size);
      ``dilation`` (ones for pooling).
    - ``padding``: the (before, after) zeros on each axis: none for 'valid', Keras' amounts for 'same' (the odd
      one after), the spec's explicit amounts as given. For a transposed convolution: what Keras crops from the
      full transposed convolution, (n - 1) * s + k_eff values, at each end (a negative ``after`` adds values).
    - ``same``: the padding is Keras' 'same': written so, or explicit amounts that are exactly 'same''s.

    ``fans``: (fan_in, fan_out) of each kernel the layer has, in Keras' order of its weights, as Keras counts them
    for its initializers (dense: (inputs, units); conv2d: (kh * kw * C / groups, kh * kw * filters)).

    ``weights``: (name, shape) of each of the layer's weights as its Keras layer holds them, in that layer's order
    (a conv2d's ``kernel`` (kh, kw, C / groups, filters), then ``bias``; batchnorm's ``gamma``, ``beta``,
    ``moving_mean``, ``moving_variance``): their sizes add up to the node's parameters, and ``specdsl.weights``
    reads them (see :func:`weights`).

    Kinds without windows, kernels or weights get :data:`NOTHING`, all fields empty.
    """

    kernel: Shape = ()
    strides: Shape = ()
    dilation: Shape = ()
    padding: Amounts = ()
    same: bool = False
    fans: tuple[tuple[int, int], ...] = ()
    weights: tuple[tuple[str, Shape], ...] = ()

    @property
    def effective_kernel(self) -> Shape:
        """The kernel's extent with dilation folded in: d * (k - 1) + 1 on each axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))


NOTHING = Resolved()


def weights(*entries: tuple[str, Shape] | None) -> Resolved:
    """The Resolved of a kind without windows whose weights are ``entries`` (None entries left out):
    ``weights(("gamma", (c,)), ("beta", (c,)) if center else None)``."""
    return Resolved(weights=tuple(e for e in entries if e is not None))


ONES_2D, ZEROS_2D = (1, 1), ((0, 0), (0, 0))


def same_padding(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """Padding (before, after) that Keras' 'same' applies to one axis: the extra pixel goes after."""
    k_eff = d * (k - 1) + 1
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def window_length(n: int, k: int, s: int, d: int, pad: str | tuple[int, int]) -> tuple[int, int]:
    """Output length of a window of size k, stride s, dilation d sliding over n values.

    ``pad`` is 'valid', 'same' or explicit (before, after) amounts. Returns (output length, values that the
    floor leaves out at the end). The output length may be <= 0; the caller reports it.
    """
    if pad == "same":
        return -(-n // s), 0
    before, after = (0, 0) if isinstance(pad, str) else pad
    k_eff = d * (k - 1) + 1
    span = n + before + after - k_eff
    if span < 0:
        return 0, 0
    return span // s + 1, span % s


def transpose_length(n: int, k: int, s: int, d: int, padding: str, output_padding: int | None) -> int:
    """Keras' deconv_output_length."""
    k_eff = d * (k - 1) + 1
    if output_padding is None:
        return n * s + max(k_eff - s, 0) if padding == "valid" else n * s
    pad = 0 if padding == "valid" else k_eff // 2
    return (n - 1) * s + k_eff - 2 * pad + output_padding


def transpose_padding(n: int, out: int, k: int, s: int, d: int, padding: str, output_padding: int | None):
    """(before, after): what Keras' transposed convolution crops from the full one, (n - 1) * s + k_eff values,
    to give ``out`` values. TensorFlow and JAX drop ``before`` values at the start, as JAX's conv_transpose padding
    rule puts them, and end at ``out``; a negative ``after`` is values added at the end."""
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        before = 0
    else:
        pad_len = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + output_padding
        before = k_eff - 1 - min(pad_len // 2 + pad_len % 2, k_eff - 1)
    return before, (n - 1) * s + k_eff - before - out


# The way out of a window that does not fit its valid-padded input, by what shrank the input before it.
TOO_SMALL_HINTS = {
    "pool": "Use padding: same, or drop a pooling layer before it.",
    "strides": "Use padding: same, or lower the strides of a layer before it.",
    "none": "Use padding: same or a smaller kernel, or give the model a larger input.",
}
POOL_KINDS = frozenset({"maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d"})


def _pad_text(pad: str | tuple) -> str:
    return (
        pad
        if isinstance(pad, str)
        else str([list(p) for p in pad])
        if isinstance(pad[0], tuple)
        else str(list(pad))
    )


def windows_2d(
    what: str, ins: Shape, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], pad
) -> tuple[tuple[int, int], tuple[RuleWarning, ...], Amounts, bool]:
    """Spatial output size of a 2-D window op, with errors and floor warnings stated in the spec's terms; and its
    padding as amounts, and whether they are Keras' 'same' (see :class:`Resolved`)."""
    h, w = ins[0], ins[1]
    if pad == "same":  # Keras' 'same': ceil(n / s) whatever the window, and no input left out
        amounts = (same_padding(h, k[0], s[0], d[0]), same_padding(w, k[1], s[1], d[1]))
        return (-(-h // s[0]), -(-w // s[1])), NO_WARNINGS, amounts, True
    if pad == "valid":  # the common case, when the windows fit and the stride leaves nothing out
        span_h, span_w = h - d[0] * (k[0] - 1) - 1, w - d[1] * (k[1] - 1) - 1
        if span_h >= 0 and span_w >= 0 and not span_h % s[0] and not span_w % s[1]:
            return (span_h // s[0] + 1, span_w // s[1] + 1), NO_WARNINGS, ZEROS_2D, False
    pads = (pad, pad) if isinstance(pad, str) else pad
    oh, dh = window_length(h, k[0], s[0], d[0], pads[0])
    ow, dw = window_length(w, k[1], s[1], d[1], pads[1])
    if oh <= 0 or ow <= 0:
        hint = (
            TOO_SMALL_HINTS["pool"] if pad == "valid" else "Use a smaller kernel, or give it a larger input."
        )
        dil = (
            f" (dilation {fmt(d)}: effective {fmt(tuple(d[i] * (k[i] - 1) + 1 for i in range(2)))})"
            if d != (1, 1)
            else ""
        )
        raise RuleError(
            f"{what} {fmt(k)}{dil} does not fit its {fmt(ins)} input with padding={_pad_text(pad)} "
            f"(output would be {max(oh, 0)}x{max(ow, 0)}).",
            hint,
            too_small=pad == "valid",
        )
    # A window smaller than its stride skips rows everywhere by design (a strided 1x1 conv): no warning there.
    dh = dh if d[0] * (k[0] - 1) + 1 >= s[0] else 0
    dw = dw if d[1] * (k[1] - 1) + 1 >= s[1] else 0
    warnings: list[RuleWarning] = []
    if dh or dw:
        lost = []
        if dh:
            lost.append(f"the last {dh} row{'s' if dh > 1 else ''}")
        if dw:
            lost.append(f"the last {dw} column{'s' if dw > 1 else ''}")
        warnings.append(
            (
                "drops-rows",
                f"stride {fmt(s)} over {h}x{w} leaves out {' and '.join(lost)} of the input "
                f"(floor in the output size).{SILENCE_FLOOR}",
            )
        )
    if pad == "valid":
        return (oh, ow), tuple(warnings), ZEROS_2D, False
    same = pad != ZEROS_2D and pad == (same_padding(h, k[0], s[0], d[0]), same_padding(w, k[1], s[1], d[1]))
    return (oh, ow), tuple(warnings), pad, same


def windows_1d(
    what: str, ins: Shape, k: int, s: int, d: int, pad
) -> tuple[int, tuple[RuleWarning, ...], Amounts, bool]:
    """The 1-D :func:`windows_2d`: output length, floor warnings, the padding as amounts, whether it is 'same'."""
    n = ins[0]
    out, dropped = window_length(n, k, s, d, pad)
    if out <= 0:
        hint = TOO_SMALL_HINTS["pool"] if pad == "valid" else "Use a smaller kernel."
        dil = f" (dilation {d}: effective {d * (k - 1) + 1})" if d != 1 else ""
        raise RuleError(
            f"{what} {k}{dil} does not fit its {fmt(ins)} input with padding={_pad_text(pad)} (output would be 0).",
            hint,
            too_small=pad == "valid",
        )
    warnings = NO_WARNINGS
    if dropped and d * (k - 1) + 1 >= s:
        warnings = (
            (
                "drops-rows",
                f"stride {s} over length {n} leaves out the last {dropped} values (floor in the output size)."
                f"{SILENCE_FLOOR}",
            ),
        )
    if pad == "valid":
        return out, warnings, ((0, 0),), False
    if pad == "same":
        return out, warnings, (same_padding(n, k, s, d),), True
    return out, warnings, (pad,), pad != (0, 0) and pad == same_padding(n, k, s, d)
