"""Scores for emotion classifiers, and a distance between two domains' embeddings.

- **UA** (unweighted accuracy, = balanced accuracy): the mean of the per-class recalls. The headline
  number, because emotion corpora are unbalanced and a model that always answers "neutral" gets a
  high WA on IEMOCAP but only 1/C UA.
- **WA** (weighted accuracy): plain accuracy, the fraction of utterances right.
- **macro-F1**: the mean of the per-class F1 scores.
- **proxy A-distance** (Ben-David et al. 2007): train a linear classifier to tell source embeddings
  from target embeddings; with held-out error e, PAD = 2 (1 - 2 e). 0 means the domains cannot be
  told apart, 2 means perfectly separable. DANN should lower it.

Classes that never occur in the true labels are left out of UA (their recall is undefined), and
classes that occur in neither the true nor the predicted labels are left out of macro-F1; both are
what scikit-learn does, and both are written out here so a student can follow the arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_labels(y_true, y_pred, num_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate two label vectors: same length, non-empty, integers in [0, num_classes)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError("labels must be 1-D arrays of class indices")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("cannot score an empty set of predictions")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices, got dtype {values.dtype}")
        if values.min() < 0:
            raise ValueError(f"{name} holds a negative class index ({values.min()})")
    largest = int(max(y_true.max(), y_pred.max()))
    if num_classes is None:
        num_classes = largest + 1
    elif largest >= num_classes:
        raise ValueError(f"class index {largest} out of range for {num_classes} classes")
    return y_true.astype(np.int64), y_pred.astype(np.int64), num_classes


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts [C, C]: row = true class, column = predicted class."""
    y_true, y_pred, num_classes = _check_labels(y_true, y_pred, num_classes)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def per_class_recall(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal / row sum); NaN for a class with no true examples."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)


def per_class_f1(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class; NaN for a class that is neither true nor predicted anywhere."""
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    denominator = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * true_positive / denominator, np.nan)


def unweighted_accuracy(y_true, y_pred, num_classes: int | None = None) -> float:
    """UA: the mean recall over the classes present in ``y_true``."""
    return float(np.nanmean(per_class_recall(confusion_matrix(y_true, y_pred, num_classes))))


def weighted_accuracy(y_true, y_pred) -> float:
    """WA: the fraction of predictions that are right."""
    y_true, y_pred, _ = _check_labels(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """The mean F1 over the classes present in ``y_true`` or ``y_pred``."""
    return float(np.nanmean(per_class_f1(confusion_matrix(y_true, y_pred, num_classes))))


def classification_report(y_true, y_pred, labels: Sequence[str] | None = None) -> dict[str, object]:
    """All the scores at once, JSON-ready: ua, wa, macro_f1, n, labels, recall, confusion.

    ``labels`` names the classes in index order (it also fixes their number, so a class that never
    appears still gets its row and column in the confusion matrix).
    """
    num_classes = None if labels is None else len(labels)
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    names = list(labels) if labels is not None else [str(i) for i in range(len(confusion))]
    recall = per_class_recall(confusion)
    return {
        "ua": float(np.nanmean(recall)),
        "wa": float(np.trace(confusion) / confusion.sum()),
        "macro_f1": float(np.nanmean(per_class_f1(confusion))),
        "n": int(confusion.sum()),
        "labels": names,
        "recall": {
            name: (None if np.isnan(r) else float(r)) for name, r in zip(names, recall, strict=True)
        },
        "confusion": confusion.tolist(),
    }


def proxy_a_distance(
    source: np.ndarray,
    target: np.ndarray,
    *,
    seed: int = 0,
    test_fraction: float = 0.5,
    max_per_domain: int | None = 2000,
) -> float:
    """Proxy A-distance between two sets of embeddings [N, D]: 2 (1 - 2 e), e a linear probe's error.

    The probe is a standardised logistic regression trained on half of each domain and tested on
    the other half (stratified, seeded). Both domains are subsampled to the same size first, so
    a bigger domain cannot lower the error just by being the majority. The error is capped at 0.5
    (a probe worse than chance says the domains are indistinguishable), so the result is in [0, 2].
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"need two [N, D] arrays with the same D, got {source.shape} and {target.shape}"
        )
    if not (np.isfinite(source).all() and np.isfinite(target).all()):
        raise ValueError("embeddings contain NaN or infinity")
    rng = np.random.default_rng(seed)
    size = min(len(source), len(target))
    if max_per_domain is not None:
        size = min(size, max_per_domain)
    if size < 4:
        raise ValueError(f"need at least 4 embeddings per domain, got {size}")
    source = source[rng.choice(len(source), size, replace=False)]
    target = target[rng.choice(len(target), size, replace=False)]
    features = np.concatenate([source, target])
    domains = np.concatenate([np.zeros(size, dtype=np.int64), np.ones(size, dtype=np.int64)])
    train_x, test_x, train_y, test_y = train_test_split(
        features, domains, test_size=test_fraction, stratify=domains, random_state=seed
    )
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_x, train_y)
    error = min(float(np.mean(probe.predict(test_x) != test_y)), 0.5)
    return 2.0 * (1.0 - 2.0 * error)
