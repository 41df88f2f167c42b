"""Classification metrics: predicted classes, labels from every target form, accuracy,
confusion matrix, and which targets count as classes."""

from __future__ import annotations

import numpy as np
import pytest

from purenn.errors import ArgumentError, ShapeError
from purenn.metrics import accuracy, class_labels, class_predictions, confusion_matrix, is_class_target


def test_class_predictions_argmax_or_threshold():
    np.testing.assert_array_equal(class_predictions([[0.1, 0.9], [0.8, 0.2]]), [1, 0])
    np.testing.assert_array_equal(class_predictions([[0.7], [0.3]]), [1, 0])


@pytest.mark.parametrize("targets", [np.array([1, 0, 2]), np.eye(3)[[1, 0, 2]]])
def test_labels_from_integers_or_one_hot_rows(targets):
    np.testing.assert_array_equal(class_labels(targets), [1, 0, 2])


def test_which_targets_are_classes():
    assert is_class_target(np.array([3, 1])) and is_class_target(np.array([[0.0], [1.0]]))
    assert is_class_target(np.array([True, False]))
    assert not is_class_target(np.array([0.5, 1.0]))
    with pytest.raises(ArgumentError, match="class labels must be integers, one-hot rows or 0/1"):
        class_labels(np.array([0.5, 1.0]))


def test_accuracy_and_confusion_matrix():
    y = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert accuracy(y, [0, 1, 1]) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(confusion_matrix(y, [0, 1, 1]), [[1, 0], [1, 1]])
    with pytest.raises(ShapeError, match="3 predictions but 2 labels"):
        accuracy(y, [0, 1])


# ---------------------------------------------------------------- predictions that are labels


def test_one_dimensional_integer_predictions_are_class_labels():
    """The issue's examples: 1-D predictions were thresholded at 0.5 as if they were one output."""
    assert accuracy(np.array([2, 2, 2]), np.array([2, 2, 2])) == 1.0
    assert accuracy(np.array([3, 3]), np.array([1, 1])) == 0.0
    assert accuracy(np.array([0, 3, 1]), np.array([0, 3, 2])) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(class_predictions(np.array([5, 0, 2], dtype=np.uint8)), [5, 0, 2])
    np.testing.assert_array_equal(class_predictions(np.array([True, False])), [1, 0])


def test_confusion_matrix_of_argmax_predictions_equals_that_of_the_outputs():
    outputs = np.random.default_rng(0).standard_normal((60, 4))
    labels = np.random.default_rng(1).integers(0, 4, 60)
    from_outputs = confusion_matrix(outputs, labels)
    assert from_outputs.shape == (4, 4) and from_outputs[:, 2:].sum() > 0  # classes >= 2 predicted
    np.testing.assert_array_equal(confusion_matrix(outputs.argmax(axis=1), labels), from_outputs)
    np.testing.assert_array_equal(confusion_matrix(np.array([2, 1, 2]), np.array([2, 0, 1])),
                                  [[0, 1, 0], [0, 0, 1], [0, 0, 1]])


@pytest.mark.parametrize("who", [class_predictions, lambda p: accuracy(p, [0, 1]),
                                 lambda p: confusion_matrix(p, [0, 1])])
def test_one_dimensional_float_predictions_are_refused_saying_what_to_pass(who):
    with pytest.raises(ArgumentError, match=r"1-D predictions of dtype float64 are ambiguous: for "
                       r"one output per sample, pass them as a column \(y_pred.reshape\(-1, 1\).*"
                       r"for class labels, pass integers"):
        who(np.array([0.2, 0.9]))


@pytest.mark.parametrize("y_pred, message", [
    (np.float64(0.3), r"one row of outputs per sample, got shape \(\)"),
    (np.zeros((3, 0)), r"one row of outputs per sample, got shape \(3, 0\)"),
])
def test_predictions_without_outputs_are_a_shape_error(y_pred, message):
    with pytest.raises(ShapeError, match=message):
        class_predictions(y_pred)


# ---------------------------------------------------------------- the threshold of one output


def test_a_single_output_is_compared_with_the_threshold():
    logits = np.array([[0.3], [-0.2], [0.5], [0.6]])  # two in (0, 0.5]: class 1 as logits
    labels = np.array([1, 0, 1, 1])
    np.testing.assert_array_equal(class_predictions(logits), [0, 0, 0, 1])
    np.testing.assert_array_equal(class_predictions(logits, threshold=0), [1, 0, 1, 1])
    assert accuracy(logits, labels) == 0.5 and accuracy(logits, labels, threshold=0.0) == 1.0
    np.testing.assert_array_equal(confusion_matrix(logits, labels, threshold=0), [[1, 0], [0, 3]])
    # outputs per class and labels do not depend on it
    np.testing.assert_array_equal(class_predictions([[0.1, 0.9]], threshold=5), [1])
    assert accuracy(np.array([2, 1]), [2, 1], threshold=-3) == 1.0


@pytest.mark.parametrize("threshold, error, message", [
    ("0", TypeError, r"`threshold` must be a real number, got '0' of type str"),
    (float("nan"), ValueError, r"`threshold` must be a real number, got nan"),
    (True, TypeError, r"`threshold` must be a real number, got True"),
])
def test_a_threshold_that_is_not_a_finite_number_is_refused(threshold, error, message):
    with pytest.raises(error, match=message):
        accuracy(np.array([[0.2]]), [0], threshold=threshold)
