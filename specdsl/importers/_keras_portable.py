"""specdsl's own Keras layers read back from the built-in layers a portable ``.keras`` file holds them as.

specdsl's Keras backend writes ``.keras`` files with Keras' built-in layers only (``specdsl.backends`` ``_portable``),
so two of its layers are there as a few built-in ones each. Exactly these patterns fold back into one spec layer,
named as the node was:

- ``bias: {per: channel | position}``: ``<node>_ones`` (``Rescaling(0, 1)`` of the input ``x``) -> ``<node>``
  (``EinsumDense`` ``...,d->...`` per channel or ``...,<every axis>->...`` per position, no bias or activation of
  its own; its kernel is the bias) -> ``<node>_add`` (``Add`` of ``x`` and ``<node>``).
- ``avgpool2d`` / ``avgpool1d`` with ``padding: same``: ``<node>_pad`` (zero padding of ``x`` by 'same' amounts) ->
  ``<node>_sum`` (a valid average pooling), divided (``keras.ops.divide``) by ``<node>_ones`` (``Rescaling(0, 1)``
  of ``x``) -> ``<node>_ones_pad`` (the same padding) -> ``<node>_share`` (the same pooling).

Every piece must be read only by the next one of its pattern (and be no output of the model). An ``EinsumDense``
or a ``keras.ops.divide`` left over is reported as before: the language has no equivalent.
"""

from __future__ import annotations

import re

from ..plan import same_padding
from ._graph import Layer, Problems

EINSUM = "<einsum_dense>"  # not kinds: folded as below, or reported
DIVIDE = "<divide>"
PAD1D = "<zero_padding1d>"  # also the padding before a conv1d (folded into it in ``_keras``)
PADS = {"avgpool2d": "zero_padding2d", "avgpool1d": PAD1D}
LETTERS = "abcdefghijklmnopqrstuvwxyz"
Shape = tuple[int, ...]


def fold_portable(
    layers: list[Layer], outputs: list[str], shapes: dict[str, Shape], problems: Problems
) -> list[Layer]:
    """The layers with every portable bias and average pooling folded back (``outputs`` follow them);
    ``shapes`` holds each layer's input shape (batch axis left out)."""
    fold = _Fold(layers, outputs, shapes)
    for layer in list(fold.layers):
        if layer.kind == EINSUM:
            fold.bias(layer)
        elif layer.kind == DIVIDE:
            fold.pool(layer)
    for layer in fold.layers:
        if layer.kind == EINSUM:
            problems.add(layer.origin, group="EinsumDense")
        elif layer.kind == DIVIDE:
            problems.add(layer.origin, "a keras.ops call", group="Divide")
    outputs[:] = fold.outputs
    return fold.layers


def _named(layer: Layer | None, node: str, suffix: str) -> bool:
    """Whether ``layer`` is the node's piece ``<node><suffix>`` (or that name made unique: ``..._1``)."""
    return layer is not None and re.fullmatch(re.escape(node + suffix) + r"(_\d+)?", layer.name) is not None


def _ones(layer: Layer | None) -> bool:
    return layer is not None and layer.kind == "rescaling" and layer.args == {"scale": 0.0, "offset": 1.0}


class _Fold:
    def __init__(self, layers: list[Layer], outputs: list[str], shapes: dict[str, Shape]):
        self.layers, self.outputs, self.shapes = list(layers), list(outputs), shapes

    def _by_name(self, name: str) -> Layer | None:
        return next((x for x in self.layers if x.name == name), None)

    def _source(self, layer: Layer | None) -> Layer | None:
        """The one layer that ``layer`` reads, where only ``layer`` reads it and it is no output."""
        if layer is None or len(layer.inputs) != 1:
            return None
        source = self._by_name(layer.inputs[0])
        if source is None or source.name in self.outputs or self._readers(source.name) != [layer]:
            return None
        return source

    def _readers(self, name: str) -> list[Layer]:
        return [x for x in self.layers if name in x.inputs]

    def _replace(self, gone: list[Layer], new: Layer, instead_of: str) -> None:
        """``new`` in place of the last of ``gone``; what read ``instead_of`` reads ``new``."""
        at = self.layers.index(gone[-1])
        self.layers[at] = new
        self.layers = [x for x in self.layers if all(x is not g for g in gone[:-1])]
        for x in self.layers:
            x.inputs = [new.name if i == instead_of else i for i in x.inputs]
        self.outputs = [new.name if o == instead_of else o for o in self.outputs]

    def bias(self, einsum: Layer) -> None:
        node, ones = einsum.name, self._source(einsum)
        if node in self.outputs or not _ones(ones) or not _named(ones, node, "_ones"):
            return
        assert ones is not None
        x = ones.inputs[0]
        readers = self._readers(node)
        if len(readers) != 1 or readers[0].kind != "add" or readers[0].inputs != [x, node]:
            return
        add = readers[0]
        shape = self.shapes.get(einsum.name)
        if not _named(add, node, "_add") or shape is None:
            return
        letters = LETTERS[: len(shape) + 1]  # the batch axis first
        # of a vector, both are one equation: per channel, as the backend writes it
        per = {
            f"{letters},{letters[1:]}->{letters}": "position",
            f"{letters},{letters[-1]}->{letters}": "channel",
        }
        args = einsum.args
        kernel = (shape[-1],) if per.get(args["equation"]) == "channel" else shape
        if (
            args["equation"] not in per
            or list(args["output_shape"]) != list(shape)
            or args["bias_axes"] is not None
            or args["activation"] not in (None, "linear")
            or args["lora_rank"]
            or [w.shape for w in einsum.weights] != [kernel]
        ):
            return
        bias = Layer("bias", {"per": per[args["equation"]]}, node, [x], einsum.weights, einsum.origin)
        self._replace([ones, einsum, add], bias, add.name)

    def pool(self, divide: Layer) -> None:
        if len(divide.inputs) != 2:
            return
        total, share = (self._by_name(name) for name in divide.inputs)
        found = re.fullmatch(r"(.+)_sum(_\d+)?", total.name) if total is not None else None
        if (
            total is None
            or share is None
            or found is None
            or total.kind not in PADS
            or share.kind != total.kind
        ):
            return
        node, kind = found.group(1), total.kind
        pad, ones_pad = self._source(total), self._source(share)
        ones = self._source(ones_pad)
        pieces = [(pad, "_pad"), (total, "_sum"), (ones, "_ones"), (ones_pad, "_ones_pad"), (share, "_share")]
        if (
            any(not _named(piece, node, suffix) for piece, suffix in pieces)
            or any(self._readers(name) != [divide] for name in divide.inputs)
            or total.name in self.outputs
            or share.name in self.outputs
            or self._by_name(node) is not None
            or not _ones(ones)
        ):
            return
        assert pad is not None and ones_pad is not None and ones is not None
        x = pad.inputs[0]
        shape = self.shapes.get(pad.name)
        if (
            ones.inputs != [x]
            or shape is None
            or pad.kind != PADS[kind]
            or ones_pad.kind != pad.kind
            or ones_pad.args != pad.args
            or share.args != total.args
            or set(total.args) - {"pool", "strides", "padding"}
            or total.args.get("padding", "valid") != "valid"
        ):
            return
        pool = [int(k) for k in _axes(total.args["pool"])]
        strides = [int(s) for s in _axes(total.args.get("strides", pool))]
        amounts = pad.args["padding"]
        amounts = [amounts] if kind == "avgpool1d" else amounts
        same = [same_padding(n, k, s) for n, k, s in zip(shape, pool, strides)]
        if len(pool) != len(shape) - 1 or [tuple(int(a) for a in p) for p in amounts] != same:
            return
        args = (
            {"pool": pool[0], "strides": strides[0], "padding": "same"}
            if kind == "avgpool1d"
            else {"pool": pool, "strides": strides, "padding": "same"}
        )
        new = Layer(kind, args, node, [x], [], total.origin)
        self._replace([pad, total, ones, ones_pad, share, divide], new, divide.name)


def _axes(value: int | list[int]) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
