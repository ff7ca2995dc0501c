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
# # 04 · Solutions: Wav2Vec2 + DANN
#
# Worked answers to the exercises at the end of [notebook 04](../04_wav2vec2_dann.ipynb). Try each
# exercise before you read its answer: a *predict, then run* exercise is worth only the prediction
# you wrote down first.
#
# Every outcome here is printed by code from the runs this notebook reads, phrased so that it reads
# true whichever way the run came out; the Markdown gives the reasoning and says what to look for.
# Runs the course notebooks already trained (same profile, seed, encoder, mode and `SERLIB_HOME`)
# are reused; missing ones are trained first, saying how long that takes. The committed copy ran
# offline in the `tiny` profile, with the tiny randomly initialised encoder: its numbers say
# nothing about Wav2Vec2.

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
# Parameters: as in notebook 04 (tiny = seconds, workshop = a laptop, full = a GPU; None = the
# synthetic corpus; RETRAIN trains this notebook's own extra runs again; HOME = None uses
# $SERLIB_HOME or ./data, so start Jupyter with the SERLIB_HOME the course notebooks used to reuse
# their runs; in Colab, HOME = "/content/drive/MyDrive/serlib"; ENCODER: a hub name or a local
# folder, None = $SERLIB_W2V2 or facebook/wav2vec2-base; MODE: None = fine-tune on a GPU, frozen
# features otherwise).
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
import torch

from serlib import course, findings
from serlib.course_plan import expected_time
from serlib.models.pretrained import is_tiny
from serlib.models.wav2vec import build_wav2vec_encoder
from serlib.phrasing import UA_TOLERANCE, direction, percent, points, tolerance_words
from serlib.run_findings import chance_of, name_of, proxy_a_distance_of, ua_of

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
ENCODER_NAME, ENCODER_NOTE = course.pick_encoder(ENCODER, PROFILE)
MODE = course.pick_w2v2_mode(MODE, PROFILE)
PRETRAINED = not is_tiny(ENCODER_NAME)
print(ENCODER_NOTE)
print(f"mode: {MODE}")
RUNS = course.ensure_runs(["crnn", "oracle", "dann"], COURSE)
RUNS |= course.ensure_runs(["w2v2", "w2v2-dann"], COURSE, encoder=ENCODER_NAME, w2v2_mode=MODE)

# %% [markdown]
# ## Exercise 4a · extend: frames per second, from the convolutions
#
# **Reasoning.** Each convolution of the feature encoder, with kernel *k* and stride *s*, turns
# *n* samples into floor((*n* - *k*) / *s*) + 1 outputs (no padding). Applying that layer by
# layer to 16 000 samples per second gives the frame count; the receptive field of one frame is
# 1 + the sum over layers of (*k* - 1) times the product of the strides before that layer. Both
# come from the checkpoint's config (`conv_kernel`, `conv_stride`), so they hold for any
# wav2vec2, HuBERT or WavLM checkpoint, and the encoder itself checks them.

# %%
encoder = build_wav2vec_encoder(ENCODER_NAME, seed=SEED)
kernels, strides = encoder.backbone.config.conv_kernel, encoder.backbone.config.conv_stride


def frames_after_convolutions(samples: int) -> int:
    """Frames the strided convolutions make from ``samples`` (no padding, as in wav2vec2)."""
    for kernel, stride in zip(kernels, strides, strict=True):
        samples = (samples - kernel) // stride + 1
    return samples


receptive, hop = 1, 1
for kernel, stride in zip(kernels, strides, strict=True):
    receptive += (kernel - 1) * hop
    hop *= stride
print(f"kernels {list(kernels)}, strides {list(strides)}")
print(f"by hand: one frame every {hop} samples, each seeing {receptive} samples")
print(f"the encoder says: each frame sees {encoder.min_samples} samples")
agree = receptive == encoder.min_samples
for seconds in (1, 2, 3, 4):
    samples = 16000 * seconds
    with torch.no_grad():
        states, _ = encoder.hidden_states(torch.zeros(1, samples))
    by_hand, measured = frames_after_convolutions(samples), states.shape[2]
    agree = agree and by_hand == measured
    print(f"{seconds} s = {samples} samples: {by_hand} frames by hand, {measured} from the encoder")
print("the formula matches the encoder" if agree else "the formula and the encoder disagree")
del encoder, states

# %% [markdown]
# **What to look for.** Frames per second is a little under 16 000 / hop because the first frame
# needs a whole receptive field of samples before it exists; the shortfall is the same for every
# length, so it matters only for short clips.

# %% [markdown]
# ## Exercise 4b · predict, then run: Wav2Vec2 + DANN without its domain loss
#
# **Reasoning.** In frozen mode the encoder's features are fixed; what trains is the layer mix, a
# small projection and the heads. DANN's reversed gradient can reshape only the projection and
# the mix. With `domain_weight=0` nothing reaches them from the domain loss, and there is no batch
# norm in that path to mix the domains' statistics (unlike the CRNN control of exercise 3a). So
# the control should behave like plain W2V2, apart from training noise, and the difference between
# W2V2 + DANN and the control is the adversary's whole effect. When fine-tuning, the argument is
# the same with the transformer in place of the projection (it uses layer norm, per clip, not
# batch norm).

# %%
CONTROL = "w2v2-dann-no-domain-loss"
if RETRAIN or not (course.run_dir(CONTROL, PROFILE, SEED, COURSE.tag) / "metrics.json").is_file():
    print(f"training {CONTROL}: {expected_time('w2v2-dann', PROFILE, ENCODER_NAME)}")
RUNS[CONTROL] = course.course_run(
    "w2v2-dann",
    COURSE.corpora,
    PROFILE,
    SEED,
    name=CONTROL,
    retrain=RETRAIN,
    encoder=ENCODER_NAME,
    w2v2_mode=MODE,
    domain_weight=0.0,
)
control, plain, adapted = (RUNS[n] for n in (CONTROL, "w2v2", "w2v2-dann"))
print(findings.ua_change(plain, control, "target_test"))
print(findings.ua_change(control, adapted, "target_test"))
distances = {run: proxy_a_distance_of(run) for run in (plain, control, adapted)}
if None not in distances.values():
    print(
        findings.proxy_a_distance(
            distances[control], distances[adapted], "W2V2 embeddings, the control and DANN"
        )
    )

# %% [markdown]
# **What to look for.** The first line tests the prediction that the control is plain W2V2 again;
# the second is what the adversary did. With the tiny random encoder both are about plumbing,
# not about Wav2Vec2.

# %% [markdown]
# ## Exercise 4c · explain: what a random-feature baseline can and cannot say
#
# **Reasoning.** A randomly initialised encoder is still a stack of convolutions and averaging: its
# pooled features are random projections of the clip's spectral and energy statistics, and a
# trained head on top can pick up loudness, pitch and brightness from them. So it can score above
# chance without having learned anything about speech. To claim that *pretraining* helps, compare
# the same architecture, head and seeds with pretrained and with random weights; comparing a
# pretrained Wav2Vec2 with the CRNN mixes the effect of pretraining with that of the architecture.

# %%
print(findings.encoder_note(plain))
for run in (plain, adapted, RUNS["crnn"]):
    ua, chance = ua_of(run, "target_test"), chance_of(run, "target_test")
    moved = direction(chance, ua, UA_TOLERANCE)
    where = {
        "up": f"{points(ua - chance)} above chance ({percent(chance)})",
        "same": f"at chance ({percent(chance)}, {tolerance_words()})",
        "down": f"{points(ua - chance)} below chance ({percent(chance)})",
    }[moved]
    print(f"{name_of(run)}: target test UA {percent(ua)}, {where}")
compared = {name_of(RUNS[n]): RUNS[n] for n in ("crnn", "dann", "w2v2", "w2v2-dann")}
print(findings.compare_runs(compared, "target_test"))
print(
    "this encoder is pretrained: set it beside the same architecture with random weights before "
    "crediting pretraining"
    if PRETRAINED
    else "this encoder is random: the W2V2 rows are a baseline of the architecture, not a result "
    "about pretraining"
)

# %% [markdown]
# **What to look for.** Where the random-feature rows stand against chance and against the CRNN
# tells you how much of a score the architecture alone can give on these corpora: any claim about
# a pretrained encoder has to beat that baseline, not only chance.
