"""The published study the course reproduces: what it did, what it reported, what serlib changes.

The course names the study once, at its start, and prints its numbers from here rather than from
Markdown, so the numbers a notebook shows all come from code. No citation of the study (authors,
title, repository) is recorded in this repository, so none is given: ``STUDY.citation`` is None
until someone who knows it fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ReportedResult:
    """One model's accuracy as the study reported it (percent of clips, rounded)."""

    model: str
    source_accuracy: float
    target_accuracy: float


@dataclass(frozen=True)
class Change:
    """One thing serlib does differently from the study, and why."""

    what: str
    study: str
    serlib: str
    why: str


@dataclass(frozen=True)
class Study:
    """The study being reproduced: its models, data, protocol, reported results and our changes."""

    description: str
    citation: str | None
    source: str
    target: str
    models: tuple[str, ...]
    labels: str
    metric: str
    protocol: str
    results: tuple[ReportedResult, ...]
    changes: tuple[Change, ...]


STUDY = Study(
    description=(
        "the published study this course reproduces: a CRNN on log-mel spectrograms, the same "
        "CRNN with domain-adversarial training (DANN-CRNN, gradient reversal capped at 0.7) and a "
        "Wav2Vec2 encoder with DANN, trained on IEMOCAP and tested on RAVDESS"
    ),
    citation=None,
    source="IEMOCAP",
    target="RAVDESS",
    models=("CRNN", "DANN-CRNN", "Wav2Vec2+DANN"),
    labels=(
        "seed5: angry, frustrated, happy, neutral, sad (RAVDESS calm -> neutral, fearful and "
        "disgust -> frustrated, surprised -> happy)"
    ),
    metric="accuracy (the share of clips labelled correctly)",
    protocol=(
        "IEMOCAP sessions 1-3 train, 4 validates, 5 tests; the DANN models adapted on all of "
        "RAVDESS and were tested on all of it (transductive)"
    ),
    results=(
        ReportedResult("CRNN", 44, 14),
        ReportedResult("DANN-CRNN", 42, 24),
        ReportedResult("Wav2Vec2+DANN", 42, 27),
    ),
    changes=(
        Change(
            "labels",
            "seed5: five classes; RAVDESS has no frustration, so fearful and disgust fill it",
            "4class: angry, happy, neutral, sad (IEMOCAP excited -> happy; RAVDESS calm dropped)",
            "filling a class with other emotions builds a label shift into the task, on top of "
            "the domain shift being studied",
        ),
        Change(
            "adaptation",
            "adapted on all RAVDESS speakers' audio, then tested on the same speakers",
            "adapts on half of the target speakers' unlabelled audio, tests on the other half",
            "a deployed model meets new speakers; adapting on the test speakers' own audio "
            "answers another question (the study's protocol is kept, marked transductive)",
        ),
        Change(
            "metric",
            "accuracy",
            "unweighted accuracy (UA, the mean of the per-class recalls), WA and macro-F1 beside",
            "with unbalanced classes accuracy rewards predicting the largest class; under UA "
            "chance is 1 / number of classes whatever the balance",
        ),
        Change(
            "upper bound",
            "none",
            "an oracle CRNN trained on labelled target adaptation speakers, marked as such",
            "it measures the gap adaptation could close, so every adapted run can say how much "
            "of it it recovered",
        ),
    ),
)
"""The study, from what this repository records of it (README, DESIGN): no citation is known."""


def study_table(study: Study = STUDY) -> pd.DataFrame:
    """The study's reported accuracy per model on its source and target (percent, as reported)."""
    table = pd.DataFrame(
        [(r.model, r.source_accuracy, r.target_accuracy) for r in study.results],
        columns=[
            "model",
            f"{study.source} (source) accuracy %",
            f"{study.target} (target) accuracy %",
        ],
    ).set_index("model")
    table.attrs["note"] = (
        f"as the study reported them: {study.metric}; labels {study.labels}; {study.protocol}"
    )
    return table


def study_changes(study: Study = STUDY) -> pd.DataFrame:
    """What serlib changes from the study, and why: one row per change."""
    return pd.DataFrame(
        [(c.what, c.study, c.serlib, c.why) for c in study.changes],
        columns=["what", "the study", "serlib", "why"],
    ).set_index("what")
