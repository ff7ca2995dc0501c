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
# # 04 · Wav2Vec2 + DANN: a pretrained speech encoder
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/serlib/serlib/blob/main/notebooks/04_wav2vec2_dann.ipynb)
#
# The CRNN learned everything from a few thousand labelled clips. **Wav2Vec2** was pretrained,
# without labels, on hundreds of hours of speech: it learned what speech sounds like before it
# ever saw an emotion label, and such encoders tend to be more robust to new speakers and rooms.
# The study's third model puts an emotion head and a DANN domain head on `facebook/wav2vec2-base`.
#
# **What you will learn**
# - how Wav2Vec2 turns a waveform into one vector per 20 ms (a CNN, then a transformer);
# - where the encoder comes from, and the tiny offline fallback that keeps the course running
#   without a download (clearly labelled: its numbers are not results);
# - the two ways to train: **frozen features** on a CPU (the encoder runs once per clip, only the
#   heads train) and **fine-tuning** on a GPU (the whole transformer trains);
# - how Wav2Vec2 and Wav2Vec2 + DANN compare with the CRNN and DANN-CRNN of notebooks 02 and 03.

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
# (None = the synthetic corpus), the seed, whether to retrain existing runs, the encoder (a hub
# name or a local folder; None = $SERLIB_W2V2 or facebook/wav2vec2-base) and the training mode
# (None = fine-tune on a GPU, frozen features otherwise).
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
RETRAIN = os.environ.get("SERLIB_RETRAIN", "") == "1"
ENCODER = os.environ.get("SERLIB_W2V2") or None
MODE = os.environ.get("SERLIB_W2V2_MODE") or None

# %%
import json

import torch
from IPython.display import display

from serlib import course, plots, results
from serlib.cli import format_metrics
from serlib.labels import scheme_labels
from serlib.models import build_model, count_parameters
from serlib.models.wav2vec import build_wav2vec_encoder

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT)

# %% [markdown]
# ## 1. Which encoder?
#
# serlib never downloads anything you did not ask for. The encoder comes from a local folder
# (`SERLIB_W2V2=/path/to/wav2vec2-base`), from the Hugging Face cache, or from the hub when the
# network is on (Colab). When none of these works, the notebook falls back to a **tiny, randomly
# initialised** Wav2Vec2 with the same shapes and plumbing, so that everything below still runs.
# Its scores only show that the pipeline works: **they are not results**.

# %%
ENCODER_NAME, ENCODER_NOTE = course.pick_encoder(ENCODER, PROFILE)
print("encoder:", ENCODER_NAME)
print(ENCODER_NOTE)

# %% [markdown]
# ## 2. Inside the encoder
#
# A stack of strided 1-D convolutions turns 16,000 samples per second into 50 frames per second
# (one every 20 ms, each seeing 25 ms of audio); a transformer then lets every frame attend to
# the whole clip. Every layer's output is a "hidden state"; emotion information tends to peak in
# the middle layers, which is why serlib can learn a weighted mix of all of them.

# %%
encoder = build_wav2vec_encoder(ENCODER_NAME, seed=SEED)
config = encoder.backbone.config
print(f"{encoder.source.label}")
print(f"transformer layers: {config.num_hidden_layers}, width: {config.hidden_size}")
print(f"parameters: {count_parameters(encoder):,} ({count_parameters(encoder, trainable_only=True):,} trainable: the CNN is frozen)")
one_second = torch.zeros(1, 16000)
states, frame_mask = encoder.hidden_states(one_second)
print(f"1 s of audio {tuple(one_second.shape)} -> hidden states [layers+1, batch, frames, width] = {tuple(states.shape)}")
print(f"embedding (mean over frames of the last layer): {tuple(encoder(one_second).shape)}")

# %%
LABELS = scheme_labels("4class")
model = build_model("w2v2-dann", num_classes=len(LABELS), encoder=encoder)
for part in ("encoder", "head", "domain_head"):
    print(f"{part:<12} {count_parameters(getattr(model, part)):>12,}")
del model, encoder, states

# %% [markdown]
# ## 3. Frozen features or fine-tuning?
#
# - **frozen** (the workshop mode, CPU): the encoder runs *once* per clip and the mean of every
#   layer's hidden states is cached on disk. Only a learned layer mix and the heads train, on those
#   cached vectors, in seconds per epoch. DANN then aligns the pooled features, not the encoder.
# - **finetune** (a GPU): the transformer itself trains (learning rate 2e-5 for the encoder, 3e-4
#   for the heads, AdamW, mixed precision). Slower, and the stronger model when there is data.

# %%
MODE = course.pick_w2v2_mode(MODE, PROFILE)
print(f"mode: {MODE} ({'GPU: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'})")

# %% [markdown]
# ## 4. Training Wav2Vec2, then Wav2Vec2 + DANN
#
# Same protocol as before: source sessions 1-3 train, session 4 selects, session 5 tests; DANN
# adapts on the unlabelled target adaptation speakers and is tested on the other target speakers.

# %%
runs = {}
for kind in ("w2v2", "w2v2-dann"):
    runs[kind] = course.course_run(
        kind, COURSE.corpora, PROFILE, SEED, retrain=RETRAIN, encoder=ENCODER_NAME, w2v2_mode=MODE
    )
    saved = json.loads((runs[kind] / "config.json").read_text())
    print(f"{kind}: {saved['encoder_label']}, mode {saved.get('w2v2_mode')}, folder {course.short_path(runs[kind])}")
    print(format_metrics(results.read_metrics(runs[kind])))

# %%
history = results.read_history(runs["w2v2-dann"])
fig = plots.plot_learning_curves(history, title=f"Wav2Vec2 + DANN ({MODE})")
course.save_and_show(fig, "04_learning_curves")

# %% [markdown]
# ## 5. Against the CRNN models of notebooks 02 and 03

# %%
label = "tiny, not pretrained" if ENCODER_NAME == "tiny" else MODE
comparison = results.results_table(
    {
        "CRNN (02)": course.run_dir("crnn", PROFILE, SEED, COURSE.tag),
        "DANN-CRNN (03)": course.run_dir("dann", PROFILE, SEED, COURSE.tag),
        f"W2V2 ({label})": runs["w2v2"],
        f"W2V2-DANN ({label})": runs["w2v2-dann"],
    }
)
if comparison.attrs["missing"]:
    print("not found (run notebooks 02 and 03 first):", comparison.attrs["missing"])
display(results.wide_results(comparison))
fig = plots.plot_results_table(comparison, title="CRNN vs Wav2Vec2, with and without DANN (%)", note=ENCODER_NOTE[:110])
course.save_and_show(fig, "04_results")

# %% [markdown]
# With a real pretrained encoder, Wav2Vec2 usually transfers better than the CRNN: its features
# were shaped by many speakers and recording conditions before any emotion label. With the tiny
# fallback the rows above only prove that the plumbing works; rerun with
# `SERLIB_W2V2=/path/to/wav2vec2-base` (or in Colab, which has the network) for real numbers.
#
# **Next:** notebook 05 opens all these run folders and analyses the domain shift.
