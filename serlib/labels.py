"""Label schemes: how each corpus's own emotion labels map onto the classes a model learns.

Cross-corpus numbers only mean something when both corpora are mapped onto the same classes, so every
mapping is an explicit table here, one per corpus and scheme, printed in notebook 01.

- ``4class``: angry, happy, neutral, sad. The standard for cross-corpus SER (IEMOCAP's ``exc`` is
  merged into happy, as is usual); everything else, including RAVDESS calm, is dropped.
- ``seed5``: the five classes of the study this course reproduces (angry, frustrated, happy, neutral,
  sad) with its RAVDESS mapping (calm -> neutral, fearful and disgust -> frustrated, surprised -> happy)
  and the analogous mapping for the other corpora. Kept to reproduce it and to show why it is a
  problem: "frustrated" in IEMOCAP is not fear or disgust in an acted corpus.
- ``native``: the corpus's own labels, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from serlib.errors import UserError

SCHEMES = ("4class", "seed5", "native")

FOUR_CLASS = {
    "iemocap": {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"},
    "ravdess": {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"},
    "emodb": {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"},
    "cremad": {"anger": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"},
    "tess": {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"},
    "savee": {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"},
}

SEED5 = {
    "iemocap": {**FOUR_CLASS["iemocap"], "fru": "frustrated"},
    "ravdess": {
        **FOUR_CLASS["ravdess"],
        "calm": "neutral",
        "fearful": "frustrated",
        "disgust": "frustrated",
        "surprised": "happy",
    },
    "emodb": {
        **FOUR_CLASS["emodb"],
        "boredom": "neutral",
        "fear": "frustrated",
        "disgust": "frustrated",
    },
    "cremad": {**FOUR_CLASS["cremad"], "fear": "frustrated", "disgust": "frustrated"},
    "tess": {
        **FOUR_CLASS["tess"],
        "fear": "frustrated",
        "disgust": "frustrated",
        "pleasant_surprise": "happy",
    },
    "savee": {
        **FOUR_CLASS["savee"],
        "fear": "frustrated",
        "disgust": "frustrated",
        "surprise": "happy",
    },
}

NATIVE_LABELS = {
    "iemocap": ("ang", "dis", "exc", "fea", "fru", "hap", "neu", "oth", "sad", "sur", "xxx"),
    "ravdess": ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"),
    "emodb": ("anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"),
    "cremad": ("anger", "disgust", "fear", "happy", "neutral", "sad"),
    "tess": ("angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad"),
    "savee": ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
}
"""Every label each corpus can carry, so that a mapping table can show what it drops."""


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` if known, else raise a one-line UserError."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown label scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return scheme


def label_mapping(scheme: str, corpus: str) -> dict[str, str]:
    """Native label -> scheme label for one corpus; labels missing from the dict are dropped."""
    check_scheme(scheme)
    if corpus not in NATIVE_LABELS:
        raise UserError(
            f"no label mapping for corpus {corpus!r}; choose one of {', '.join(NATIVE_LABELS)}"
        )
    if scheme == "native":
        return {label: label for label in NATIVE_LABELS[corpus]}
    return dict((FOUR_CLASS if scheme == "4class" else SEED5)[corpus])


def scheme_labels(scheme: str, corpus: str | None = None) -> list[str]:
    """The sorted class names of a scheme (for ``native``, of that corpus)."""
    check_scheme(scheme)
    if scheme == "native":
        if corpus is None:
            raise ValueError("the native scheme's classes depend on the corpus: pass corpus=...")
        return sorted(label_mapping(scheme, corpus))  # raises a clear error for unknown corpora
    table = FOUR_CLASS if scheme == "4class" else SEED5
    return sorted({label for mapping in table.values() for label in mapping.values()})


def mapping_table(scheme: str, corpus: str) -> pd.DataFrame:
    """Every native label of a corpus beside its scheme label (or "(dropped)"), for teaching."""
    mapping = label_mapping(scheme, corpus)
    return pd.DataFrame(
        {
            "native": list(NATIVE_LABELS[corpus]),
            scheme: [mapping.get(label, "(dropped)") for label in NATIVE_LABELS[corpus]],
        }
    )


def apply_scheme(table: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """Add a ``label`` column in ``scheme``'s classes and drop the rows it does not map.

    The table may mix corpora (its ``corpus`` column says which mapping applies to each row).
    """
    check_scheme(scheme)
    labels = pd.Series(index=table.index, dtype=object)
    for corpus, rows in table.groupby("corpus", sort=False):
        labels.loc[rows.index] = rows["emotion"].map(label_mapping(scheme, corpus))
    mapped = table.assign(label=labels)
    return mapped[mapped["label"].notna()].reset_index(drop=True)


def dropped_counts(table: pd.DataFrame, scheme: str) -> dict[str, int]:
    """How many utterances of each native label ``scheme`` drops (for reports, never silent)."""
    check_scheme(scheme)
    counts: dict[str, int] = {}
    for corpus, rows in table.groupby("corpus", sort=False):
        mapping = label_mapping(scheme, corpus)
        for label, n in (
            rows.loc[~rows["emotion"].isin(list(mapping)), "emotion"].value_counts().items()
        ):
            counts[label] = counts.get(label, 0) + int(n)
    return dict(sorted(counts.items()))


def require_classes(mapped: pd.DataFrame, classes: Sequence[str], where: str) -> None:
    """Raise a one-line UserError if a class of ``classes`` has no clip in ``mapped``.

    A class without clips cannot be learnt, and a score over it means nothing; it happens when a
    scheme maps a class from labels the corpus folder lacks (a partial copy, the wrong folder).
    ``mapped`` is a table with a ``label`` column (``apply_scheme``'s output); ``where`` says which
    corpus and scheme, for the message.
    """
    counts = mapped["label"].value_counts() if "label" in mapped else pd.Series(dtype=int)
    empty = [label for label in classes if counts.get(label, 0) == 0]
    if empty:
        found = ", ".join(f"{label} {int(counts.get(label, 0))}" for label in classes)
        raise UserError(
            f"{where}: no clip of class {', '.join(empty)} (clips per class: {found}); a model "
            "cannot learn or be scored on a class without clips: check --root, or use another "
            "--scheme"
        )
