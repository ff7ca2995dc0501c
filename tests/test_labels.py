"""Label schemes: every mapping names real labels, 4class means the same four classes everywhere."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import FakeCorpus

from serlib.corpora import cremad, emodb, iemocap, load_corpus, ravdess, savee, tess
from serlib.errors import UserError
from serlib.labels import (
    FOUR_CLASS,
    NATIVE_LABELS,
    SCHEMES,
    SEED5,
    apply_scheme,
    check_scheme,
    dropped_counts,
    label_mapping,
    mapping_table,
    require_classes,
    scheme_labels,
)

FOUR = ["angry", "happy", "neutral", "sad"]
LOADER_LABELS = {
    "iemocap": set(iemocap.LABELS),
    "ravdess": set(ravdess.EMOTIONS.values()),
    "emodb": set(emodb.EMOTIONS.values()),
    "cremad": set(cremad.EMOTIONS.values()),
    "tess": set(tess.EMOTIONS.values()),
    "savee": set(savee.EMOTIONS.values()),
}
"""The labels each loader can actually produce: the mapping tables must speak the same words."""


def table_of(corpus: str, emotions: list[str]) -> pd.DataFrame:
    """A minimal corpus table, one row per emotion, with a marker column to follow the rows."""
    return pd.DataFrame(
        {
            "path": [f"/{corpus}/{i}.wav" for i in range(len(emotions))],
            "corpus": corpus,
            "speaker": "s1",
            "gender": "F",
            "group": "s1",
            "emotion": emotions,
            "row": range(len(emotions)),
        }
    )


@pytest.mark.parametrize("corpus", sorted(LOADER_LABELS))
def test_native_labels_are_what_the_loader_produces(corpus: str):
    assert set(NATIVE_LABELS[corpus]) == LOADER_LABELS[corpus]


@pytest.mark.parametrize("corpus", sorted(LOADER_LABELS))
@pytest.mark.parametrize("table", [FOUR_CLASS, SEED5], ids=["4class", "seed5"])
def test_every_mapping_starts_from_a_real_native_label(corpus: str, table: dict):
    """A typo such as 'angry' for CREMA-D's 'anger' would silently drop a whole class."""
    assert set(table[corpus]) <= set(NATIVE_LABELS[corpus])


@pytest.mark.parametrize("corpus", sorted(LOADER_LABELS))
def test_4class_gives_all_four_classes_for_every_corpus(corpus: str):
    assert sorted(set(FOUR_CLASS[corpus].values())) == FOUR
    assert scheme_labels("4class", corpus) == FOUR


@pytest.mark.parametrize("corpus", sorted(LOADER_LABELS))
def test_seed5_gives_all_five_classes_for_every_corpus(corpus: str):
    five = ["angry", "frustrated", "happy", "neutral", "sad"]
    assert sorted(set(SEED5[corpus].values())) == five
    assert scheme_labels("seed5") == five


def test_ravdess_4class_keeps_four_and_drops_calm(ravdess_corpus: FakeCorpus):
    table = load_corpus("ravdess", ravdess_corpus.root).table
    mapped = apply_scheme(table, "4class")
    counts = mapped.groupby("label").size().to_dict()
    assert counts == {label: ravdess_corpus.per_emotion[label] for label in FOUR}
    assert (mapped["label"] == mapped["emotion"]).all()
    assert "calm" not in set(mapped["emotion"])
    dropped = dropped_counts(table, "4class")
    assert dropped == {
        e: ravdess_corpus.per_emotion[e] for e in ("calm", "disgust", "fearful", "surprised")
    }
    assert len(mapped) + sum(dropped.values()) == len(table)


def test_emodb_4class_uses_the_same_four_names(emodb_corpus: FakeCorpus):
    mapped = apply_scheme(load_corpus("emodb", emodb_corpus.root).table, "4class")
    pairs = set(zip(mapped["emotion"], mapped["label"], strict=True))
    assert pairs == {
        ("anger", "angry"),
        ("happiness", "happy"),
        ("neutral", "neutral"),
        ("sadness", "sad"),
    }
    assert len(mapped) == sum(
        emodb_corpus.per_emotion[e] for e in ("anger", "happiness", "neutral", "sadness")
    )


def test_iemocap_4class_merges_excited_into_happy(iemocap_corpus: FakeCorpus):
    mapped = apply_scheme(load_corpus("iemocap", iemocap_corpus.root).table, "4class")
    assert mapped.groupby("label").size().to_dict() == {
        "angry": 5,
        "happy": 10,
        "neutral": 5,
        "sad": 5,
    }
    assert set(mapped.loc[mapped["label"] == "happy", "emotion"]) == {"hap", "exc"}


def test_seed5_is_the_studys_mapping():
    ravdess_table = table_of("ravdess", list(NATIVE_LABELS["ravdess"]))
    mapped = apply_scheme(ravdess_table, "seed5")
    assert dict(zip(mapped["emotion"], mapped["label"], strict=True)) == {
        "angry": "angry",
        "calm": "neutral",
        "disgust": "frustrated",
        "fearful": "frustrated",
        "happy": "happy",
        "neutral": "neutral",
        "sad": "sad",
        "surprised": "happy",
    }
    iemocap_table = table_of("iemocap", list(NATIVE_LABELS["iemocap"]))
    mapped = apply_scheme(iemocap_table, "seed5")
    assert dict(zip(mapped["emotion"], mapped["label"], strict=True)) == {
        "ang": "angry",
        "exc": "happy",
        "fru": "frustrated",
        "hap": "happy",
        "neu": "neutral",
        "sad": "sad",
    }


@pytest.mark.parametrize("corpus", sorted(NATIVE_LABELS))
def test_native_keeps_every_row_unchanged(corpus: str):
    table = table_of(corpus, list(NATIVE_LABELS[corpus]))
    mapped = apply_scheme(table, "native")
    assert (mapped["label"] == table["emotion"]).all() and len(mapped) == len(table)
    assert dropped_counts(table, "native") == {}
    assert scheme_labels("native", corpus) == sorted(NATIVE_LABELS[corpus])


def test_mixed_corpora_are_mapped_row_by_row():
    """EmoDB's 'neutral' and IEMOCAP's 'neu' both become neutral; IEMOCAP 'fru' is dropped by 4class."""
    table = pd.concat(
        [table_of("iemocap", ["neu", "fru", "exc"]), table_of("emodb", ["neutral", "anger"])],
        ignore_index=True,
    )
    mapped = apply_scheme(table, "4class")
    assert mapped[["corpus", "emotion", "label"]].values.tolist() == [
        ["iemocap", "neu", "neutral"],
        ["iemocap", "exc", "happy"],
        ["emodb", "neutral", "neutral"],
        ["emodb", "anger", "angry"],
    ]
    assert dropped_counts(table, "4class") == {"fru": 1}


def test_apply_scheme_keeps_columns_resets_index_and_leaves_the_input_alone():
    table = table_of("ravdess", ["calm", "sad", "angry", "calm"]).set_index(pd.Index([7, 3, 9, 1]))
    before = table.copy()
    mapped = apply_scheme(table, "4class")
    pd.testing.assert_frame_equal(table, before)
    assert list(mapped.index) == [0, 1]
    assert mapped["row"].tolist() == [1, 2]
    assert list(mapped.columns) == [*table.columns, "label"]


def test_empty_table_stays_empty():
    mapped = apply_scheme(table_of("ravdess", []), "4class")
    assert len(mapped) == 0 and "label" in mapped.columns


def test_mapping_table_shows_what_is_dropped():
    shown = mapping_table("4class", "ravdess")
    assert list(shown.columns) == ["native", "4class"]
    assert dict(zip(shown["native"], shown["4class"], strict=True))["calm"] == "(dropped)"
    assert len(shown) == len(NATIVE_LABELS["ravdess"])


def test_label_mapping_returns_a_copy():
    label_mapping("4class", "ravdess")["calm"] = "neutral"
    assert "calm" not in FOUR_CLASS["ravdess"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_known_schemes_pass_the_check(scheme: str):
    assert check_scheme(scheme) == scheme


def test_unknown_scheme_or_corpus_is_one_clear_error():
    with pytest.raises(UserError, match="unknown label scheme '5class'; choose one of 4class"):
        apply_scheme(table_of("ravdess", ["sad"]), "5class")
    with pytest.raises(UserError, match="no label mapping for corpus 'librispeech'; choose one"):
        apply_scheme(table_of("librispeech", ["sad"]), "4class")
    with pytest.raises(ValueError, match="pass corpus=") as caught:
        scheme_labels("native")
    assert not isinstance(caught.value, UserError), "a call without corpus= is a bug in the caller"
    with pytest.raises(UserError, match="no label mapping for corpus 'librispeech'"):
        scheme_labels("native", "librispeech")


def test_require_classes_names_the_empty_class_and_the_counts():
    """A RAVDESS copy without its sad clips leaves 4class's "sad" empty: one clear error."""
    mapped = apply_scheme(table_of("ravdess", ["angry", "happy", "neutral", "calm"]), "4class")
    with pytest.raises(UserError) as caught:
        require_classes(mapped, FOUR, "ravdess at /data/r with scheme 4class")
    message = str(caught.value)
    assert message.startswith("ravdess at /data/r with scheme 4class: no clip of class sad (")
    assert "angry 1, happy 1, neutral 1, sad 0" in message and "\n" not in message
    require_classes(apply_scheme(table_of("ravdess", [*FOUR, "sad"]), "4class"), FOUR, "here")
    with pytest.raises(UserError, match="no clip of class angry, happy, neutral, sad"):
        require_classes(apply_scheme(table_of("ravdess", []), "4class"), FOUR, "here")
