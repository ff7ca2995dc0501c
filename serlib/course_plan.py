"""The course's runs: what each is, how it is trained, its table name, how long it takes to train.

Every run the notebooks train is named here with its model and options, so any notebook can train a
run it needs that an earlier notebook would have made (``serlib.course.ensure_runs``), and the
results table names each run the same way everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from serlib.models.pretrained import is_tiny

COURSE_MODELS = ("crnn", "dann", "w2v2", "w2v2-dann")
"""The models the course trains, in the order of the results table."""


@dataclass(frozen=True)
class CourseRun:
    """One run of the course: its table name, its model and the options it is trained with."""

    label: str
    model: str
    options: Mapping[str, object] = field(default_factory=dict)
    oracle: bool = False  # trained on labelled target adaptation speakers: an upper bound
    notebook: str = ""  # the notebook that introduces it
    scores: str = ""  # a run that trains the same weights: this one only scores them anew


COURSE_RUN_PLAN = {
    "crnn": CourseRun("CRNN", "crnn", notebook="02"),
    "dann": CourseRun("DANN-CRNN", "dann", notebook="03"),
    "w2v2": CourseRun("W2V2", "w2v2", notebook="04"),
    "w2v2-dann": CourseRun("W2V2-DANN", "w2v2-dann", notebook="04"),
    "crnn-seed5": CourseRun("CRNN, seed5 labels", "crnn", {"scheme": "seed5"}, notebook="05"),
    "dann-transductive": CourseRun(
        "DANN-CRNN, transductive", "dann", {"transductive": True}, notebook="05"
    ),
    "dann-confusion": CourseRun(
        "DANN-CRNN, confusion adversary", "dann", {"adversary": "confusion"}, notebook="03"
    ),
    "crnn-target-statistics": CourseRun(
        "CRNN + target statistics",
        "crnn",
        {"target_statistics": True},
        notebook="05",
        scores="crnn",
    ),
    "crnn-target-batchnorm": CourseRun(
        "CRNN + target batch norm (AdaBN)",
        "crnn",
        {"target_batchnorm": True},
        notebook="05",
        scores="crnn",
    ),
    "oracle": CourseRun("Oracle CRNN (upper bound)", "crnn", oracle=True, notebook="02"),
}
"""Every run of the course by folder name, in the order of the results table. The oracle trains
on the *labelled* target adaptation speakers (``serlib.protocol``'s oracle protocol) and is tested
on the same target test speakers as the others: an upper bound that uses target labels, not a
method, so that every notebook can say how much of the gap to it a method recovered. The two
CRNN runs with target statistics or target batch norm train exactly the CRNN's weights (their
training reads no target clip, ``serlib.run_settings.SCORING_OPTIONS``), so they reuse the CRNN's
training and only score the target anew."""

NOTEBOOK_RUNS = {
    "01_data_exploration": (),
    "02_crnn_baseline": ("crnn", "oracle"),
    "03_dann": ("crnn", "oracle", "dann", "dann-confusion"),
    "04_wav2vec2_dann": ("crnn", "oracle", "dann", "w2v2", "w2v2-dann"),
    "05_domain_shift_analysis": (
        "crnn",
        "oracle",
        "dann",
        "w2v2",
        "w2v2-dann",
        "crnn-seed5",
        "dann-transductive",
        "crnn-target-statistics",
        "crnn-target-batchnorm",
    ),
}
"""Notebook -> the course runs it reads (its ``course.ensure_runs`` calls; a test keeps the two
equal), so that ``make course`` can train them before the notebooks run."""

COURSE_RUNS = {name: run.label for name, run in COURSE_RUN_PLAN.items()}
"""Run folder name -> table name: the four models of notebooks 02-04, the oracle, the variants."""

WORKSHOP_SECONDS = {
    "crnn": 78,
    "dann": 88,
    "w2v2": 4,
    "w2v2-dann": 5,
    "crnn-seed5": 63,
    "dann-transductive": 117,
    "dann-confusion": 91,
    "crnn-target-statistics": 14,
    "crnn-target-batchnorm": 15,
    "oracle": 16,
}
"""Wall seconds each course run took when a notebook trained it (what a student waits for), at the
workshop profile on the synthetic corpora: from its config.json (written once its inputs are read)
to its metrics.json (written once it is scored), as ``benchmarks/course_timings.py`` reads them.
Measured on 2026-11-30 in one run of the course with each notebook training its own runs (commit
e652643; ``python -m serlib.course_runner --jobs 1`` today, while ``make course`` trains them
ahead in two processes, ``serlib.course_training``) from a fresh clone, on the
quiet 2-core AMD EPYC developer machine (AVX2, no AVX512; two torch threads; 1-min load 1.8, the
course itself); the whole course took 10 min 58 s. The two CRNN runs with target statistics and
AdaBN only score the CRNN's trained weights again. The W2V2 runs used the tiny random encoder in
frozen mode (the offline fallback); with a pretrained checkpoint they take far longer and are not
measured here."""


def expected_time(name: str, profile: str, encoder: str | None = None) -> str:
    """How long training course run ``name`` takes on a 2-core laptop, in words, for the profile.

    ``encoder``: the Wav2Vec2 runs' checkpoint; only the tiny one's times were measured.
    """
    if profile == "tiny":
        return "a few seconds (tiny profile)"
    if profile == "full":
        return "long: the full profile uses the study's settings and is meant for a GPU"
    seconds = WORKSHOP_SECONDS.get(name)
    pretrained = encoder is not None and not is_tiny(encoder)
    if seconds is None or (pretrained and name.startswith("w2v2")):
        return "unmeasured on a laptop"
    where = "on a 2-core laptop (workshop profile, synthetic corpora)"
    if seconds < 60:
        return f"under a minute {where}"
    return f"about {round(seconds / 60)} min {where}"


def run_label(name: str, folder: Path) -> str:
    """The table name of a course run, marked when its Wav2Vec2 encoder is the tiny random one."""
    label = COURSE_RUNS.get(name, name)
    config_path = folder / "config.json"
    if config_path.is_file():
        encoder = json.loads(config_path.read_text()).get("encoder")
        if encoder is not None and is_tiny(str(encoder)):
            label += " (tiny encoder)"
    return label
