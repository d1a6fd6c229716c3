"""Importing torch modules with torch.fx: specdsl's own torch models of every layer case and example, and a module
written as people write them, import with torch's counts (batch norms' running statistics as Keras counts them)
and, with the weights carried over, torch's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from import_helpers import TinyNet, Untraceable, WithUpsample
from import_support import examples, inputs, randomize_torch, torch_out
from layer_cases import all_cases

import specdsl
import specdsl.weights as W
from specdsl.errors import SourceError
from specdsl.importers import import_model, imported_kinds

MAPPED = imported_kinds("torch")


def _kinds(spec):
    return {node.kind for node in specdsl.check(spec).layers}


# the cases of the kinds torch.fx imports; those of the other kinds are refused by name
CASES = [pytest.param(spec, id=tid) for tid, _, spec in all_cases() if _kinds(spec) <= MAPPED]
UNMAPPED = [pytest.param(spec, id=tid) for tid, kind, spec in all_cases() if kind not in MAPPED]


def _same_function(plan, source, imported):
    x = inputs(plan.input_shape)
    model = W.set_arrays(specdsl.build(imported.plan, "torch"), imported.plan, imported.weights())
    want = torch_out(source, x)
    np.testing.assert_allclose(
        torch_out(model, x), want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max()))
    )


@pytest.mark.parametrize("spec", CASES)
def test_every_layer_case_of_the_torch_backend_imports(spec):
    plan = specdsl.check(spec)
    source = specdsl.build(plan, "torch")
    randomize_torch(source)
    imported = import_model(source)
    assert [(n.kind, n.shape, n.trainable, n.non_trainable) for n in imported.plan.nodes] == [
        (n.kind, n.shape, n.trainable, n.non_trainable) for n in plan.nodes
    ]
    _same_function(plan, source, imported)


@pytest.mark.parametrize("spec", UNMAPPED)
def test_a_module_of_a_kind_the_importer_does_not_map_is_refused_by_name(spec):
    plan = specdsl.check(spec)
    source = specdsl.build(plan, "torch")
    attr = source.names[plan.layers[-1].name]
    module = source.get_submodule(attr)
    with pytest.raises(SourceError) as e:
        import_model(source)
    # a module torch.fx keeps whole is named with its class; one it traces through, by what it calls inside
    message = str(e.value)
    assert f"module `{attr}` ({type(module).__name__})" in message or f" in `{attr}`)" in message, message
    assert "has no equivalent in the spec language" in message


@pytest.mark.parametrize("path", examples())
def test_every_example_imports_from_its_torch_model(path):
    plan = specdsl.check(path)
    source = specdsl.build(plan, "torch")
    randomize_torch(source)
    imported = import_model(source)
    assert (imported.plan.params, imported.plan.trainable, imported.plan.non_trainable) == (
        plan.params,
        plan.trainable,
        plan.non_trainable,
    )
    assert imported.plan.output_shapes == plan.output_shapes
    _same_function(plan, source, imported)


def test_a_module_as_people_write_it():
    source = TinyNet()
    randomize_torch(source)
    imported = import_model(source, input_shape=(3, 16, 16))
    assert source.training  # traced in eval mode, its mode given back
    assert imported.text == (
        "name: TinyNet\n"
        "description: Imported from TinyNet.\n"
        "input: [16, 16, 3]\n"
        "layers:\n"
        "  - conv2d: {filters: 8, kernel: 3, padding: same, use_bias: false, name: stem_0}\n"
        "  - batchnorm: {momentum: 0.9, epsilon: 1.0e-05, name: stem_1}\n"
        "  - activation: {function: relu, name: stem_2}\n"
        "  - zero_padding2d: {name: pool_pad}\n"
        "  - maxpool2d: {pool: 3, strides: 2, name: pool}\n"
        "  - conv2d: {filters: 8, kernel: 3, padding: same, activation: relu, name: conv1}\n"
        "  - conv2d: {filters: 8, kernel: 3, padding: same, name: conv2}\n"
        "  - add: {inputs: [pool, conv2]}\n"
        "  - activation: {function: relu, name: relu_1}\n"
        "  - global_avgpool2d: {name: avg}\n"
        "  - dropout: {rate: 0.25, name: drop}\n"
        "  - dense: {units: 5, name: fc}\n"
    )
    trainable = sum(p.numel() for p in source.parameters())
    assert (imported.plan.params, imported.plan.trainable) == (trainable + 16, trainable) == (1_461, 1_445)
    x = inputs((16, 16, 3))
    model = W.set_arrays(specdsl.build(imported.plan, "torch"), imported.plan, imported.weights())
    np.testing.assert_allclose(torch_out(model, x), torch_out(source, x), rtol=1e-5, atol=1e-5)


def test_modules_that_do_not_import():
    with pytest.raises(SourceError) as e:
        import_model(TinyNet())
    assert str(e.value) == (
        "TinyNet: importing the torch module `TinyNet` needs its input shape. Give it in torch's layout without the "
        "batch axis: --input-shape 3,224,224."
    )
    with pytest.raises(SourceError) as e:
        import_model(Untraceable(), input_shape=(4,))
    assert str(e.value).startswith(
        "Untraceable: torch.fx cannot trace `Untraceable`: TraceError: symbolically traced variables cannot be used "
        "as inputs to control flow torch.fx traces a forward without control flow"
    )
    with pytest.raises(SourceError) as e:
        import_model(WithUpsample(), input_shape=(3, 8, 8))
    assert str(e.value).startswith(
        "WithUpsample: module `up` (Upsample); method `mean` (`mean`) over every axis have no equivalent"
    )
    with pytest.raises(SourceError) as e:
        import_model(TinyNet(), input_shape=(4, 16, 16))
    assert str(e.value).startswith(
        "TinyNet: running the module on an input of (2, 4, 16, 16) failed: RuntimeError:"
    )


def test_a_frozen_parameter_is_noted():
    source = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    source[0].bias.requires_grad_(False)
    imported = import_model(source, input_shape=(4,))
    assert imported.notes == ["1 parameter(s) are frozen in the source; the spec counts them as trainable."]
    assert imported.text.split("layers:\n")[1] == "  - dense: {units: 3, activation: relu, name: _0}\n"
