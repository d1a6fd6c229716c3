"""The private Keras names importing relies on (specdsl/_compat/_keras.py) still exist: a Keras upgrade
that changes them fails here, naming the version, rather than somewhere inside an import."""

from __future__ import annotations

import keras
import pytest

from specdsl._compat import _keras as K


def _model():
    inp = keras.Input((4,))
    inner = keras.Sequential([keras.layers.Dense(3)], name="inner")
    return keras.Model(inp, keras.layers.Dense(2)(inner(inp)))


def test_the_functional_graph_is_reachable():
    model = _model()
    graph = K.functional(model)
    assert graph is model, f"keras {keras.__version__}: a functional model is no longer its own graph"
    sequential = model.get_layer("inner")
    inner = K.functional(sequential)
    assert inner is not None and hasattr(inner, "operations"), (
        f"keras {keras.__version__}: Sequential._functional is gone"
    )
    dense = model.layers[-1]
    (node,) = K.calls(dense)
    assert [tuple(t.shape) for t in K.node_inputs(node)] == [(None, 3)], (
        f"keras {keras.__version__}: Node.input_tensors changed"
    )
    assert [tuple(t.shape) for t in K.node_outputs(node)] == [(None, 2)], (
        f"keras {keras.__version__}: Node.output_tensors changed"
    )
    assert K.functional(keras.Sequential([keras.layers.Dense(2)])) is None  # never built


def test_a_tensor_names_the_layer_that_made_it():
    model = _model()
    assert K.producer_name(model.inputs[0]) == model.layers[0].name, (
        f"keras {keras.__version__}: KerasTensor._keras_history changed"
    )
    assert K.producer_name(model.outputs[0]) == model.layers[-1].name
    assert K.producer_name(object()) is None


def test_safe_mode_refuses_a_lambda(tmp_path):
    inp = keras.Input((4,))
    path = tmp_path / "lambda.h5"
    keras.Model(inp, keras.layers.Lambda(lambda t: t + 1)(inp)).save(path)
    with K.safe_mode(), pytest.raises(ValueError, match="Lambda"):
        keras.saving.load_model(path, compile=False)
