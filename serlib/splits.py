"""Speaker-independent splits: no speaker's voice is ever in both the training and the test data.

A model that has heard a speaker in training recognises the speaker, not only the emotion, and its
test score flatters it. Every split here is made of whole speakers, balanced by gender where it can be,
and ``assert_speaker_disjoint`` checks it.

- ``seed_split``: the study's IEMOCAP split, sessions 1-3 train, 4 validation, 5 test.
- ``leave_one_session_out``: five IEMOCAP folds, each testing on one session (two speakers).
- ``speaker_folds``: k folds over the speakers of any corpus (RAVDESS actors, EmoDB speakers, ...).
- ``speaker_split``: one train/validation/test split over speakers, by fractions.

The constants below are the seed and the shares ``serlib train`` splits with (``serlib.protocol``).
A split the table cannot give (too few speakers or sessions) raises ``serlib.errors.UserError``;
``assert_speaker_disjoint`` guards an invariant of the code and raises ValueError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from serlib.errors import UserError

SPLIT_SEED = 0
"""Speaker splits do not change with the training seed: seeds then measure training variance only."""

TARGET_TEST_FRACTION = 0.5
"""Share of the target speakers held out for testing; the rest are the adaptation speakers."""

SOURCE_TEST_FRACTION, SOURCE_VAL_FRACTION = 0.2, 0.15
"""Speaker shares of test and validation for sources without IEMOCAP sessions."""


@dataclass
class Fold:
    """One speaker-independent split of a table into train, validation and test parts."""

    name: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def speakers(self) -> dict[str, list[str]]:
        """The speakers of each part, for run folders and reports."""
        return {part: sorted(rows["speaker"].unique()) for part, rows in self.as_dict().items()}


def speaker_keys(table: pd.DataFrame) -> set[tuple[str, str]]:
    """(corpus, speaker) pairs, so that speaker "03" of two corpora are not confused."""
    return set(zip(table["corpus"], table["speaker"], strict=True))


def assert_speaker_disjoint(*tables: pd.DataFrame) -> None:
    """Raise ValueError if any speaker appears in more than one of ``tables``."""
    seen: dict[tuple[str, str], int] = {}
    for position, table in enumerate(tables):
        for key in speaker_keys(table):
            if key in seen and seen[key] != position:
                raise ValueError(
                    f"speaker {key[1]} ({key[0]}) is in parts {seen[key]} and {position}: "
                    "the split is not speaker-independent"
                )
            seen[key] = position


def select_speakers(table: pd.DataFrame, speakers: list[str] | set[str]) -> pd.DataFrame:
    """The rows of ``table`` spoken by ``speakers``."""
    return table[table["speaker"].isin(set(speakers))].reset_index(drop=True)


def gender_balanced_order(table: pd.DataFrame, seed: int) -> list[str]:
    """The table's speakers shuffled with ``seed``, alternating genders so any prefix is balanced."""
    genders = table.groupby("speaker")["gender"].first()
    rng = np.random.default_rng(seed)
    queues = []
    for gender in sorted(genders.unique()):
        members = sorted(genders.index[genders == gender])
        queues.append([members[i] for i in rng.permutation(len(members))])
    order = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def make_fold(name: str, table: pd.DataFrame, val: list[str], test: list[str]) -> Fold:
    """A Fold whose val and test parts are the given speakers and whose train part is the rest."""
    held_out = set(val) | set(test)
    fold = Fold(
        name,
        train=table[~table["speaker"].isin(held_out)].reset_index(drop=True),
        val=select_speakers(table, val),
        test=select_speakers(table, test),
    )
    assert_speaker_disjoint(fold.train, fold.val, fold.test)
    return fold


def speaker_split(
    table: pd.DataFrame, test_fraction: float = 0.2, val_fraction: float = 0.1, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Split a table by speakers into train/val/test parts of about the given fractions.

    Each non-zero fraction gets at least one speaker, and at least one speaker is left to train on.
    """
    speakers = gender_balanced_order(table, seed)
    n_test = max(1, round(len(speakers) * test_fraction)) if test_fraction > 0 else 0
    n_val = max(1, round(len(speakers) * val_fraction)) if val_fraction > 0 else 0
    if n_test + n_val >= len(speakers):
        raise UserError(
            f"{len(speakers)} speakers are too few for a train/val/test split "
            f"({n_test} test + {n_val} validation speakers leave none to train on)"
        )
    test, val = speakers[:n_test], speakers[n_test : n_test + n_val]
    return make_fold("speaker_split", table, val, test).as_dict()


def speaker_folds(
    table: pd.DataFrame,
    n_folds: int = 4,
    val_fraction: float = 0.15,
    seed: int = 0,
    train_speakers: int | None = None,
) -> list[Fold]:
    """k speaker-independent folds: each tests on its own speakers and validates on a few others.

    ``train_speakers`` trains each fold on only the first N of its other speakers (a learning
    curve: the test and validation speakers stay those of the full folds); None trains on all.
    """
    speakers = gender_balanced_order(table, seed)
    if not 2 <= n_folds <= len(speakers):
        raise UserError(f"need 2 <= n_folds <= number of speakers ({len(speakers)}), got {n_folds}")
    folds = []
    chunks = np.array_split(np.arange(len(speakers)), n_folds)
    for index, chunk in enumerate(chunks):
        start, end = int(chunk[0]), int(chunk[-1]) + 1
        test = speakers[start:end]
        rest = speakers[end:] + speakers[:start]  # the speakers after the test chunk come first
        n_val = max(1, math.ceil(len(rest) * val_fraction)) if val_fraction > 0 else 0
        if n_val >= len(rest):
            raise UserError(
                f"{len(speakers)} speakers are too few for {n_folds} folds with {n_val} validation "
                "speakers each: none would be left to train on"
            )
        name, part = f"fold{index + 1}", table
        if train_speakers is not None:
            available = len(rest) - n_val
            if not 1 <= train_speakers <= available:
                raise UserError(
                    f"train_speakers must be between 1 and {available} (the training speakers of "
                    f"{name}), got {train_speakers}; None trains on all of them"
                )
            part = select_speakers(table, test + rest[: n_val + train_speakers])
        folds.append(make_fold(name, part, rest[:n_val], test))
    return folds


def sessions_of(table: pd.DataFrame) -> list[int]:
    """The IEMOCAP session numbers in a table (raises if the table has no sessions)."""
    if "session" not in table.columns:
        raise UserError("this split needs IEMOCAP sessions (a 'session' column)")
    return sorted(int(s) for s in table["session"].unique())


def session_fold(name: str, table: pd.DataFrame, val: int, test: int) -> Fold:
    """A Fold that validates on one IEMOCAP session and tests on another."""
    speakers = table.groupby("session")["speaker"].unique()
    return make_fold(name, table, list(speakers.get(val, [])), list(speakers.get(test, [])))


def seed_split(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The study's IEMOCAP split: sessions 1-3 train, session 4 validation, session 5 test."""
    if not {4, 5} <= set(sessions_of(table)):
        raise UserError("the seed split needs IEMOCAP sessions 4 and 5")
    return session_fold("seed_split", table, val=4, test=5).as_dict()


def leave_one_session_out(table: pd.DataFrame) -> list[Fold]:
    """One fold per IEMOCAP session: test on it, validate on the next session, train on the rest."""
    sessions = sessions_of(table)
    if len(sessions) < 3:
        raise UserError("leave-one-session-out needs at least 3 sessions")
    return [
        session_fold(f"session{test}", table, val=sessions[(i + 1) % len(sessions)], test=test)
        for i, test in enumerate(sessions)
    ]
