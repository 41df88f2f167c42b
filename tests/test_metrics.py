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
