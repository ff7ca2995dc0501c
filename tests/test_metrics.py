"""UA, WA, macro-F1 and the confusion matrix against hand counts and scikit-learn; the A-distance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from serlib.metrics import (
    classification_report,
    confusion_matrix,
    macro_f1,
    proxy_a_distance,
    unweighted_accuracy,
    weighted_accuracy,
)

Y_TRUE = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]


def test_hand_counted_example():
    """A majority-class guesser: high WA, low UA."""
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[6, 0, 0], [1, 1, 0], [2, 0, 0]]
    assert weighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.7)
    assert unweighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx((1 + 0.5 + 0) / 3)
    f1_0, f1_1, f1_2 = 2 * 6 / (6 + 9), 2 * 1 / (2 + 1), 0.0
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((f1_0 + f1_1 + f1_2) / 3)


def test_agrees_with_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_report_keeps_absent_classes_in_the_matrix_but_out_of_ua():
    report = classification_report([0, 0, 1], [0, 1, 1], labels=["angry", "happy", "sad"])
    assert report["n"] == 3 and report["labels"] == ["angry", "happy", "sad"]
    assert report["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert report["ua"] == pytest.approx(0.75)
    assert report["recall"] == {"angry": 0.5, "happy": 1.0, "sad": None}
    assert report["wa"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1], [0], "has 2 labels"),
        ([], [], "empty"),
        ([0, -1], [0, 0], "negative"),
        ([0.5, 1.0], [0, 1], "integer"),
    ],
)
def test_bad_labels_get_one_clear_error(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        unweighted_accuracy(y_true, y_pred)


def test_class_index_beyond_the_label_names_is_an_error():
    with pytest.raises(ValueError, match="out of range"):
        classification_report([0, 3], [0, 0], labels=["a", "b"])


def test_proxy_a_distance_separates_far_domains_not_equal_ones():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(200, 8))
    assert proxy_a_distance(source, rng.normal(size=(200, 8)), seed=0) < 0.5
    assert proxy_a_distance(source, rng.normal(loc=3.0, size=(300, 8)), seed=0) > 1.9
    with pytest.raises(ValueError, match="same D"):
        proxy_a_distance(source, rng.normal(size=(20, 3)))
    with pytest.raises(ValueError, match="NaN"):
        proxy_a_distance(source, np.full((10, 8), np.nan))
