"""Folds: what a spec writes as one layer. A conv's or dense layer's activation and per-channel bias join it
(Conv -> Relu, MatMul -> Add), two rescalings are one, and a depthwise conv followed by a 1x1 conv is one separable
conv; a layer folds into the one before when that one has no other reader.
"""

from __future__ import annotations

from ._graph import Layer

FOLD_ACT = {"conv2d", "conv1d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose", "dense"}


def fold(layers: list[Layer], outputs: list[str]) -> list[Layer]:
    """The layers with every fold made, until none is left; ``outputs`` follow the layers folded into others."""
    layers = list(layers)
    changed = True
    while changed:
        changed = False
        readers: dict[str, list[Layer]] = {}
        for layer in layers:
            for name in layer.inputs:
                readers.setdefault(name, []).append(layer)
        by_name = {layer.name: layer for layer in layers}
        for layer in layers:
            users = readers.get(layer.name, [])
            if len(users) != 1 or layer.name in outputs:
                continue
            nxt = users[0]
            merged = _merge(layer, nxt)
            if merged is None:
                continue
            # `layer` becomes the merged layer under its own name; `nxt` goes, its readers read `layer`
            by_name[layer.name] = merged
            for other in layers:
                other.inputs = [layer.name if i == nxt.name else i for i in other.inputs]
            outputs[:] = [layer.name if o == nxt.name else o for o in outputs]
            layers = [merged if x is layer else x for x in layers if x is not nxt]
            changed = True
            break
    return layers


def _merge(a: Layer, b: Layer) -> Layer | None:
    """One layer doing what ``a`` then ``b`` do, or None."""
    if b.inputs != [a.name]:
        return None
    if (
        a.kind in FOLD_ACT
        and b.kind == "activation"
        and a.args.get("activation") in (None, "linear")
        and b.args.get("negative_slope", 0.2 if b.args["function"] == "leaky_relu" else None) in (None, 0.2)
    ):
        return Layer(
            a.kind, {**a.args, "activation": b.args["function"]}, a.name, a.inputs, a.weights, a.origin
        )
    if (
        a.kind in FOLD_ACT
        and b.kind == "bias"
        and b.args.get("per") == "channel"
        and not a.args.get("use_bias", True)
        and a.args.get("activation") in (None, "linear")
    ):
        return Layer(
            a.kind, {**a.args, "use_bias": True}, a.name, a.inputs, [*a.weights, *b.weights], a.origin
        )
    if (
        a.kind == "rescaling"
        and b.kind == "rescaling"
        and a.args.get("offset", 0) == 0
        and b.args.get("scale") == 1.0
    ):
        return Layer(
            "rescaling",
            {"scale": a.args["scale"], "offset": b.args.get("offset", 0.0)},
            a.name,
            a.inputs,
            [],
            a.origin,
        )
    if (
        a.kind == "depthwise_conv2d"
        and b.kind == "conv2d"
        and not a.args.get("use_bias")
        and a.args.get("activation") in (None, "linear")
        and b.args["kernel"] == [1, 1]
        and b.args["strides"] == [1, 1]
        and b.args.get("groups", 1) == 1
        and b.args["padding"] == "valid"
        and b.args["dilation"] == [1, 1]
    ):
        args = {k: a.args[k] for k in ("kernel", "strides", "padding", "dilation", "depth_multiplier")}
        args.update(filters=b.args["filters"], use_bias=b.args["use_bias"])
        if b.args.get("activation"):
            args["activation"] = b.args["activation"]
        return Layer("separable_conv2d", args, a.name, a.inputs, [a.weights[0], *b.weights], a.origin)
    return None
