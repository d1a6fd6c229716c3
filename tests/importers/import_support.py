"""What the import tests share: random weights that matter, and the outputs of each kind of model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from support import example_files

import specdsl

BIG = 5_000_000  # parameters above which an example's round trip is marked slow


def examples():
    """Every example as a test parameter, the big ones marked slow."""
    params = []
    for path in example_files():
        plan = specdsl.check(path)
        params.append(pytest.param(path, marks=[pytest.mark.slow] if plan.params > BIG else [], id=path.stem))
    return params


def randomize_keras(model, seed: int = 0) -> None:
    """Every weight random (moving variances positive), so that a weight put in the wrong place shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        names = [w.name for w in layer.weights]
        layer.set_weights(
            [
                (0.5 + rng.random(w.shape) if "variance" in n else 0.3 * rng.standard_normal(w.shape)).astype(
                    w.dtype
                )
                for n, w in zip(names, weights)
            ]
        )


def randomize_torch(model, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if t.is_floating_point():
                t.copy_(
                    0.5 + torch.rand(t.shape, generator=gen)
                    if "running_var" in name
                    else 0.3 * torch.randn(t.shape, generator=gen)
                )


def keras_out(model, x: np.ndarray) -> np.ndarray:
    """A Keras model's output; several outputs flattened side by side."""
    out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        return np.concatenate([keras.ops.convert_to_numpy(o).reshape(len(x), -1) for o in out], axis=1)
    return keras.ops.convert_to_numpy(out)


def torch_out(model, x: np.ndarray) -> np.ndarray:
    """A torch model's output for channels-last ``x``, channels-last."""
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)) if x.ndim > 2 else x)
        y = model.eval()(t).numpy()
    return np.moveaxis(y, 1, -1) if y.ndim > 2 else y


def inputs(shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, *shape)).astype("float32")
