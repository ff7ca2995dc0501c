"""EmoBox's protocols as data: its folds for RAVDESS and IEMOCAP, its balanced cross-corpus test
sets, and the numbers its paper published for them.

EmoBox (Ma et al., Interspeech 2024) is the field's common yardstick for speech emotion recognition.
A score can stand beside its tables only when it was measured on the same test clips with the same
classes, so the facts serlib needs were read from EmoBox's repository and are kept as small JSON
files in ``serlib/benchmarks_data/emobox/``, each naming the files and commits it came from:

- ``<corpus>_folds.json``: per fold, EmoBox's test speakers and (RAVDESS) clips per class, and the
  label set: RAVDESS 8 emotions with calm kept (serlib's ``native`` scheme), IEMOCAP 4 classes with
  excited merged into happy (``4class``);
- ``<corpus>_balanced_test.json``: the clips of the cross-corpus track's balanced 4-class test set;
- ``published.json``: EmoBox's published UA for these protocols, and where it was published.

This module turns a corpus on disk into those protocols' tables and says exactly what is missing;
``serlib.emobox_runs`` trains and scores them. Model selection never looks at a test speaker:
``emobox_fold`` takes two validation speakers from the fold's training speakers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serlib.corpora import load_corpus
from serlib.corpora.base import Skip
from serlib.errors import UserError
from serlib.labels import label_mapping, scheme_labels
from serlib.protocol import CorpusRef, labelled_table
from serlib.splits import SPLIT_SEED, Fold, gender_balanced_order, make_fold

DATA_DIR = Path(__file__).resolve().parent / "benchmarks_data" / "emobox"
"""Where the EmoBox fact files live (package data)."""

EMOBOX_CORPORA = ("ravdess", "iemocap")
"""The corpora whose EmoBox folds and balanced test sets serlib has."""

VALIDATION_SPEAKERS = 2
"""Speakers per fold that select the epoch: one of each gender, drawn with ``SPLIT_SEED`` from the
fold's training speakers (EmoBox holds out a random 20 % of the training clips instead)."""

CROSS_SCHEME = "4class"
"""The cross-corpus track's classes: angry, happy, neutral, sad."""


def read_facts(name: str) -> dict:
    """One EmoBox fact file, e.g. ``ravdess_folds.json``."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def check_emobox_corpus(corpus: str) -> str:
    """Return ``corpus`` if serlib has EmoBox's folds and test set for it, else a one-line error."""
    if corpus not in EMOBOX_CORPORA:
        raise UserError(
            f"serlib has EmoBox's folds and balanced test sets for {' and '.join(EMOBOX_CORPORA)} "
            f"only, not {corpus}; pass one of them"
        )
    return corpus


def fold_facts(corpus: str) -> dict:
    """EmoBox's folds of ``corpus``: scheme, label maps, corpus totals and, per fold, the test set."""
    return read_facts(f"{check_emobox_corpus(corpus)}_folds.json")


def emobox_labels(corpus: str) -> list[str]:
    """serlib's names for EmoBox's classes of ``corpus``, sorted as a run orders its classes."""
    return scheme_labels(fold_facts(corpus)["scheme"], corpus)


def expected_totals(facts: dict) -> dict[str, int]:
    """EmoBox's clips per serlib class in the whole corpus (its totals through its label map)."""
    totals: dict[str, int] = {}
    for native, count in facts["emobox_totals"].items():
        label = facts["serlib_labels"][facts["emobox_label_map"][native]]
        totals[label] = totals.get(label, 0) + count
    return dict(sorted(totals.items()))


def label_counts(table: pd.DataFrame) -> dict[str, int]:
    """Clips per class of a labelled table."""
    return {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()}


# ----- the intra-corpus folds ------------------------------------------------------------------


@dataclass
class FoldCheck:
    """Whether the corpus on disk holds one EmoBox fold's test set, and what it lacks."""

    name: str
    test_speakers: list[str]
    missing_speakers: list[str]  # test speakers without a single clip on disk
    found: int  # test clips on disk
    expected: int | None  # EmoBox's test clips (None: not recorded, IEMOCAP)
    differs: bool  # clips per class differ from EmoBox's
    training_speakers: list[str]  # EmoBox's training speakers of the fold
    missing_training: list[str]  # of those, the ones without a clip on disk

    @property
    def complete(self) -> bool:
        """The fold's test set is on disk exactly as EmoBox has it (as far as serlib can count)."""
        return not self.missing_speakers and not self.differs

    def describe(self) -> str:
        """What the fold lacks, in a few words."""
        absent = f" ({', '.join(self.missing_speakers)} absent)" if self.missing_speakers else ""
        if self.expected is None:
            return f"{self.name} lacks test speakers{absent}" if absent else f"{self.name} complete"
        if not self.differs:
            return f"{self.name} complete"
        if self.found <= self.expected:
            return (
                f"{self.name} lacks {self.expected - self.found} of {self.expected} clips{absent}"
            )
        return f"{self.name} has {self.found} test clips where EmoBox has {self.expected}{absent}"


def check_folds(table: pd.DataFrame, facts: dict) -> list[FoldCheck]:
    """Each EmoBox fold checked against the labelled table of the corpus on disk."""
    present = set(table["speaker"])
    every_speaker = sorted(s for fold in facts["folds"] for s in fold["test_speakers"])
    checks = []
    for fold in facts["folds"]:
        test = list(fold["test_speakers"])
        found = label_counts(table[table["speaker"].isin(test)])
        expected = fold["test_counts"]
        training = [s for s in every_speaker if s not in test]
        checks.append(
            FoldCheck(
                name=fold["name"],
                test_speakers=test,
                missing_speakers=[s for s in test if s not in present],
                found=sum(found.values()),
                expected=None if expected is None else sum(expected.values()),
                differs=expected is not None and found != {k: v for k, v in expected.items() if v},
                training_speakers=training,
                missing_training=[s for s in training if s not in present],
            )
        )
    return checks


def totals_gap(table: pd.DataFrame, facts: dict) -> dict[str, int]:
    """Per class, clips on disk minus EmoBox's in the whole corpus (classes that differ only)."""
    found = label_counts(table)
    return {
        label: found.get(label, 0) - n
        for label, n in expected_totals(facts).items()
        if found.get(label, 0) != n
    }


def incomplete_folds_error(ref: CorpusRef, checks: list[FoldCheck]) -> str:
    """The one-line reason EmoBox's folds cannot all run on this folder, and the way out."""
    lacking = ", ".join(c.describe() for c in checks if not c.complete)
    runnable = [c.name for c in checks if c.complete]
    can = f"only {', '.join(runnable)} can run" if runnable else "no fold can run"
    return (
        f"{ref.name} at {ref.root}: EmoBox's test folds are incomplete: {lacking}; {can}: pass "
        "--available-folds to run only the complete folds, or point --corpus at the whole corpus"
    )


def totals_error(ref: CorpusRef, gap: dict[str, int]) -> str:
    """IEMOCAP: EmoBox's per-session counts are not recorded, only its corpus totals."""
    return (
        f"{ref.name} at {ref.root} differs from EmoBox's copy of the corpus (clips per class on "
        f"disk minus EmoBox's: {gap}), so EmoBox's test folds cannot be confirmed complete; pass "
        "--available-folds to run the folds whose speakers are present (marked unconfirmed)"
    )


def select_folds(
    ref: CorpusRef, table: pd.DataFrame, facts: dict, available_folds: bool
) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """The folds to run, the folds skipped (name -> why) and notes on the folds that run.

    Without ``available_folds`` a folder that lacks any of EmoBox's test clips is refused with a
    one-line error: a different test set would be a different protocol. With it, the complete
    folds run and every deviation (skipped folds, training speakers absent) is noted.
    """
    checks = check_folds(table, facts)
    gap = totals_gap(table, facts)
    incomplete = [c for c in checks if not c.complete]
    if incomplete and (not available_folds or len(incomplete) == len(checks)):
        raise UserError(incomplete_folds_error(ref, checks))
    if gap and not available_folds:  # every test speaker is there, yet the corpus is not EmoBox's
        raise UserError(totals_error(ref, gap))
    notes = {}
    for check in checks:
        words = []
        if check.missing_training:
            words.append(
                f"trained without {len(check.missing_training)} of EmoBox's "
                f"{len(check.training_speakers)} training speakers "
                f"({', '.join(check.missing_training)})"
            )
        if gap and check.expected is None:
            words.append("test clips unconfirmed (the corpus differs from EmoBox's totals)")
        if words and check.complete:
            notes[check.name] = "; ".join(words)
    runnable = [f for f, c in zip(facts["folds"], checks, strict=True) if c.complete]
    return runnable, {c.name: c.describe() for c in incomplete}, notes


def emobox_fold(table: pd.DataFrame, fold: dict) -> Fold:
    """EmoBox's fold on serlib's table: its test speakers; validation and training from the rest.

    The ``VALIDATION_SPEAKERS`` validation speakers (one per gender) come from the fold's training
    speakers only, so choosing the epoch never looks at the test fold.
    """
    test = list(fold["test_speakers"])
    rest = table[~table["speaker"].isin(test)]
    order = gender_balanced_order(rest, SPLIT_SEED)
    if len(order) <= VALIDATION_SPEAKERS:
        raise UserError(
            f"EmoBox {fold['name']}: {len(order)} training speakers on disk are too few to hold "
            f"out {VALIDATION_SPEAKERS} for validation and train on the rest"
        )
    return make_fold(fold["name"], table, order[:VALIDATION_SPEAKERS], test)


# ----- the cross-corpus track --------------------------------------------------------------------


def clip_keys(table: pd.DataFrame, corpus: str) -> pd.Series:
    """The ids EmoBox's balanced sets use: IEMOCAP's utterance id, RAVDESS's file name stem."""
    if corpus == "iemocap":
        return table["utterance"].astype(str)
    return table["path"].map(lambda path: Path(path).stem)


@dataclass
class BalancedSet:
    """EmoBox's balanced test set of a target corpus, as found on disk."""

    table: pd.DataFrame  # the clips found, ``label`` = EmoBox's label
    expected: int  # clips in EmoBox's set
    missing: list[str]  # ids of EmoBox's set not found on disk
    relabelled: int  # clips whose label in the corpus's own files differs from EmoBox's
    skipped: list[Skip]

    @property
    def complete(self) -> bool:
        return not self.missing


def balanced_test_set(ref: CorpusRef) -> BalancedSet:
    """The clips of EmoBox's balanced 4-class test set for ``ref``, scored with EmoBox's labels.

    Clips are matched by id, whatever their label in the corpus's own files (a clip EmoBox labels
    differently is counted in ``relabelled``, never dropped).
    """
    facts = read_facts(f"{check_emobox_corpus(ref.name)}_balanced_test.json")
    wanted = dict(facts["clips"])
    scan = load_corpus(ref.name, ref.root)
    table = scan.table.assign(key=clip_keys(scan.table, ref.name).to_numpy())
    table = table[table["key"].isin(wanted)].drop_duplicates("key").reset_index(drop=True)
    own = table["emotion"].map(label_mapping(CROSS_SCHEME, ref.name))
    table = table.assign(label=table["key"].map(wanted))
    found = set(table["key"])
    return BalancedSet(
        table=table,
        expected=len(wanted),
        missing=[key for key in wanted if key not in found],
        relabelled=int((own != table["label"]).sum()),
        skipped=list(scan.skipped),
    )


def missing_clips_error(ref: CorpusRef, found: BalancedSet) -> str:
    """The one-line reason the cross-corpus test set is incomplete, and the way out."""
    speakers = sorted(
        {speaker_of(key, ref.name) for key in found.missing}, key=lambda s: (len(s), s)
    )
    return (
        f"{ref.name} at {ref.root} lacks {len(found.missing)} of the {found.expected} clips of "
        f"EmoBox's balanced test set (from {', '.join(speakers)}); pass --available-clips to score "
        "the clips present (marked partial, not comparable), or point --target at the whole corpus"
    )


def speaker_of(key: str, corpus: str) -> str:
    """The speaker of a balanced-set clip id, in serlib's naming (for messages)."""
    if corpus == "iemocap":  # Ses01F_impro01_M003 -> Ses01M
        return key[:5] + key.rsplit("_", 1)[1][0]
    return f"Actor_{key[-2:]}"


def source_tables(ref: CorpusRef) -> tuple[Fold, list[Skip]]:
    """The whole source corpus in 4 classes, with ``VALIDATION_SPEAKERS`` held out to select the
    epoch (the target is never used for that)."""
    labels = scheme_labels(CROSS_SCHEME)
    table, skipped = labelled_table(ref, CROSS_SCHEME, labels, every_class=True)
    order = gender_balanced_order(table, SPLIT_SEED)
    if len(order) <= VALIDATION_SPEAKERS:
        raise UserError(
            f"{ref.name} at {ref.root}: {len(order)} speakers are too few to hold out "
            f"{VALIDATION_SPEAKERS} for validation and train on the rest"
        )
    return make_fold("source", table, order[:VALIDATION_SPEAKERS], []), skipped


# ----- published numbers -------------------------------------------------------------------------


def published(key: str) -> dict:
    """EmoBox's published UA for ``key`` (``ravdess``, ``iemocap`` or ``iemocap->ravdess``):
    ``{"rows": [{"model", "ua_percent"}], "citation", "table", "about"}``; no rows if none is
    recorded."""
    facts = read_facts("published.json")
    return {
        "rows": facts["results"].get(key, []),
        "citation": facts["citation"],
        "table": facts["tables"].get(key, ""),
        "about": facts["about"],
    }
