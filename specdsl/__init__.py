"""specdsl: declarative CNN specs, checked statically, compiled to PyTorch and Keras 3, searched with Optuna.

    >>> import specdsl
    >>> p = specdsl.check("examples/cifar10_cnn.yaml")
    >>> p.params, p.trainable, p.non_trainable
    (1345066, 1343146, 1920)

Heavy frameworks (torch, keras, optuna, mlflow) are imported only by the functions that need them.
"""

from __future__ import annotations

import os
from typing import Any

from ._version import __version__
from .errors import (
    BackendError,
    BackendMissingError,
    DataError,
    Loc,
    PluginError,
    SearchError,
    ShapeError,
    SpecdslError,
    SpecError,
    TrainError,
)
from .plan import Plan, plan, summary_text
from .spec import ModelSpec, load

__all__ = [
    "BackendError",
    "BackendMissingError",
    "DataError",
    "PluginError",
    "Loc",
    "ModelSpec",
    "Plan",
    "SearchError",
    "ShapeError",
    "SpecError",
    "SpecdslError",
    "TrainError",
    "__version__",
    "build",
    "check",
    "load",
    "plan",
    "summary_text",
]


def check(source: str | os.PathLike | dict) -> Plan:
    """Load, validate and plan a spec (a path, YAML/JSON text or a mapping); raises a located SpecdslError."""
    return plan(load(source))


def build(source: str | os.PathLike | dict | ModelSpec | Plan, backend: str = "torch", **options: Any) -> Any:
    """Build the model of a spec: ``backend="torch"`` gives an ``nn.Module``, ``"keras"`` a Keras model, with the
    weights its backbones ask for (``- backbone: {spec: vgg16, weights: imagenet}``) loaded."""
    from .backends import get_backend
    from .weights import load_backbones

    if isinstance(source, Plan):
        the_plan = source
    elif isinstance(source, ModelSpec):
        the_plan = plan(source)
    else:
        the_plan = check(source)
    return load_backbones(get_backend(backend).build(the_plan, **options), the_plan)
