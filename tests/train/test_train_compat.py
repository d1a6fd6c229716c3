"""check_compatible: the static checks of train:/data: against the model, with their exact messages and places."""

from __future__ import annotations

import pytest
from train_fixtures import DIGITS_SPEC, digits_plan

import specdsl
from specdsl.data import Dataset
from specdsl.errors import DataError, SpecError
from specdsl.spec import DataSpec, TrainSpec
from specdsl.train import check_compatible, output_activation

LAYERS = DIGITS_SPEC["layers"]


def head(units: int, activation: str | None = None) -> list:
    dense = {"units": units, **({"activation": activation} if activation else {})}
    return LAYERS[:-1] + [{"dense": dense}]


def error(tmp_path, **sections) -> SpecError:
    """The error check_compatible raises for the digits spec with ``sections`` changed (its own train: and data:)."""
    plan = digits_plan(tmp_path, **sections)
    with pytest.raises(specdsl.SpecdslError) as info:
        check_compatible(plan)
    return info.value


def test_the_digits_spec_and_the_examples_pass(tmp_path):
    check_compatible(digits_plan(tmp_path))
    check_compatible(specdsl.check("examples/mnist_cnn.yaml"))
    check_compatible(specdsl.check("examples/catsdogs_simple.yaml"))  # one sigmoid unit, binary_crossentropy


def test_categorical_loss_with_one_sigmoid_unit(tmp_path):
    e = error(tmp_path, layers=head(1, "sigmoid"), train={"loss": "categorical_crossentropy"})
    assert type(e) is SpecError
    assert str(e) == (
        f"{tmp_path}/digits.yaml:17:3: layers[4] (dense): loss categorical_crossentropy needs a softmax output with "
        "one unit per class, but this layer gives 1 unit with sigmoid. For two classes use loss: binary_crossentropy "
        "with this layer, or end with dense: {units: 2, activation: softmax}."
    )
    assert (e.loc.line, e.loc.col, e.path) == (17, 3, "layers[4] (dense)")


def test_binary_loss_with_two_softmax_units(tmp_path):
    e = error(tmp_path, layers=head(2, "softmax"), train={"loss": "binary_crossentropy"})
    assert e.message == (
        "loss binary_crossentropy needs one sigmoid unit (the probability of class 1), but this layer gives 2 units "
        "with softmax."
    )
    assert e.hint == (
        "Use loss: sparse_categorical_crossentropy with a softmax output, or end with "
        "dense: {units: 1, activation: sigmoid}."
    )


def test_output_without_activation(tmp_path):
    e = error(tmp_path, layers=head(10))
    assert e.message == (
        "loss sparse_categorical_crossentropy needs a softmax output with one unit per class, but this layer gives "
        "10 units with no activation (linear)."
    )
    assert (
        e.hint == "Add activation: softmax to it (the loss takes probabilities, as Keras' from_logits=False)."
    )


def test_softmax_over_one_unit(tmp_path):
    e = error(tmp_path, layers=head(1, "softmax"))
    assert e.message == (
        "loss sparse_categorical_crossentropy needs a softmax output with one unit per class, but this layer's "
        "softmax has 1 unit, which always outputs 1.0."
    )


def test_units_must_equal_the_dataset_classes(tmp_path):
    e = error(tmp_path, layers=head(5, "softmax"))
    assert type(e) is DataError
    assert str(e) == (
        f"{tmp_path}/digits.yaml:17:3: layers[4] (dense): loss sparse_categorical_crossentropy needs one output unit "
        "per class, but this layer has 5 units and the dataset `digits` has 10 classes. Set units: 10 in this layer."
    )


def test_binary_loss_on_ten_classes(tmp_path):
    e = error(tmp_path, layers=head(1, "sigmoid"), train={"loss": "binary_crossentropy"})
    assert type(e) is DataError
    assert e.message == "loss binary_crossentropy is for two classes, but the dataset `digits` has 10."
    assert e.hint == (
        "Use loss: sparse_categorical_crossentropy and end with dense: {units: 10, activation: softmax}."
    )


def test_output_must_be_a_vector(tmp_path):
    e = error(tmp_path, layers=LAYERS[:2])
    assert str(e) == (
        f"{tmp_path}/digits.yaml:12:3: layers[1] (maxpool2d): a classifier's output must be a vector of class "
        "scores, but this layer gives 4x4x16. End with flatten (or global_avgpool2d) and "
        "dense: {units: N, activation: softmax}."
    )


def test_input_channels_must_be_one_or_three(tmp_path):
    e = error(tmp_path, input=[8, 8, 2])
    assert type(e) is DataError
    assert str(e) == (
        f"{tmp_path}/digits.yaml:3:1: input: the datasets hold images of shape (height, width, 1 or 3 channels), "
        "but the input is 8x8x2. Use `input: [H, W, 1]` for grayscale or `input: [H, W, 3]` for RGB."
    )


def test_monitor_typo_suggests_the_metric(tmp_path):
    e = error(tmp_path, train={"early_stopping": {"monitor": "val_acc"}})
    assert str(e) == (
        f"{tmp_path}/digits.yaml:29:14: train.early_stopping.monitor: must name a metric the run logs (loss, "
        "accuracy, val_loss, val_accuracy), but got `val_acc`. Did you mean `val_accuracy`?"
    )


def test_train_monitor_must_be_logged_and_agree_with_early_stopping(tmp_path):
    e = error(tmp_path, train={"monitor": "val_acc"})
    assert str(e) == (
        f"{tmp_path}/digits.yaml:28:12: train.monitor: must name a metric the run logs (loss, accuracy, val_loss, "
        "val_accuracy), but got `val_acc`. Did you mean `val_accuracy`?"
    )
    e = error(tmp_path, train={"monitor": "val_accuracy", "early_stopping": {"monitor": "val_loss"}})
    assert (e.path, e.message, e.hint) == (
        "train.monitor",
        "is `val_accuracy`, but train.early_stopping.monitor is `val_loss`: one value picks the best epoch and "
        "stops the run.",
        "Drop one of the two (early stopping watches train.monitor when it names none).",
    )
    check_compatible(
        digits_plan(tmp_path, train={"monitor": "val_accuracy", "early_stopping": {"patience": 2}})
    )


def test_validation_monitor_needs_a_validation_split(tmp_path):
    e = error(
        tmp_path,
        data={"split": {"train": 0.8, "test": 0.2}},
        train={"early_stopping": {"monitor": "val_loss"}},
    )
    assert type(e) is DataError
    assert e.message == "`val_loss` needs a validation split, but the dataset `digits` has none."
    assert e.hint == "Monitor `loss`, or give `data.split` a val fraction."


def test_image_size_must_be_the_input_size(tmp_path):
    e = error(tmp_path, data={"image_size": [16, 16]})
    assert (e.path, e.message) == (
        "data.image_size",
        "must be the input's height and width, 8x8, but got 16x16.",
    )


def test_top5_needs_more_than_five_classes(tmp_path):
    e = error(tmp_path, layers=head(4, "softmax"), train={"metrics": ["top5_accuracy"]})
    assert (e.path, e.message) == (
        "train.metrics",
        "top5_accuracy needs more than 5 classes, but the output has 4 units.",
    )


def test_unknown_dataset_is_located_at_its_key(tmp_path):
    e = error(tmp_path, data={"dataset": "digitz"})
    assert type(e) is DataError
    assert (e.loc.line, e.loc.col, e.path) == (21, 12, "data.dataset")
    assert e.hint == "Did you mean `digits`?"


def test_a_loaded_dataset_must_match_the_input(tmp_path, digits):
    plan = digits_plan(tmp_path, input=[8, 8, 3])
    with pytest.raises(DataError) as info:
        check_compatible(plan, None, digits)
    assert str(info.value) == (
        f"{tmp_path}/digits.yaml:3:1: input: the model takes 8x8x3 images, but the dataset `digits` holds 8x8x1 "
        "images. Load it with load_dataset(..., image_size=(8, 8), channels=3), or change `input:`."
    )


def test_sections_given_as_objects_override_the_spec(tmp_path, digits):
    plan = digits_plan(tmp_path, layers=head(1, "sigmoid"), train={"loss": "binary_crossentropy"}, data=None)
    two = Dataset(
        "two",
        digits.x_train[:4],
        digits.y_train[:4] % 2,
        digits.x_val[:2],
        digits.y_val[:2] % 2,
        digits.x_test[:2],
        digits.y_test[:2] % 2,
        ["even", "odd"],
    )
    check_compatible(plan, TrainSpec(loss="binary_crossentropy"), two)
    with pytest.raises(SpecError):
        check_compatible(plan, TrainSpec(), two)
    check_compatible(plan, TrainSpec(loss="binary_crossentropy"), DataSpec(dataset="catsdogs"))


def test_output_activation_looks_through_dropout_and_activation_layers(tmp_path):
    assert output_activation(digits_plan(tmp_path)) == "softmax"
    layers = head(10) + [{"activation": "softmax"}, {"dropout": 0.1}]
    assert output_activation(digits_plan(tmp_path, layers=layers)) == "softmax"
    assert output_activation(digits_plan(tmp_path, layers=head(10, "linear"))) is None


def test_the_data_seed_draws_the_split_and_the_training_seed_does_not(tmp_path):
    """``data.seed`` draws which examples validate and test (as load_dataset's seed does); train.seed leaves them."""
    import numpy as np

    from specdsl.data import load_dataset
    from specdsl.train import load_for

    def drawn(**sections):
        plan = digits_plan(tmp_path, **sections)
        return load_for(plan, plan.spec.data)

    first, again, other = drawn(), drawn(train={"seed": 5}), drawn(data={"seed": 7})
    same = load_dataset("digits", seed=7)
    sizes = [(len(d.y_train), len(d.y_val), len(d.y_test)) for d in (first, again, other)]
    assert sizes == [sizes[0]] * 3
    assert np.array_equal(first.x_test, again.x_test) and np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_test, other.x_test) and not np.array_equal(first.x_val, other.x_val)
    assert np.array_equal(other.x_test, same.x_test) and np.array_equal(other.y_val, same.y_val)


def test_a_data_seed_out_of_range_is_located(tmp_path):
    with pytest.raises(SpecError) as info:
        digits_plan(tmp_path, data={"seed": -1})
    assert str(info.value) == (
        f"{tmp_path}/digits.yaml:22:9: data: `seed`: input should be greater than or equal to 0 (got -1)."
    )
