# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Solutions: domain-shift analysis
#
# Worked answers to the exercises at the end of [notebook 05](../05_domain_shift_analysis.ipynb).
# Try each exercise before you read its answer: a *predict, then run* exercise is worth only the
# prediction you wrote down first.
#
# Every outcome here is printed by code from the runs this notebook reads, phrased so that it reads
# true whichever way the run came out; the Markdown gives the reasoning and says what to look for.
# Runs the course notebooks already trained (same profile, seed and `SERLIB_HOME`) are reused; the
# ones that are missing are trained first, saying how long that takes. The committed copy ran in
# the seconds-long `tiny` profile, whose numbers mean little: run it yourself in `workshop`.

# %%
# Setup: in Colab, install serlib; locally nothing to do (course.setup enables Colab's widgets).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "serlib @ git+https://github.com/serlib/serlib",
        ],
        check=True,
    )

# %% tags=["parameters"]
# Parameters: as in notebook 05 (tiny = seconds, workshop = a laptop, full = a GPU; None = the
# synthetic corpus; RETRAIN trains this notebook's own extra runs again; HOME = None uses
# $SERLIB_HOME or ./data, so start Jupyter with the SERLIB_HOME the course notebooks used to reuse
# their runs; in Colab, HOME = "/content/drive/MyDrive/serlib").
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
RETRAIN = os.environ.get("SERLIB_RETRAIN", "") == "1"
HOME = None

# %%
import numpy as np
import pandas as pd
from IPython.display import display

from serlib import analysis, course, findings
from serlib.course_plan import expected_time
from serlib.errors import UserError
from serlib.explorer_data import per_speaker_recall
from serlib.labels import scheme_labels
from serlib.phrasing import (
    RECALL_TOLERANCE,
    UA_TOLERANCE,
    direction,
    emotion,
    share,
    tolerance_words,
)
from serlib.run_findings import scores_of
from serlib.run_settings import make_settings

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
LABELS = scheme_labels("4class")
RUNS = course.ensure_runs(["crnn", "oracle", "crnn-target-statistics"], COURSE)
crnn, oracle, statistics = (RUNS[n] for n in ("crnn", "oracle", "crnn-target-statistics"))


def variant(model: str, *, name: str, like: str, **options) -> str:
    """Train (or reuse) a course model with changed options in its own run folder ``name``;
    ``like`` is the course run of the same size, whose measured time is printed."""
    if RETRAIN or not (course.run_dir(name, PROFILE, SEED, COURSE.tag) / "metrics.json").is_file():
        print(f"training {name}: {expected_time(like, PROFILE)}")
    return course.course_run(
        model, COURSE.corpora, PROFILE, SEED, name=name, retrain=RETRAIN, **options
    )


# %% [markdown]
# ## Exercise 5a · predict, then run: read both corpora alike
#
# **Reasoning.** Two differences between the corpora lie in how a clip is cut and how loud it is:
# the target's sentences sit in long silences, and the target is recorded at a lower level.
# Trimming the silence around every clip (`trim_db=40`) removes the first, and standardising each
# clip with its own mean and deviation per mel band (`normalisation="utterance"`) removes the
# second, and any fixed colouring of the channel, for every clip of both corpora alike. No target
# audio is used in training. So it attacks the same level shift as target statistics, without
# needing the target's audio; the price is that a clip's absolute loudness, itself an emotion cue,
# is gone too, which could cost source accuracy.

# %%
RUNS["crnn-read-alike"] = variant(
    "crnn", name="crnn-read-alike", like="crnn", trim_db=40.0, normalisation="utterance"
)
alike = RUNS["crnn-read-alike"]
print(findings.gap_recovered(crnn, alike, oracle))
print(findings.gap_recovered(crnn, statistics, oracle))
print(findings.ua_change(statistics, alike, "target_test"))
print(findings.source_cost(crnn, alike))

# %% [markdown]
# Why not add the target's statistics on top? Per-clip standardisation leaves nothing for them to
# correct, and serlib refuses the combination before it reads any audio:

# %%
try:
    make_settings(
        "crnn",
        COURSE.corpora["source"].spec,
        target=COURSE.corpora["target"].spec,
        profile=PROFILE,
        normalisation="utterance",
        target_statistics=True,
    )
except UserError as error:
    print(f"refused: {error}")

# %% [markdown]
# **What to look for.** The first two lines set the two fixes of the level shift side by side;
# the last says what reading clips alike cost on the source, where loudness was a usable cue.

# %% [markdown]
# ## Exercise 5b · predict, then run: a gentle adversary on top of target statistics
#
# **Reasoning.** Target statistics remove the shift in the input levels; whatever shift is left
# lies in the features the encoder learns. An adversary can only help with that remainder, so it
# should add little when the remainder is small, and a strong adversary can remove emotion cues
# along with the domain. The bounded confusion loss at a lower domain weight
# (`adversary="confusion", domain_weight=0.25`) pushes gently. The comparison that credits the adversary is
# against target statistics alone, not against the plain CRNN.

# %%
RUNS["dann-confusion-target-statistics"] = variant(
    "dann",
    name="dann-confusion-target-statistics",
    like="dann-confusion",
    adversary="confusion",
    domain_weight=0.25,
    target_statistics=True,
)
gentle = RUNS["dann-confusion-target-statistics"]
print(findings.gap_recovered(crnn, gentle, oracle))
print(findings.ua_change(statistics, gentle, "target_test"))
print(findings.source_cost(statistics, gentle))
print(findings.domain_accuracy(gentle))

# %% [markdown]
# **What to look for.** The second line is the adversary's own contribution. Before believing it,
# compare it with the seed spread of exercise 2a: a few points either way on one seed is a draw.

# %% [markdown]
# ## Exercise 5c · explain: a class whose recall rises on the target
#
# **Reasoning.** A class's recall is the share of its clips that get its label. A model that sends
# most target clips to one class gets most of *that* class's clips right for free, whatever it
# learned, while every other class loses. So a recall that rises from source to target, next to a
# UA that falls, points at the class the model collapses onto. The check: for each class whose
# recall rose, is it the class the CRNN predicts most on the target?

# %%
source_scores, target_scores = scores_of(crnn, "source_test"), scores_of(crnn, "target_test")
confusion = np.asarray(target_scores["confusion"], dtype=float)
labels = target_scores["labels"]
predicted_share = confusion.sum(axis=0) / confusion.sum()
true_share = confusion.sum(axis=1) / confusion.sum()
most_predicted = labels[int(predicted_share.argmax())]
print(findings.recall_drop(crnn))
print(findings.collapse(crnn))
rising = [
    label
    for label in labels
    if source_scores["recall"].get(label) is not None
    and target_scores["recall"].get(label) is not None
    and direction(source_scores["recall"][label], target_scores["recall"][label], RECALL_TOLERANCE)
    == "up"
]
if not rising:
    print(f"no class's recall rises from source to target ({tolerance_words(RECALL_TOLERANCE)})")
for label in rising:
    index = labels.index(label)
    which = "the" if label == most_predicted else "not the"
    print(
        f"{emotion(label)}'s recall rose; it is {which} most predicted class on the target "
        f"({share(predicted_share[index])} of predictions, {share(true_share[index])} of clips)"
    )

# %% [markdown]
# **The point a good answer makes.** Per-class recall has to be read with the predicted shares:
# a recall gained by predicting a class for everything is not skill. UA exposes this because the
# other classes' recalls fall to zero; WA can hide it when the favoured class is large.

# %% [markdown]
# ## Exercise 5d · extend: does target statistics help every target speaker?
#
# **Reasoning.** Target statistics are one mean and deviation per mel band for all target
# adaptation speakers together. A test speaker whose level or channel differs from that average
# is corrected only partly, so the gain can vary from speaker to speaker. Per-speaker UA of the two
# runs, from their `predictions/target_test.csv` (`serlib.explorer_data.per_speaker_recall`, what
# the explorer's speaker filter shows), says whether it does.


# %%
per_speaker = pd.DataFrame(
    {
        name: per_speaker_recall(analysis.read_predictions(run, "target_test"), LABELS)["ua"]
        for name, run in (("CRNN", crnn), ("CRNN + target statistics", statistics))
    }
)
display(per_speaker.round(3))
moves = [
    direction(before, after, UA_TOLERANCE)
    for before, after in zip(
        per_speaker["CRNN"], per_speaker["CRNN + target statistics"], strict=True
    )
]
print(
    f"target statistics raised UA for {moves.count('up')}, lowered it for {moves.count('down')} "
    f"and left it unchanged ({tolerance_words()}) for {moves.count('same')} of the "
    f"{len(moves)} target test speakers"
)

# %% [markdown]
# **What to look for.** Gains on every speaker say the level shift is shared by the whole target
# corpus; mixed results say part of the shift is per speaker (or per recording session), which one
# set of target statistics cannot remove. Per-speaker scores rest on few clips each: read the
# pattern, not single values.
