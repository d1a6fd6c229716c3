"""The Keras 3 backend: a plan -> a functional ``keras.Model``, standalone Keras source, or a saved file.

Keras runs on its **torch** backend by default: importing this package sets ``KERAS_BACKEND=torch`` unless the
environment already names a backend (a user's setting is respected), so TensorFlow is not needed. Set
``KERAS_BACKEND`` before anything imports keras to use another one.

    >>> import specdsl
    >>> model = specdsl.build("examples/lenet5.yaml", backend="keras")
    >>> model.summary()        # one row per plan node, named as in the spec

The model is channels-last (NHWC), as the spec's shapes are. Layers Keras lacks (``bias``, and 'same' average
pooling with uneven padding, where Keras' torch backend deviates) are small custom layers registered under the
``specdsl`` package; ``export(..., "keras")`` writes them as Keras' built-in layers computing the same
(``_portable``), so the ``.keras`` files it writes load with plain ``keras.saving.load_model``, without specdsl.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from ._build import build
from ._builders import BUILDERS, LayerCall, register_builder
from ._custom import Bias, PaddedAveragePooling
from ._export import FORMATS, export
from ._source import source

__all__ = [
    "BUILDERS",
    "FORMATS",
    "Bias",
    "LayerCall",
    "PaddedAveragePooling",
    "build",
    "export",
    "register_builder",
    "source",
]
