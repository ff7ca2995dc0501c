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
# cost of the domain shift that the next notebooks try to reduce. An **oracle** CRNN, trained on
# *labelled* target speakers, shows how high the target score could be: an upper bound that uses
# labels no real adaptation may use.
#
# **What you will learn**
# - how the CRNN is built (3 conv blocks, a BiLSTM, mean pooling, a classifier) and where its
#   parameters are;
# - what one training step does (forward, cross-entropy, backward, optimizer step), by hand;
# - the speaker-independent protocol: which speakers train, which select the model, which test;
# - how to read learning curves and choose the model on *source* validation UA only;
# - UA, WA and macro-F1 on the source and the target, and the confusion matrices behind them;
# - what the embeddings of source and target clips look like, and why one label can win;
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
# (None = the synthetic corpus), the seed, whether to retrain runs that already exist, and where
# corpora and runs live (None = $SERLIB_HOME or ./data; in Colab,
# HOME = "/content/drive/MyDrive/serlib" keeps them on Google Drive).
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
RETRAIN = os.environ.get("SERLIB_RETRAIN", "") == "1"
HOME = None

# %%
import copy
import json
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display

from serlib import analysis, course, findings, plots, results, shift
from serlib.cli import format_metrics
from serlib.config import profile_settings
from serlib.hardware import make_accelerator
from serlib.labels import scheme_labels
from serlib.models import build_model, count_parameters
from serlib.result_plots import plot_results_bars
from serlib.train import build_optimizer, train_one_epoch
from serlib.widgets import ConfusionExplorer

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
EMBEDDINGS_PER_SET = {"tiny": 60, "workshop": 300, "full": 600}[PROFILE]

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
# Look at which part holds most of the weights: each time step the BiLSTM reads is 128 channels x
# 16 mel bands = 2048 numbers wide. Follow one batch of two 300-frame clips through the network:

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
# ## 2. One training step, by hand
#
# Training repeats one step thousands of times. Here it is once, written out: run the batch
# forward, score the logits against the labels with **cross-entropy**, let autograd compute every
# weight's gradient (**backward**), cap the gradient's overall size (clipping), and let **AdamW**
# move each weight against its gradient. The batch is shaped like a real one (standardised
# log-mels with a frame mask and labels); its numbers are random, because the step does not care.
# Then serlib's own training loop (`serlib.train.train_one_epoch`) takes the same step from the
# same weights, and the two results are compared. Dropout draws random masks, so both steps start
# from the same random state (`torch.random.fork_rng`). The real runs below add what this step
# leaves out: batches balanced by class, many epochs, and a learning rate lowered when validation
# stops improving.

# %%
settings = replace(profile_settings(PROFILE, "crnn").train, cpu=True, mixed_precision="no")
generator = torch.Generator().manual_seed(SEED)
batch = {
    "x": torch.randn(8, 1, 128, 64, generator=generator),  # 8 clips, 128 mel bands, 64 frames
    "mask": torch.ones(8, 64, dtype=torch.bool),  # every frame is audio (no padding)
    "label": torch.arange(8) % len(LABELS),  # two clips of each class
}
by_hand, through_serlib = copy.deepcopy(model), copy.deepcopy(model)

with torch.random.fork_rng():  # both steps start from the same random state: same dropout
    optimizer = torch.optim.AdamW(by_hand.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    by_hand.train()  # batch norm uses this batch's statistics, dropout drops
    logits = by_hand(batch["x"], batch["mask"])["logits"]  # forward: [8 clips, 4 classes]
    loss = F.cross_entropy(logits, batch["label"])  # how wrong, on average
    loss.backward()  # backward: every weight's gradient
    torch.nn.utils.clip_grad_norm_(by_hand.parameters(), settings.grad_clip)  # cap the gradient norm
    optimizer.step()  # move every weight a little against its gradient
    optimizer.zero_grad()

with torch.random.fork_rng():
    serlib_optimizer, _ = build_optimizer(through_serlib, settings)
    row = train_one_epoch(
        through_serlib, [batch], serlib_optimizer, make_accelerator(settings), settings, epoch=0,
        progress=False,
    )  # fmt: skip
pairs = zip(by_hand.state_dict().values(), through_serlib.state_dict().values(), strict=True)
largest = max((a.double() - b.double()).abs().max().item() for a, b in pairs)
print(f"loss by hand {loss.item():.6f}, serlib's loop {row['train_loss']:.6f}")
print(f"largest difference between the two models' weights after the step: {largest:.1e}")
assert abs(loss.item() - row["train_loss"]) <= 1e-5 and largest <= 1e-5
print("the hand step equals serlib's within 1e-5")

# %% [markdown]
# ## 3. Train on the source, and the oracle
#
# `course.ensure_runs` trains each run it is asked for that is not there yet (saying how long that
# takes) and reuses a finished one with the same settings, printing the epochs it trained (`make
# course` trains the runs before it runs the notebooks). Either way you see one line per epoch: the
# training loss, the validation UA and WA, and a star where the validation UA is a new best.
# `course.ensure_runs` calls `serlib.runs.train_run`, the same function as `serlib train` on the
# command line, which writes everything to a **run folder** (`config.json`, `model.safetensors`,
# `history.csv`, `metrics.json`, `predictions/<set>.csv`).
#
# The protocol is speaker-independent: on IEMOCAP, sessions 1-3 train, session 4 validates (the
# epoch with the best validation **UA** is kept) and session 5 tests. The target corpus is split by
# actor into *adaptation* speakers (used by DANN in notebook 03, unlabelled) and *test* speakers.
# The CRNN never sees any target audio.
#
# The **oracle** is the same CRNN trained on the target adaptation speakers *with their labels*
# and tested on the same target test speakers. No adaptation method may use those labels, so the
# oracle is not a competitor: it marks how far up the target score could go, and every later
# notebook reports what share of the gap between the CRNN and the oracle a method recovers. It is
# one run on a few labelled speakers, though, not a law: a method can pass it on a seed, and the
# findings then say so instead of giving a share.
# Set `RETRAIN = True` to train both again.

# %%
RUNS = course.ensure_runs(["crnn", "oracle"], COURSE, retrain=RETRAIN)
RUN = RUNS["crnn"]
config = json.loads((RUN / "config.json").read_text())
metrics = results.read_metrics(RUN)
print(f"run folder: {course.short_path(RUN)}")
display(pd.DataFrame({"speakers": config["splits"], "clips": config["counts"]}))

# %% [markdown]
# ## 4. Learning curves
#
# One panel shows the training and validation losses, another the validation scores (a third the
# learning rate, when it changed during training); the dashed line marks the epoch that was kept. Validation loss rising while training loss falls
# is overfitting: the speaker-independent validation set is what tells us when to stop.

# %%
history = results.read_history(RUN)
fig = plots.plot_learning_curves(history, title="CRNN on the source")
course.save_and_show(fig, "02_learning_curves")

# %% [markdown]
# ## 5. Source test and target: the domain gap
#
# `source_test` is source speakers never used in training; `target_test` the held-out target
# actors; `target_all` all target actors (the study's protocol; the CRNN used no target data, so
# for it this is a fair test too).

# %%
print(format_metrics(metrics))

# %% [markdown]
# Row-normalised confusion matrices: each row is a true emotion, and its cells say where that
# emotion's clips went. Look for the diagonal on the source, and for whole rows sliding into one
# column on the target: a model that maps the target's recording conditions and acting style onto
# whichever source class they resemble sends many emotions to the same label. The two lines
# under the figure say what this run did.

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
print(findings.collapse(RUN, "target_test"))
print(findings.top_confusions(RUN, "target_test"))

# %% [markdown]
# ## 6. Source and target in the CRNN's embedding
#
# The emotion head only sees the 256-number embedding. t-SNE draws the embeddings of the source and
# target test clips in 2-D so that neighbours stay neighbours, coloured by domain (left) and by
# emotion (right). Look for two things: whether the target clips form their own region, apart from
# the source; and whether, *inside* the target region, clips of the same emotion still sit
# together. Emotions ordered within the target but the whole region shifted is the picture of a
# domain shift: the head's boundaries were drawn for the source, so a shifted region can fall
# largely on one side of them, and one label wins. The lines under the figure measure both in the
# embedding itself (which clip is each clip's nearest neighbour), not in the 2-D picture.

# %%
vectors, clips = analysis.run_embeddings(RUN, max_per_set=EMBEDDINGS_PER_SET, seed=SEED)
points = analysis.project_2d(vectors, seed=SEED)
fig = plots.plot_embedding(points, clips["domain"], clips["label"], title="CRNN: t-SNE of test embeddings")
course.save_and_show(fig, "02_tsne")
print(f"{len(clips)} clips: " + ", ".join(f"{n} {domain}" for domain, n in clips["domain"].value_counts().items()))
for line in shift.embedding_findings(vectors, clips, "CRNN"):
    print(line)

# %% [markdown]
# ## 7. How far below the oracle?
#
# UA per evaluation set against two reference lines: chance (one over the number of classes) and
# the oracle's target-test UA (dotted; an upper bound, trained on target labels). The distance
# between the CRNN's target bar and the oracle line is the gap adaptation has to close.

# %%
table = results.results_table({"CRNN (source only)": RUN})
display(results.wide_results(table))
oracle_ua = results.read_metrics(RUNS["oracle"])["target_test"]["ua"]
fig = plot_results_bars(
    table, chance=1 / len(LABELS), oracle=oracle_ua, title="CRNN: source test and target test UA"
)
course.save_and_show(fig, "02_results")

# %% [markdown]
# ## 8. Explore the errors
#
# Pick an evaluation set, then **click a cell** of the matrix to list its clips: true label,
# prediction, the class probabilities, a log-mel thumbnail and a player. Listening to the clips
# in an off-diagonal cell is the quickest way to understand a confusion. The controls: *compare*
# shows a second run beside the first (here the oracle, on the same target test clips), with its
# own matrix and listing, and under every clip what the other run predicted; *order* lists the
# most or least confident clips first, or a random draw (*seed*); *speaker* keeps one speaker's
# clips, and the table under the matrices gives each speaker's recall. Pages of six clips go
# forward and back. For synthetic clips the listing also shows the cue settings each clip was
# made with. The widget needs a running kernel; the picture after the next cell shows what it
# displays, for readers of the saved notebook.

# %%
explorer = ConfusionExplorer.from_run_dirs(
    {"crnn": RUN, "oracle": RUNS["oracle"]}, max_clips=6, compare="oracle"
)
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
course.save_and_show(explorer.picture(clips=3), "02_explorer")

# %% tags=["findings"]
findings.report(
    findings.baseline_findings(RUNS) + shift.embedding_findings(vectors, clips, "CRNN"),
    title="What we found",
)

# %% [markdown] tags=["exercise"]
# ## Exercises
#
# Each exercise says how long it takes on a 2-core laptop. For a *predict, then run*
# exercise, write your prediction down before you run anything: the answer is worth only
# the prediction you made first. Worked answers, with their reasoning and code:
# [`solutions/02_crnn_baseline_solutions.ipynb`](solutions/02_crnn_baseline_solutions.ipynb).
#
# ### Exercise 2a · predict, then run: another seed
#
# *Time:* trains two more CRNNs, each like `crnn`: about 1 min on a 2-core laptop (workshop profile,
# synthetic corpora).
#
# Train the same CRNN with seeds 1 and 2: `course.ensure_runs(["crnn"], replace(COURSE, seed=1))`
# gives the same course with another training seed, in its own run folders. Before running,
# predict: will the target test UA move more or less across seeds than the source test UA? Will the
# collapse onto one label repeat for every seed? Then print both UAs per seed and
# `findings.collapse(run)` for each run.

# %% [markdown] tags=["exercise"]
# ### Exercise 2b · explain: emotions ordered inside the target, yet one label wins
#
# *Time:* a minute or less (no training).
#
# In the t-SNE of section 6, explain how target clips of one emotion can sit together while the
# head sends most target clips to one label. Test your explanation: fit a linear probe
# (scikit-learn's `LogisticRegression`) on the CRNN's target test embeddings
# (`analysis.run_embeddings(RUN, sets=("target_test",))`) with their labels, folds by speaker, and
# compare its UA with the head's on the same clips. Why is this probe a diagnostic and not an
# adaptation method?

# %% [markdown] tags=["exercise"]
# ### Exercise 2c · extend: recall per target speaker
#
# *Time:* a minute or less (no training).
#
# `analysis.read_predictions(RUN, "target_test")` has one row per clip with its speaker, true label
# and prediction. Compute each target test speaker's UA and most-predicted label, and print a
# finding that counts the speakers who send almost all their clips to one label. Is the collapse a
# property of the whole domain or of a few voices?

# %% [markdown]
# **Next:** notebook 03 keeps this encoder but adds a domain classifier behind a gradient-reversal
# layer, so that the features stop telling the two domains apart.
