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
# # 01 · Solutions: data exploration
#
# Worked answers to the exercises at the end of
# [notebook 01](../01_data_exploration.ipynb). Try each exercise before you read its answer: a
# *predict, then run* exercise is worth only the prediction you wrote down first.
#
# Every outcome here is printed by code from what this notebook measured, phrased so that it reads
# true whichever way the measurement came out. The Markdown gives the reasoning and says what to
# look for; it never states a result. The committed copy ran in the seconds-long `tiny` profile,
# whose corpora are too small for its numbers to mean much: run it yourself in the `workshop`
# profile.

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
# Parameters: as in notebook 01 (tiny = seconds, workshop = a laptop, full = a GPU; None = the
# synthetic corpus; HOME = None uses $SERLIB_HOME or ./data, so start Jupyter with the SERLIB_HOME
# the course notebooks used to share their corpora; in Colab, HOME = "/content/drive/MyDrive/serlib").
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
HOME = None

# %%
import math

import numpy as np
import pandas as pd
from IPython.display import display
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from serlib import analysis, course, labels
from serlib.corpora import load_corpus
from serlib.metrics import unweighted_accuracy, weighted_accuracy
from serlib.phrasing import (
    UA_TOLERANCE,
    direction,
    emotion,
    percent,
    points,
    share,
    tolerance_words,
)
from serlib.synth import render_clip

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
LABELS = labels.scheme_labels("4class")
scans = {role: load_corpus(corpus.name, corpus.root) for role, corpus in COURSE.corpora.items()}
mapped = {role: labels.apply_scheme(scan.table, "4class") for role, scan in scans.items()}
names = {role: corpus.name for role, corpus in COURSE.corpora.items()}

# %% [markdown]
# ## Exercise 1a · predict, then run: the emotion-intensity knob
#
# **Reasoning.** The synthetic corpus renders each emotion as a change of the neutral voice, scaled
# by its intensity (0 = neutral, 1 = the full profile). Section 9 of notebook 01 says what the full
# profiles are: anger raises pitch, widens its range and makes speech louder and faster; sadness
# lowers and flattens pitch and makes speech slower and softer. So, going from intensity 0 to 1,
# the expectation is: *angry* up on all four cues, *sad* down on all four. A cue may still not
# move as expected when its change is smaller than the clip-to-clip noise of the measurement
# (the tolerances below are those of notebook 01's findings), or when the pitch tracker errs.
#
# The same `seed` gives the same voice, words and recording in every call, so the only thing that
# changes between the rows is the emotion and its intensity.

# %%
KNOB_CUES = ("f0_median_hz", "f0_range_st", "loudness_db", "syllable_rate")
DESIGNED = {"angry": "up", "sad": "down"}  # section 9 of notebook 01, the same for all four cues
rows = []
for emotion_name in DESIGNED:
    for intensity in (0.0, 0.5, 1.0):
        waveform, rate, _ = render_clip(
            emotion_name, speaker="F", domain="ravdess", intensity=intensity, seed=SEED
        )
        cues = analysis.acoustic_cues(waveform, rate)
        rows.append({"emotion": emotion_name, "intensity": intensity, **cues})
knob = pd.DataFrame(rows).set_index(["emotion", "intensity"])[list(KNOB_CUES)]
display(knob.round(2))


# %%
def cue_change(cue: str, low: float, high: float) -> tuple[str, float, str]:
    """The change of one cue from intensity 0 to 1: its direction (with notebook 01's tie), its
    size and unit. Median F0 is compared in semitones, as the ear (and notebook 01) compares it."""
    words, tie, unit = analysis.FINDING_CUES[cue]
    if cue == "f0_median_hz":
        low, high = 0.0, 12 * math.log2(high / low)
    return direction(low, high, tie), high - low, unit


for emotion_name, designed in DESIGNED.items():
    parts = []
    for cue in KNOB_CUES:
        words = analysis.FINDING_CUES[cue][0]
        low, high = knob.loc[(emotion_name, 0.0), cue], knob.loc[(emotion_name, 1.0), cue]
        if not (np.isfinite(low) and np.isfinite(high)):
            parts.append(f"{words} could not be measured (no voiced frame)")
            continue
        moved, size, unit = cue_change(cue, low, high)
        verdict = "as designed" if moved == designed else "not as designed"
        if moved == "same":
            parts.append(f"{words} did not move (within the tie) [{verdict}]")
        else:
            verb = "rose" if moved == "up" else "fell"
            parts.append(f"{words} {verb} by {abs(size):.1f} {unit} [{verdict}]")
    print(f"{emotion(emotion_name)}, intensity 0 -> 1: " + "; ".join(parts))

# %% [markdown]
# **What to look for.** Compare each line with what you wrote down. A cue marked "not as designed"
# is a question about the corpus *or* about the measurement (notebook 01, section 9): listen to the
# two clips, and measure a few more seeds before deciding which. One clip per setting is one draw.

# %% [markdown]
# ## Exercise 1b · explain: why UA and not plain accuracy?
#
# **Reasoning.** A model that always answers the same class gets every clip of that class right
# and every other clip wrong. Its plain accuracy (WA) is therefore that class's share of the clips,
# and its UA is one recall of 1 and all the others 0, averaged: one over the number of classes,
# whatever the balance. The code scores exactly that constant answer with serlib's own metrics, on
# both corpora, using the source's largest `4class` class (what a lazy model trained on the source
# would answer).

# %%
source_labels = mapped["source"]["label"]
largest = source_labels.value_counts().idxmax()
for role, table in mapped.items():
    truth = table["label"].map(LABELS.index).to_numpy()
    constant = np.full_like(truth, LABELS.index(largest))
    wa = weighted_accuracy(truth, constant)
    ua = unweighted_accuracy(truth, constant, len(LABELS))
    gap = direction(ua, wa, UA_TOLERANCE)
    if gap == "same":
        relation = f"the two agree ({tolerance_words()}): this class has about a fair share"
    elif gap == "up":
        relation = f"WA is {points(wa - ua)} above UA: WA credits the answer with its class's size"
    else:
        relation = f"WA is {points(wa - ua)} below UA: WA charges the answer for its class's size"
    print(
        f"{role} ({names[role]}): always answering {emotion(largest)} ({share(wa)} of its clips) "
        f"scores WA {percent(wa)} and UA {percent(ua)}; {relation}"
    )

# %% [markdown]
# **The point a good answer makes.** WA depends on how many clips each class has, and the two
# corpora are unbalanced differently, so the same lazy model gets two different WAs for the same
# (non-)skill. UA gives a constant answer chance on every corpus, so a UA above chance means the
# model tells emotions apart, and UAs measured on different corpora can be compared.

# %% [markdown]
# ## Exercise 1c · extend: can clip duration alone tell the emotion?
#
# **Reasoning.** The corpora are built from dialogue turns (source) and one acted sentence framed
# by silence (target), and emotions change the speaking rate and the pauses. So duration could
# carry some emotion information inside a corpus, and what it carries need not be the same in
# the other corpus. A model that reads the whole clip could learn such a shortcut instead of the
# voice. The test: a two-level decision tree that sees only the duration, scored with UA,
# speaker-independently (folds by speaker) inside each corpus, then trained on all source clips
# and tested on all target clips.

# %%
for role, table in mapped.items():
    seconds, problems = analysis.clip_durations(table["path"].tolist())
    table["duration"] = seconds
    if problems:
        print(f"{role}: {len(problems)} unreadable clips, e.g. {problems[0]}")
usable = {role: table[np.isfinite(table["duration"])] for role, table in mapped.items()}


def duration_tree() -> DecisionTreeClassifier:
    """A shortcut detector: two questions about the duration, classes weighted equally (as UA)."""
    return DecisionTreeClassifier(max_depth=2, class_weight="balanced", random_state=SEED)


def classes(table: pd.DataFrame) -> np.ndarray:
    return table["label"].map(LABELS.index).to_numpy()


def against_chance(what: str, ua: float) -> str:
    """A UA set against chance for the four classes, phrased for every outcome."""
    chance = 1 / len(LABELS)
    moved = direction(chance, ua, UA_TOLERANCE)
    if moved == "same":
        return f"{what} scores {percent(ua)} UA: chance ({percent(chance)}, {tolerance_words()})"
    side = "above" if moved == "up" else "below"
    return (
        f"{what} scores {percent(ua)} UA, {points(ua - chance)} {side} chance ({percent(chance)})"
    )


for role, table in usable.items():
    folds = GroupKFold(n_splits=min(5, table["speaker"].nunique()))
    predicted = cross_val_predict(
        duration_tree(), table[["duration"]], classes(table), groups=table["speaker"], cv=folds
    )
    where = f"inside the {role} corpus ({names[role]}, folds by speaker)"
    print(
        against_chance(f"duration alone, {where},", unweighted_accuracy(classes(table), predicted))
    )
tree = duration_tree().fit(usable["source"][["duration"]], classes(usable["source"]))
across = unweighted_accuracy(
    classes(usable["target"]), tree.predict(usable["target"][["duration"]])
)
print(against_chance("duration alone, trained on the source and tested on the target,", across))
display(usable["source"].groupby("label")["duration"].median().rename("source median (s)").round(2))

# %% [markdown]
# **What to look for.** Above chance inside a corpus means duration is a usable shortcut there;
# the line trained on the source and tested on the target says whether that shortcut transfers.
# A model that pools over time never sees the duration as a number, but it can still pick the
# shortcut up through what duration brings with it (the share of pauses and silence in a clip);
# a shortcut that does not transfer is one more way for a model to fail on the target.
