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
# # 02 · The CRNN baseline: trained on the source, tested on the target
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/serlib/serlib/blob/main/notebooks/02_crnn_baseline.ipynb)
#
# The study's first model is a small convolutional-recurrent network (CRNN) that reads log-mel
# spectrograms. We train it on the labelled **source** corpus only and then test it twice: on
# source speakers it has never heard, and on the **target** corpus. The gap between the two is the
# cost of the domain shift that the next notebooks try to reduce.
#
# **What you will learn**
# - how the CRNN is built (3 conv blocks, a BiLSTM, mean pooling, a classifier) and where its
#   2.4 M parameters are;
# - the speaker-independent protocol: which speakers train, which select the model, which test;
# - how to read learning curves and choose the model on *source* validation UA only;
# - UA, WA and macro-F1 on the source and the target, and the confusion matrices behind them;
# - how to explore the errors clip by clip, and listen to them.

# %%
# Setup: in Colab, install serlib; locally nothing to do (course.setup enables Colab's widgets).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "serlib @ git+https://github.com/serlib/serlib"],
        check=True,
    )

# %% tags=["parameters"]
# Parameters: the profile (tiny = seconds, workshop = a laptop, full = a GPU), real corpus folders
# (None = the synthetic corpus), the seed, and whether to retrain a run that already exists.
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
RETRAIN = os.environ.get("SERLIB_RETRAIN", "") == "1"

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from serlib import analysis, course, plots, results
from serlib.cli import format_metrics
from serlib.labels import scheme_labels
from serlib.models import build_model, count_parameters
from serlib.widgets import ConfusionExplorer

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT)

# %% [markdown]
# ## 1. Build the CRNN
#
# The input is a log-mel spectrogram `[batch, 1, 128 mel bands, T frames]`, treated as a
# one-channel image. Three conv blocks (3x3 convolution, batch norm, ReLU, 2x2 max-pool) each
# halve both axes and learn local time-frequency patterns (harmonics, formant movements, onsets).
# The BiLSTM then reads the sequence of time steps in both directions, and **mean pooling** over
# time turns a clip of any length into one 256-number **embedding**. A small head maps it to the
# four emotion scores.

# %%
LABELS = scheme_labels("4class")
model = build_model("crnn", num_classes=len(LABELS))
print(model)

# %%
# NBVAL_CHECK_OUTPUT
parts = {
    "conv blocks": model.encoder.conv,
    "BiLSTM": model.encoder.lstm,
    "emotion head": model.head,
}
for part, module in parts.items():
    print(f"{part:<13} {count_parameters(module):>10,}")
print(f"{'total':<13} {count_parameters(model):>10,}")

# %% [markdown]
# Almost all the weights sit in the BiLSTM: each time step it reads is 128 channels x 16 mel bands =
# 2048 numbers wide. Follow one batch of two 300-frame clips (about 4.8 s) through the network:

# %%
# NBVAL_CHECK_OUTPUT
x = torch.zeros(2, 1, 128, 300)
print(f"{'log-mel input':<16} {tuple(x.shape)}")
model.eval()
with torch.no_grad():
    maps = x
    for index, block in enumerate(model.encoder.conv, start=1):
        maps = block(maps)
        print(f"{f'conv block {index}':<16} {tuple(maps.shape)}")
    outputs = model(x)
print(f"{'embedding':<16} {tuple(outputs['embedding'].shape)}")
print(f"{'logits':<16} {tuple(outputs['logits'].shape)}")

# %% [markdown]
# ## 2. Train on the source, with progress
#
# `course_run` calls `serlib.runs.train_run`, the same function as `serlib train` on the command
# line, and writes everything to a **run folder** (`config.json`, `model.safetensors`,
# `history.csv`, `metrics.json`, `predictions/<set>.csv`). Notebooks 03 and 05 read that folder.
#
# The protocol is speaker-independent: on IEMOCAP, sessions 1-3 train, session 4 validates (the
# epoch with the best validation **UA** is kept) and session 5 tests. The target corpus is split by
# actor into *adaptation* speakers (used by DANN in notebook 03, unlabelled) and *test* speakers.
# The CRNN never sees any target audio. A finished run is reused; set `RETRAIN = True` to train
# again.

# %%
RUN = course.course_run("crnn", COURSE.corpora, PROFILE, SEED, retrain=RETRAIN)
config = json.loads((RUN / "config.json").read_text())
metrics = json.loads((RUN / "metrics.json").read_text())
print(f"run folder: {course.short_path(RUN)}")
display(pd.DataFrame({"speakers": config["splits"], "clips": config["counts"]}))

# %% [markdown]
# ## 3. Learning curves
#
# The left panel shows the training and validation losses, the middle one the validation scores;
# the dashed line marks the epoch that was kept. Validation loss rising while training loss falls
# is overfitting: the speaker-independent validation set is what tells us when to stop.

# %%
history = results.read_history(RUN)
fig = plots.plot_learning_curves(history, title="CRNN on the source")
course.save_and_show(fig, "02_learning_curves")

# %% [markdown]
# ## 4. Source test and target: the domain gap
#
# `source_test` is source speakers never used in training; `target_test` the held-out target
# actors; `target_all` all target actors (the study's protocol; the CRNN used no target data, so
# for it this is a fair test too).

# %%
print(format_metrics(metrics))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, name in zip(axes, ("source_test", "target_test"), strict=True):
    scores = metrics[name]
    plots.plot_confusion_matrix(
        scores["confusion"],
        scores["labels"],
        normalise=True,
        ax=ax,
        title=f"{name.replace('_', ' ')}: UA {scores['ua']:.1%}",
    )
fig.suptitle("CRNN, row-normalised confusion matrices (rows = true labels)")
fig.tight_layout()
course.save_and_show(fig, "02_confusion")

# %% [markdown]
# On the source the diagonal is visible, with the usual confusions between emotions of similar
# arousal (angry/happy, neutral/sad). On the target, whole rows slide into one column: the model
# maps the target's recording conditions and acting style onto whichever source class they
# resemble. The per-class recall shift is measured in notebook 05.
#
# ## 5. Explore the errors
#
# Pick an evaluation set, then **click a cell** of the matrix to list its clips: true label,
# prediction, the class probabilities, a log-mel thumbnail and a player. Listening to the clips
# in an off-diagonal cell is the quickest way to understand a confusion. (The committed notebook
# shows no widget: run the cell.)

# %%
explorer = ConfusionExplorer.from_run_dirs({"crnn": RUN}, max_clips=6)
explorer.set_picker.value = "target_test"  # start where the errors are
display(explorer.widget)

# %% [markdown]
# A click can also come from code, which is handy for checking what the explorer lists: the clips
# behind a cell are exactly the rows of the run's `predictions/<set>.csv` with that true label and
# that prediction. Here we "click" the target's biggest confusion, the largest off-diagonal cell.

# %%
confusion = np.array(metrics["target_test"]["confusion"])
np.fill_diagonal(confusion, -1)
row, column = np.unravel_index(confusion.argmax(), confusion.shape)
true_label, predicted = metrics["target_test"]["labels"][row], metrics["target_test"]["labels"][column]
listed = explorer.select_cell(true_label, predicted)
table = analysis.read_predictions(RUN, explorer.eval_set)
behind_cell = table[(table["label"] == true_label) & (table["pred"] == predicted)]
print(f"{explorer.eval_set}: {len(behind_cell)} clips are {true_label} predicted {predicted}; "
      f"the explorer lists {len(listed)} of {len(explorer.selected_clips)}")
print("same clips:", sorted(explorer.selected_clips["path"]) == sorted(behind_cell["path"]))

# %% [markdown]
# **Next:** notebook 03 keeps this encoder but adds a domain classifier behind a gradient-reversal
# layer, so that the features stop telling the two domains apart.
