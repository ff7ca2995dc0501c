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
# # 04 · Wav2Vec2 + DANN: a self-supervised speech encoder
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/serlib/serlib/blob/main/notebooks/04_wav2vec2_dann.ipynb)
#
# The CRNN learned everything from a few thousand labelled clips. **Wav2Vec2** is pretrained,
# without labels, on hundreds of hours of speech: it learns what speech sounds like before it ever
# sees an emotion label. The study's third model puts an emotion head and a DANN domain head on
# `facebook/wav2vec2-base`. With that checkpoint (Colab, or a local folder) the cells below
# fine-tune or probe a real pretrained encoder. Offline, where no checkpoint can be downloaded, they
# run a small **randomly initialised** encoder of the same design instead: the notebook then becomes
# the anatomy of a speech encoder and a random-feature baseline, and says so in its results.
#
# **What you will learn**
# - how Wav2Vec2 turns a waveform into one vector per 20 ms (a CNN, then a transformer);
# - where the encoder comes from, and the tiny offline fallback that keeps the course running
#   without a download (clearly labelled: its numbers are not results about Wav2Vec2);
# - the two ways to train: **frozen features** on a CPU (the encoder runs once per clip; a layer mix,
#   a projection and the heads train) and **fine-tuning** on a GPU (the whole transformer trains);
# - what the layer mix learned in this run;
# - how the Wav2Vec2 runs compare with the CRNN and DANN-CRNN of notebooks 02 and 03.

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
# Parameters: the profile (tiny = seconds, workshop = a laptop, full = a GPU), real corpus folders
# (None = the synthetic corpus), the seed, whether to retrain existing runs, where corpora and runs
# live (None = $SERLIB_HOME or ./data; in Colab, HOME = "/content/drive/MyDrive/serlib" keeps them
# on Google Drive), the encoder (a hub name or a local folder; None = $SERLIB_W2V2 or
# facebook/wav2vec2-base) and the training mode (None = fine-tune on a GPU, frozen features
# otherwise).
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
RETRAIN = os.environ.get("SERLIB_RETRAIN", "") == "1"
HOME = None
ENCODER = os.environ.get("SERLIB_W2V2") or None
MODE = os.environ.get("SERLIB_W2V2_MODE") or None

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from serlib import course, findings, plots, results
from serlib.cli import format_metrics
from serlib.labels import scheme_labels
from serlib.models import build_model, count_parameters
from serlib.models.pretrained import is_tiny
from serlib.models.wav2vec import LayerMixEncoder, build_wav2vec_encoder
from serlib.result_plots import plot_results_bars
from serlib.runs import load_run

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)

# %% [markdown]
# ## 1. Which encoder?
#
# serlib never downloads anything you did not ask for. The encoder comes from a local folder
# (`SERLIB_W2V2=/path/to/wav2vec2-base`), from the Hugging Face cache, or from the hub when the
# network is on (Colab). When none of these works, the notebook falls back to a **tiny, randomly
# initialised** Wav2Vec2 with the same design and plumbing, so that everything below still runs.
# Its scores show what *random* features of that design give, nothing about pretraining. The cell
# prints which one this run uses.

# %%
ENCODER_NAME, ENCODER_NOTE = course.pick_encoder(ENCODER, PROFILE)
PRETRAINED = not is_tiny(ENCODER_NAME)
print("encoder:", ENCODER_NAME)
print(ENCODER_NOTE)

# %% [markdown]
# ## 2. Inside the encoder
#
# A stack of strided 1-D convolutions turns the 16 kHz waveform into frames. In `wav2vec2-base`
# there is one frame every 320 samples (20 ms), each computed from 400 samples (25 ms), so one second
# of audio gives a little under 50 frames; the cell prints this encoder's own stride, receptive
# field and frame count. A transformer then lets every frame attend to the whole clip. Every
# layer's output is a "hidden state". Which layers carry most emotion information differs between
# checkpoints and tasks, which is why serlib can *learn* a weighted mix of all of them (the SUPERB
# recipe) rather than take the last one.

# %%
encoder = build_wav2vec_encoder(ENCODER_NAME, seed=SEED)
config = encoder.backbone.config
print(f"{encoder.source.label}")
print(f"transformer layers: {config.num_hidden_layers}, width: {config.hidden_size}")
print(
    f"parameters: {count_parameters(encoder):,} ({count_parameters(encoder, trainable_only=True):,} trainable: the CNN is frozen)"
)
hop = int(np.prod(config.conv_stride))
print(
    f"one frame every {hop} samples ({1000 * hop / 16000:.1f} ms), each from {encoder.min_samples} samples ({1000 * encoder.min_samples / 16000:.1f} ms)"
)
one_second = torch.zeros(1, 16000)
states, frame_mask = encoder.hidden_states(one_second)
print(
    f"1 s of audio {tuple(one_second.shape)} -> hidden states [layers+1, batch, frames, width] = {tuple(states.shape)}"
)
print(f"frames per second of audio: {states.shape[2]}")
print(f"embedding (mean over frames): {tuple(encoder(one_second).shape)}")

# %%
LABELS = scheme_labels("4class")
model = build_model("w2v2-dann", num_classes=len(LABELS), encoder=encoder)
for part in ("encoder", "head", "domain_head"):
    print(f"{part:<12} {count_parameters(getattr(model, part)):>12,}")
del model, encoder, states

# %% [markdown]
# ## 3. Frozen features or fine-tuning?
#
# - **frozen** (a CPU): the encoder runs *once* per clip and the mean of every layer's hidden
#   states is cached on disk. What trains, on those cached vectors, is small: a learned layer mix
#   (one weight per hidden state), a **projection** (a linear layer and a ReLU) and the heads. The
#   encoder's own features cannot move, so the projection is what DANN's reversed gradient reshapes:
#   without it the adversary would have almost nothing to align.
# - **finetune** (a GPU): the transformer itself trains (learning rate 2e-5 for the encoder, 3e-4
#   for the heads, AdamW, mixed precision) and the run pools the last layer.
#
# One rule picks the mode for the command line, the notebooks and `make course`: fine-tune where a
# GPU is there (and the profile is not `tiny`), frozen features otherwise; `MODE` overrides it.

# %%
MODE = course.pick_w2v2_mode(MODE, PROFILE)
print(
    f"mode: {MODE} ({'GPU: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'})"
)

# %% [markdown]
# ## 4. Training Wav2Vec2, then Wav2Vec2 + DANN
#
# Same protocol as before: source sessions 1-3 train, session 4 selects, session 5 tests; DANN
# adapts on the unlabelled target adaptation speakers and is tested on the other target speakers.
# `course.ensure_runs` also trains the CRNN, the DANN-CRNN and the oracle of notebooks 02 and 03
# if they are missing, for the comparison in section 6.

# %%
# RETRAIN retrains this notebook's own runs only; those of 02 and 03 are reused when they exist
# (quiet: each named in one line; notebooks 02 and 03 show how they trained)
RUNS = course.ensure_runs(["crnn", "oracle", "dann"], COURSE, quiet=True)
RUNS |= course.ensure_runs(
    ["w2v2", "w2v2-dann"], COURSE, retrain=RETRAIN, encoder=ENCODER_NAME, w2v2_mode=MODE
)
for kind in ("w2v2", "w2v2-dann"):
    saved = json.loads((RUNS[kind] / "config.json").read_text())
    print(
        f"{kind}: {saved['encoder_label']}, mode {saved.get('w2v2_mode')}, folder {course.short_path(RUNS[kind])}"
    )
    print(format_metrics(results.read_metrics(RUNS[kind])))

# %%
history = results.read_history(RUNS["w2v2-dann"])
fig = plots.plot_learning_curves(history, title=f"Wav2Vec2 + DANN ({MODE})")
course.save_and_show(fig, "04_learning_curves")

# %% [markdown]
# ## 5. What trained, and what the layer mix did
#
# The cell reads both trained models back and prints what each trained and how it combines the
# encoder's layers. A learned mix starts uniform (every hidden state weighs the same); look at
# how far it moved from uniform and towards which layers. A run without a mix pools the last
# layer.

# %%
mixes = {}
for kind in ("w2v2", "w2v2-dann"):
    trained = load_run(RUNS[kind]).model
    trainable = count_parameters(trained, trainable_only=True)
    head_encoder = trained.encoder
    if isinstance(head_encoder, LayerMixEncoder) and head_encoder.layer_weighting:
        weights = head_encoder.layer_weights().numpy()
        mixes[kind] = weights
        uniform = 1 / len(weights)
        print(
            f"{kind}: {trainable:,} trainable parameters; a learned mix of {len(weights)} hidden "
            f"states (state 0 = the transformer's input, the CNN's projected output): largest weight {weights.max():.3f} on state "
            f"{int(weights.argmax())}, at most {np.abs(weights - uniform).max():.3f} away from "
            f"the uniform start ({uniform:.3f})"
        )
    else:
        print(f"{kind}: {trainable:,} trainable parameters; no layer mix, the last layer is pooled")
if mixes:
    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(mixes)
    for index, (kind, weights) in enumerate(mixes.items()):
        ax.bar(np.arange(len(weights)) + index * width, weights, width=width, label=kind)
    ax.axhline(
        1 / len(weights), color="#333333", linestyle="--", linewidth=1, label="uniform (start)"
    )
    ax.set_xlabel("hidden state (0 = transformer input, then its layers)")
    ax.set_ylabel("weight")
    ax.set_title("learned layer mix")
    ax.legend(fontsize=8)
    fig.tight_layout()
    course.save_and_show(fig, "04_layer_mix")

# %% [markdown]
# ## 6. Results: against the CRNN models of notebooks 02 and 03
#
# The table and the bars put the Wav2Vec2 runs beside the CRNN models, between chance (dashed) and
# the oracle (dotted, an upper bound trained on target labels). What the comparison means depends
# on the encoder: with a pretrained checkpoint it asks whether pretraining on speech helps across
# domains; with the tiny random encoder it only shows what random features of a speech encoder's
# design give, a baseline. The cell names the comparison accordingly.

# %%
if PRETRAINED:
    RESULTS_TITLE = f"a pretrained speech encoder ({ENCODER_NAME}, {MODE}) against the CRNN"
    w2v2_label = f"W2V2 ({MODE})"
else:
    RESULTS_TITLE = "the anatomy of a speech encoder and a random-feature baseline"
    w2v2_label = "random-feature W2V2 (not pretrained)"
print(RESULTS_TITLE)
comparison = results.results_table(
    {
        "CRNN (02)": RUNS["crnn"],
        "DANN-CRNN (03)": RUNS["dann"],
        w2v2_label: RUNS["w2v2"],
        f"{w2v2_label} + DANN": RUNS["w2v2-dann"],
    }
)
display(results.wide_results(comparison))
oracle_ua = results.read_metrics(RUNS["oracle"])["target_test"]["ua"]
fig = plot_results_bars(
    comparison,
    chance=1 / len(LABELS),
    oracle=oracle_ua,
    title=f"UA: {RESULTS_TITLE}",
    note=ENCODER_NOTE,
)
course.save_and_show(fig, "04_results")

# %% [markdown]
# To run this notebook on a real pretrained encoder, set `SERLIB_W2V2=/path/to/wav2vec2-base` (a
# local folder) or open it in Colab, which has the network; a GPU runtime fine-tunes it.

# %% tags=["findings"]
findings.report(findings.wav2vec_findings(RUNS), title="What we found")

# %% [markdown] tags=["exercise"]
# ## Exercises
#
# Each exercise says how long it takes on a 2-core laptop. For a *predict, then run*
# exercise, write your prediction down before you run anything: the answer is worth only
# the prediction you made first. Worked answers, with their reasoning and code:
# [`solutions/04_wav2vec2_dann_solutions.ipynb`](solutions/04_wav2vec2_dann_solutions.ipynb).
#
# ### Exercise 4a · extend: frames per second, from the convolutions
#
# *Time:* a minute or less (no training).
#
# From the checkpoint's `conv_kernel` and `conv_stride` (`encoder.backbone.config`), compute by
# hand how many frames 1, 2, 3 and 4 s of audio give, and how many samples one frame sees. Check
# your numbers against `encoder.hidden_states` and `encoder.min_samples`. Why is it a little under
# 50 frames per second for `wav2vec2-base`?

# %% [markdown] tags=["exercise"]
# ### Exercise 4b · predict, then run: Wav2Vec2 + DANN without its domain loss
#
# *Time:* trains one Wav2Vec2 + DANN: under a minute on a 2-core laptop (workshop profile,
# synthetic corpora) with the tiny offline encoder in frozen mode; with a pretrained checkpoint its
# time has not been measured.
#
# Train `course.course_run("w2v2-dann", COURSE.corpora, PROFILE, SEED,
# name="w2v2-dann-no-domain-loss", encoder=ENCODER_NAME, w2v2_mode=MODE, domain_weight=0)`. In
# this mode, what trains, and what can the domain loss reshape? Predict its target test UA against
# the W2V2 and the W2V2 + DANN runs. How does your reasoning differ from the CRNN control of
# exercise 3a, and why?

# %% [markdown] tags=["exercise"]
# ### Exercise 4c · explain: what a random-feature baseline can and cannot say
#
# *Time:* a minute or less (no training).
#
# Offline, the W2V2 rows come from a randomly initialised encoder. How can random features score
# above chance? What comparison would show that *pretraining* helps, and why is a pretrained
# Wav2Vec2 against the CRNN not that comparison?

# %% [markdown]
# **Next:** notebook 05 opens all these run folders and analyses the domain shift.
