"""The PyTorch backend: a plan as an ``nn.Module``, as standalone source, or as an exported file.

    >>> import specdsl
    >>> from specdsl.backends import get_backend
    >>> torch_backend = get_backend("torch")
    >>> plan = specdsl.check("examples/lenet5.yaml")
    >>> model = torch_backend.build(plan)              # nn.Module; input (N, 1, 32, 32), channels first
    >>> text = torch_backend.source(plan)              # Python that imports only torch
    >>> torch_backend.export(plan, "out/", "onnx")     # out/lenet5.onnx, checked and run back
    >>> torch_backend.export(plan, "nhwc.onnx", "onnx", layout="nhwc")  # input (N, 32, 32, 1), as Keras'

Every layer kind has one builder in ``BUILDERS`` (``_builders.py``); the model matches the plan exactly: each
node's output shape (channels moved first), ``sum(p.numel() for p in model.parameters()) == plan.trainable`` and
BatchNorm's running mean and variance (the buffers Keras counts as non-trainable) ``== plan.non_trainable``.
Keras semantics are kept where torch differs: 'same' padding with the odd pixel after, average pooling that leaves
padding out of the mean, flatten/reshape/dense in channels-last order, BatchNorm momentum ``1 - keras momentum``,
transposed convolutions cropped as TensorFlow/JAX do.
"""

from . import _modules as modules  # the modules beyond torch.nn its models are made of
from ._builders import BUILDERS, build_node, register_builder
from ._builders import _transpose_axis as transpose_axis
from ._built import AS_IS, Built, Layout, ModuleCall, call
from ._export import FORMATS, LAYOUTS, ChannelsLast, channels_last, example_input, export
from ._model import SpecModel, attribute_names, build, torch_shape
from ._source import class_name, source

__all__ = [
    "AS_IS",
    "BUILDERS",
    "FORMATS",
    "LAYOUTS",
    "Built",
    "ChannelsLast",
    "Layout",
    "ModuleCall",
    "SpecModel",
    "attribute_names",
    "build",
    "build_node",
    "call",
    "channels_last",
    "class_name",
    "example_input",
    "export",
    "modules",
    "register_builder",
    "source",
    "torch_shape",
    "transpose_axis",
]
