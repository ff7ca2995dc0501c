"""Splits are speaker-independent on every fold, for many seeds and table shapes, and balanced by gender."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from conftest import FakeCorpus

from serlib.corpora import load_corpus
from serlib.splits import (
    assert_speaker_disjoint,
    leave_one_session_out,
    seed_split,
    speaker_folds,
    speaker_split,
)

SEEDS = range(8)
SHAPES = [(1, 2), (2, 1), (3, 3), (5, 3), (2, 8), (12, 12), (45, 46)]
"""(female, male) speaker counts: tiny, lopsided, RAVDESS-sized and CREMA-D-sized tables."""


def speaker_table(
    n_female: int, n_male: int, seed: int = 0, corpus: str = "ravdess"
) -> pd.DataFrame:
    """A corpus table with 1-6 utterances per speaker (uneven, like real corpora)."""
    rng = np.random.default_rng(seed)
    rows = []
    speakers = [(f"F{i:02d}", "F") for i in range(n_female)]
    speakers += [(f"M{i:02d}", "M") for i in range(n_male)]
    for speaker, gender in speakers:
        for take in range(int(rng.integers(1, 7))):
            rows.append(
                {
                    "path": f"/{corpus}/{speaker}/{take}.wav",
                    "corpus": corpus,
                    "speaker": speaker,
                    "gender": gender,
                    "group": speaker,
                    "emotion": str(rng.choice(["angry", "happy", "neutral", "sad"])),
                }
            )
    return pd.DataFrame(rows)


def session_table(n_sessions: int = 5, seed: int = 0) -> pd.DataFrame:
    """An IEMOCAP-shaped table: one female and one male speaker per session."""
    rng = np.random.default_rng(seed)
    rows = []
    for session, gender in itertools.product(range(1, n_sessions + 1), "FM"):
        speaker = f"Ses{session:02d}{gender}"
        for take in range(int(rng.integers(2, 9))):
            rows.append(
                {
                    "path": f"/iemocap/{speaker}_{take:03d}.wav",
                    "corpus": "iemocap",
                    "speaker": speaker,
                    "gender": gender,
                    "group": f"Ses{session:02d}",
                    "emotion": "neu",
                    "session": session,
                }
            )
    return pd.DataFrame(rows)


def assert_partition(table: pd.DataFrame, parts: dict[str, pd.DataFrame]) -> None:
    """The parts are speaker-disjoint and hold every row of the table exactly once."""
    assert_speaker_disjoint(*parts.values())
    paths = sorted(path for part in parts.values() for path in part["path"])
    assert paths == sorted(table["path"])
    for part in parts.values():
        assert list(part.index) == list(range(len(part)))


def genders_of(part: pd.DataFrame) -> dict[str, int]:
    """How many speakers of each gender a part holds."""
    return part.groupby("gender")["speaker"].nunique().to_dict()


# --- IEMOCAP sessions ---------------------------------------------------------------------------------


def test_seed_split_is_sessions_1_3_then_4_then_5():
    table = session_table()
    parts = seed_split(table)
    assert_partition(table, parts)
    assert {name: sorted(set(part["session"])) for name, part in parts.items()} == {
        "train": [1, 2, 3],
        "val": [4],
        "test": [5],
    }
    assert sorted(set(parts["test"]["speaker"])) == ["Ses05F", "Ses05M"]


def test_seed_split_on_a_scanned_corpus(iemocap_corpus: FakeCorpus):
    table = load_corpus("iemocap", iemocap_corpus.root).table
    parts = seed_split(table)
    assert_partition(table, parts)
    assert {name: len(part) for name, part in parts.items()} == {"train": 24, "val": 8, "test": 8}


def test_seed_split_needs_sessions_4_and_5():
    with pytest.raises(ValueError, match="sessions 4 and 5"):
        seed_split(session_table(n_sessions=4))
    with pytest.raises(ValueError, match="'session' column"):
        seed_split(speaker_table(3, 3))


@pytest.mark.parametrize("n_sessions", [3, 4, 5])
@pytest.mark.parametrize("seed", range(3))
def test_leave_one_session_out_tests_each_session_once(n_sessions: int, seed: int):
    table = session_table(n_sessions, seed)
    folds = leave_one_session_out(table)
    assert [set(fold.test["session"]) for fold in folds] == [{s} for s in range(1, n_sessions + 1)]
    for fold in folds:
        assert_partition(table, fold.as_dict())
        (test,), (val,) = set(fold.test["session"]), set(fold.val["session"])
        assert val != test
        assert set(fold.train["session"]) == set(range(1, n_sessions + 1)) - {test, val}
        assert genders_of(fold.test) == {"F": 1, "M": 1}
    assert [fold.name for fold in folds] == [f"session{s}" for s in range(1, n_sessions + 1)]


def test_leave_one_session_out_needs_three_sessions():
    with pytest.raises(ValueError, match="at least 3 sessions"):
        leave_one_session_out(session_table(n_sessions=2))


# --- speakers of any corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_female", "n_male"), [s for s in SHAPES if sum(s) >= 3])
def test_speaker_split_is_a_speaker_disjoint_partition(n_female: int, n_male: int):
    n_speakers = n_female + n_male
    for seed in SEEDS:
        table = speaker_table(n_female, n_male, seed)
        parts = speaker_split(table, test_fraction=0.2, val_fraction=0.1, seed=seed)
        assert_partition(table, parts)
        counts = {name: part["speaker"].nunique() for name, part in parts.items()}
        assert counts["test"] == max(1, round(n_speakers * 0.2))
        assert counts["val"] == max(1, round(n_speakers * 0.1))
        assert counts["train"] == n_speakers - counts["test"] - counts["val"] >= 1


@pytest.mark.parametrize(("n_female", "n_male"), [(3, 3), (5, 3), (12, 12), (45, 46)])
def test_speaker_split_balances_genders_in_test(n_female: int, n_male: int):
    for seed in SEEDS:
        parts = speaker_split(speaker_table(n_female, n_male, seed), 0.25, 0.15, seed)
        for name in ("test", "val"):
            counts = genders_of(parts[name])
            assert abs(counts.get("F", 0) - counts.get("M", 0)) <= 1, (seed, name, counts)


def test_speaker_split_depends_on_the_seed_only():
    table = speaker_table(12, 12)
    first = speaker_split(table, seed=3)
    again = speaker_split(table.sample(frac=1.0, random_state=0), seed=3)
    assert {k: set(v["speaker"]) for k, v in first.items()} == {
        k: set(v["speaker"]) for k, v in again.items()
    }
    test_sets = {frozenset(speaker_split(table, seed=seed)["test"]["speaker"]) for seed in SEEDS}
    assert len(test_sets) > 1


def test_speaker_split_refuses_too_few_speakers():
    with pytest.raises(ValueError, match="2 speakers are too few"):
        speaker_split(speaker_table(1, 1))


def test_speaker_split_without_validation():
    table = speaker_table(4, 4)
    parts = speaker_split(table, test_fraction=0.25, val_fraction=0.0)
    assert len(parts["val"]) == 0 and parts["test"]["speaker"].nunique() == 2
    assert_partition(table, parts)


@pytest.mark.parametrize(("n_female", "n_male"), [s for s in SHAPES if sum(s) >= 3])
def test_speaker_folds_test_every_speaker_exactly_once(n_female: int, n_male: int):
    n_speakers = n_female + n_male
    for seed, n_folds in itertools.product(SEEDS, range(2, min(n_speakers, 6) + 1)):
        table = speaker_table(n_female, n_male, seed)
        if (
            n_speakers - math.ceil(n_speakers / n_folds) < 2
        ):  # the biggest test part leaves 1 speaker
            with pytest.raises(ValueError, match="none would be left to train on"):
                speaker_folds(table, n_folds=n_folds, seed=seed)
            continue
        folds = speaker_folds(table, n_folds=n_folds, seed=seed)
        assert len(folds) == n_folds
        tested = [speaker for fold in folds for speaker in fold.test["speaker"].unique()]
        assert sorted(tested) == sorted(table["speaker"].unique())
        for fold in folds:
            assert_partition(table, fold.as_dict())
            assert len(fold.train) > 0 and len(fold.val) > 0 and len(fold.test) > 0


@pytest.mark.parametrize("n_per_gender", [3, 4, 12])
def test_speaker_folds_balance_genders_when_the_corpus_is_balanced(n_per_gender: int):
    for seed in SEEDS:
        for fold in speaker_folds(speaker_table(n_per_gender, n_per_gender, seed), 3, seed=seed):
            counts = genders_of(fold.test)
            assert abs(counts.get("F", 0) - counts.get("M", 0)) <= 1, (seed, fold.name, counts)


def test_speaker_folds_on_a_scanned_corpus(ravdess_corpus: FakeCorpus):
    table = load_corpus("ravdess", ravdess_corpus.root).table
    folds = speaker_folds(table, n_folds=4, seed=0)
    assert [len(fold.speakers()["test"]) for fold in folds] == [1, 1, 1, 1]
    for fold in folds:
        assert_partition(table, fold.as_dict())
        assert fold.speakers()["val"] and len(fold.speakers()["train"]) == 2


def test_speaker_folds_on_fewer_training_speakers_drop_training_speakers_only():
    table = speaker_table(6, 6)  # 3 folds: 4 test, 2 validation and 6 training speakers each
    fewer_folds = speaker_folds(table, 3, train_speakers=3)
    for full, fewer in zip(speaker_folds(table, 3), fewer_folds, strict=True):
        before, after = full.speakers(), fewer.speakers()
        assert (after["test"], after["val"]) == (before["test"], before["val"])
        assert len(after["train"]) == 3 and set(after["train"]) < set(before["train"])
    for wrong in (0, 7):
        with pytest.raises(ValueError, match=f"train_speakers must be between 1 and 6 .* {wrong};"):
            speaker_folds(table, 3, train_speakers=wrong)


def test_speaker_folds_refuse_impossible_requests():
    with pytest.raises(ValueError, match="n_folds"):
        speaker_folds(speaker_table(2, 2), n_folds=5)
    with pytest.raises(ValueError, match="n_folds"):
        speaker_folds(speaker_table(2, 2), n_folds=1)
    with pytest.raises(ValueError, match="none would be left to train on"):
        speaker_folds(speaker_table(1, 1), n_folds=2)


# --- the check itself ---------------------------------------------------------------------------------


def test_assert_speaker_disjoint_catches_a_shared_speaker():
    table = speaker_table(3, 3)
    leaky_test = pd.concat([table[table["speaker"] == "F00"], table[table["speaker"] == "M01"]])
    with pytest.raises(ValueError, match="speaker F00 \\(ravdess\\) is in parts 0 and 1"):
        assert_speaker_disjoint(table[table["speaker"] != "M01"], leaky_test)


def test_same_speaker_id_in_two_corpora_is_not_a_leak():
    emodb = speaker_table(1, 0, corpus="emodb")
    cremad = speaker_table(1, 0, corpus="cremad")
    assert_speaker_disjoint(emodb, cremad)
    with pytest.raises(ValueError, match="not speaker-independent"):
        assert_speaker_disjoint(emodb, emodb.iloc[:1])
