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
# # 03 · DANN: domain-adversarial training of the CRNN
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/serlib/serlib/blob/main/notebooks/03_dann.ipynb)
#
# The CRNN of notebook 02 learned its features from the source alone. **Domain-adversarial neural
# networks** (DANN, Ganin et al. 2016) add a second head that tries to tell source clips from target
# clips, and connect it to the encoder through a **gradient-reversal layer**: the domain head learns
# to spot the domain, while the encoder is pushed the other way, towards features in which the
# domains look alike. The emotion head, trained on labelled source clips only, is then meant to carry
# over to the target. Target *labels* are never used.
#
# **What you will learn**
# - what gradient reversal does, checked with autograd on a three-number example;
# - why the reversal strength ramps up during training, and where the ramp meets its cap;
# - one DANN loss written by hand, equal to serlib's, and which gradients the reversal flips;
# - how to train DANN on labelled source and unlabelled target audio;
# - how to read the domain classifier's accuracy over time;
# - what DANN did on the target against the CRNN of notebook 02 and the oracle, class by class;
# - why a domain head can be fooled instead of confused, and a bounded adversary for that.

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
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import display

from serlib import course, findings, plots, results
from serlib.cli import format_metrics
from serlib.labels import scheme_labels
from serlib.models import GradientReversal, build_model, count_parameters, grl_coefficient
from serlib.models.dann import DomainAdversarialLoss, concat_inputs
from serlib.result_plots import plot_results_bars
from serlib.widgets import ConfusionExplorer

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)

# %% [markdown]
# ## 1. Gradient reversal, by hand
#
# The gradient-reversal layer (GRL) is the identity in the forward pass and multiplies the
# gradient by **-λ** in the backward pass. Take three numbers `x`, pass them through a GRL with
# λ = 0.5, and compute a loss that depends on them, `L = Σ w·y` with `w = (1, 2, 3)`.
# Without the GRL, dL/dx would be `w`; with it, it must be `-0.5 w`.

# %%
# NBVAL_CHECK_OUTPUT
reverse = GradientReversal()
x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
w = torch.tensor([1.0, 2.0, 3.0])

y = reverse(x, 0.5)
print("forward, y = GRL(x):       ", y.detach().tolist(), "(identity:", torch.equal(y, x), ")")
(gradient,) = torch.autograd.grad((w * y).sum(), x)
print("backward, dL/dx with GRL:  ", gradient.tolist())
(plain,) = torch.autograd.grad((w * x).sum(), x)
print("backward, dL/dx without it:", plain.tolist())
print("reversed and scaled by -0.5:", torch.allclose(gradient, -0.5 * plain))

# %% [markdown]
# In DANN the loss behind the GRL is the domain classifier's. Its own weights sit *after* the GRL
# and get the ordinary gradient, so it learns to recognise the domain. The encoder sits *before*
# the GRL and gets the reversed gradient, so every step makes the embedding *less* informative
# about the domain. One backward pass, two opposite goals: a minimax game in a single network.
#
# ## 2. The ramp: how strong the reversal is over training
#
# At the start the domain head is random and its reversed gradients are noise that would only
# damage the encoder, so λ starts at 0 and grows with training progress p (0 to 1) as
# `2 / (1 + exp(-10 p)) - 1`. The study capped it at 0.7 so the adversary never drowns the emotion
# loss; serlib does the same (`grl_cap`), and weighs the domain loss by 0.5. Look at where the
# curve meets the cap: from there on, λ no longer changes.

# %%
# NBVAL_CHECK_OUTPUT
for progress in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0):
    print(f"p = {progress:4.2f}   lambda = {grl_coefficient(progress):.3f}")
grid = np.linspace(0.0, 1.0, 1001)
reached = grid[np.array([grl_coefficient(p) for p in grid]) >= 0.7][0]
print(f"the ramp reaches the cap 0.7 at p = {reached:.3f}: constant for the rest of training")

# %%
fig = plots.plot_grl_schedule(cap=0.7)
course.save_and_show(fig, "03_grl_schedule")

# %% [markdown]
# ## 3. The DANN model
#
# The same CRNN encoder and emotion head as notebook 02, plus a domain head (256 -> 128 -> 2)
# behind the GRL. At test time the domain head is simply not used.

# %%
# NBVAL_CHECK_OUTPUT
LABELS = scheme_labels("4class")
model = build_model("dann", num_classes=len(LABELS))
for part in ("encoder", "head", "domain_head"):
    print(f"{part:<12} {count_parameters(getattr(model, part)):>10,}")
print(f"{'total':<12} {count_parameters(model):>10,}")
outputs = model.eval()(torch.zeros(2, 1, 128, 64), grl_coefficient=0.5)
print({name: tuple(value.shape) for name, value in outputs.items()})

# %% [markdown]
# ## 4. One DANN loss, by hand
#
# Every training batch joins labelled **source** rows and unlabelled **target** rows in one forward
# pass. The loss has two parts: the emotion cross-entropy on the source rows only (the target rows
# have no labels), and the domain cross-entropy on every row (domain 0 = source, 1 = target),
# weighted by 0.5:
#
# `loss = CE(emotion logits[source rows], emotion labels) + 0.5 × CE(domain logits[all rows], domains)`
#
# The batches below are shaped like real ones, with random numbers. The sum is computed by hand,
# then by serlib's `DomainAdversarialLoss`, the loss the training loop uses.

# %%
generator = torch.Generator().manual_seed(SEED)
source_x = torch.randn(4, 1, 128, 64, generator=generator)  # 4 labelled source clips
target_x = torch.randn(3, 1, 128, 80, generator=generator)  # 3 unlabelled target clips, longer
source_labels = torch.arange(4) % len(LABELS)
masks = torch.ones(4, 64, dtype=torch.bool), torch.ones(3, 80, dtype=torch.bool)
x, mask = concat_inputs((source_x, masks[0]), (target_x, masks[1]))  # source rows first, padded
coefficient, weight = 0.7, 0.5
outputs = model.train()(x, mask, grl_coefficient=coefficient)

emotion = F.cross_entropy(outputs["logits"][:4], source_labels)  # labelled rows only
domains = torch.tensor([0] * 4 + [1] * 3)  # 0 = source, 1 = target
domain = F.cross_entropy(outputs["domain_logits"], domains)  # every row
by_hand = emotion + weight * domain

serlib_loss = DomainAdversarialLoss("reversal", weight)(
    outputs, source_labels, coefficient, domain_head=model.domain_head
)
print(
    f"by hand: emotion {emotion.item():.6f} + {weight} x domain {domain.item():.6f} = {by_hand.item():.6f}"
)
print(
    f"serlib:  emotion {serlib_loss.emotion.item():.6f} + {weight} x domain {serlib_loss.domain.item():.6f} = {serlib_loss.total.item():.6f}"
)
torch.testing.assert_close(by_hand, serlib_loss.total, rtol=0, atol=1e-5)
print("the hand loss equals serlib's within 1e-5")

# %% [markdown]
# The loss itself has no minus sign: the reversal happens in the backward pass. Take the domain
# loss's gradient on one encoder weight (the BiLSTM's input weights) and on one domain-head weight,
# once through the GRL and once without it. The encoder's gradient must come out multiplied by -λ,
# the head's unchanged. (Evaluation mode, so both passes see exactly the same network.)

# %%
model.eval()
embedding = model.encoder(x, mask)
through_reversal = F.cross_entropy(
    model.domain_head(model.reverse(embedding, coefficient)), domains
)
without_reversal = F.cross_entropy(model.domain_head(embedding), domains)
weights = (model.encoder.lstm.weight_ih_l0, model.domain_head[0].weight)
reversed_grads = torch.autograd.grad(through_reversal, weights, retain_graph=True)
plain_grads = torch.autograd.grad(without_reversal, weights)
encoder_ratio = (reversed_grads[0] * plain_grads[0]).sum() / (plain_grads[0] ** 2).sum()
head_ratio = (reversed_grads[1] * plain_grads[1]).sum() / (plain_grads[1] ** 2).sum()
print(f"encoder weight: gradient through the GRL = {encoder_ratio.item():+.3f} x the plain one")
print(f"domain head weight: gradient through the GRL = {head_ratio.item():+.3f} x the plain one")
encoder_off = (reversed_grads[0] + coefficient * plain_grads[0]).abs().max() / plain_grads[
    0
].abs().max()
head_off = (reversed_grads[1] - plain_grads[1]).abs().max() / plain_grads[1].abs().max()
assert encoder_off <= 1e-5 and head_off <= 1e-5, (encoder_off, head_off)
print(f"the encoder's gradient is reversed and scaled by -{coefficient}, the head's is untouched")

# %% [markdown]
# ## 5. Training
#
# Every batch of labelled source clips is paired with a batch of **unlabelled** clips from the
# target *adaptation* speakers, with the loss above. Model selection is again on *source*
# validation UA: choosing the epoch by target accuracy would use target labels. The target *test*
# speakers are never seen, not even unlabelled. `course.ensure_runs` trains what is missing: the
# DANN-CRNN, and the CRNN and the oracle of notebook 02 if this notebook runs alone.

# %%
# RETRAIN retrains this notebook's own runs only; notebook 02's are reused when they exist
# (quiet: each named in one line; notebook 02 shows how they trained)
RUNS = course.ensure_runs(["crnn", "oracle"], COURSE, quiet=True)
RUNS |= course.ensure_runs(["dann"], COURSE, retrain=RETRAIN)
RUN = RUNS["dann"]
metrics = results.read_metrics(RUN)
print(f"run folder: {course.short_path(RUN)}")

# %% [markdown]
# ## 6. The domain classifier over time
#
# `train_domain_acc` is how often the domain head guessed the domain right during each epoch. Near
# 1 the domains are easy to tell apart; **near 0.5 the encoder has made them indistinguishable**,
# which is the adversarial goal; well below 0.5 the head is confidently wrong (section 8). The GRL
# coefficient is in its own panel, with the ramp of section 2. Look at whether the domain accuracy
# falls as λ rises, and at the emotion scores beside it: an adversary that is too strong drags
# them down. The lines under the figures say what this run did.

# %%
history = results.read_history(RUN)
adversarial_columns = [c for c in ("train_domain_acc", "val_ua", "grl_coefficient") if c in history]
fig = plots.plot_learning_curves(
    history, columns=adversarial_columns, title="DANN: domain accuracy, validation UA, GRL"
)
course.save_and_show(fig, "03_domain_accuracy")
print(findings.grl_ramp(RUN, float(results.read_config(RUN)["train"]["grl_cap"])))
print(findings.domain_accuracy(RUN))

# %%
fig = plots.plot_learning_curves(history, title="DANN learning curves")
course.save_and_show(fig, "03_learning_curves")

# %% [markdown]
# ## 7. DANN against the CRNN of notebook 02
#
# The bars put both models between chance (dashed) and the oracle (dotted, an upper bound trained
# on target labels). Compare the target bars with each other and with the oracle line, and the
# source bars too: adaptation that costs source accuracy has dropped cues the emotions needed.

# %%
print(format_metrics(metrics))

# %%
comparison = results.results_table({"CRNN (02)": RUNS["crnn"], "DANN-CRNN (03)": RUN})
display(results.wide_results(comparison))
oracle_ua = results.read_metrics(RUNS["oracle"])["target_test"]["ua"]
fig = plot_results_bars(
    comparison, chance=1 / len(LABELS), oracle=oracle_ua, title="CRNN vs DANN-CRNN: UA"
)
course.save_and_show(fig, "03_results_vs_crnn")
print(findings.gap_recovered(RUNS["crnn"], RUN, RUNS["oracle"]))
print(findings.source_cost(RUNS["crnn"], RUN))

# %% [markdown]
# Adversarial alignment matches the *overall* feature distributions. If the target's classes are
# in different proportions, or a class sounds different in the two domains, alignment can move a
# class onto the wrong one as easily as onto the right one. Compare the two target matrices row by
# row: which rows moved towards the diagonal, which moved away, which did not move at all?

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, (name, folder) in zip(axes, {"CRNN": RUNS["crnn"], "DANN": RUN}.items(), strict=True):
    scores = results.read_metrics(folder)["target_test"]
    plots.plot_confusion_matrix(
        scores["confusion"],
        scores["labels"],
        normalise=True,
        ax=ax,
        title=f"{name}, target test: UA {scores['ua']:.1%}",
    )
fig.suptitle("target test speakers, row-normalised (rows = true labels)")
fig.tight_layout()
course.save_and_show(fig, "03_confusion_target")
print(findings.per_class_shift(RUNS["crnn"], RUN, "target_test"))
print(findings.collapse(RUN, "target_test"))

# %% [markdown]
# ## 8. Fooled or confused? A bounded adversary
#
# Look again at the domain accuracy in section 6. If it dips far *below* 0.5, the domain head was
# not confused but **fooled**: it was confidently wrong, calling source clips target and target
# clips source. The reversed cross-entropy rewards exactly that, without limit, so the encoder can
# keep the domains apart and merely swap them, and the two heads chase each other from epoch to
# epoch. What we want is a head that *cannot tell*.
#
# The **domain-confusion** loss (Tzeng et al. 2015) asks the encoder for that and nothing more:
# make the head's guess 50/50. Its cross-entropy against a uniform guess is lowest at 50/50 and no
# lower when the head is fooled. The domain head still learns from its own cross-entropy; only the
# encoder's push changes. In serlib it is one option of the same DANN:
# `serlib train --model dann --adversary confusion` (`adversary="confusion"` in Python).

# %%
RUNS |= course.ensure_runs(["dann-confusion"], COURSE, retrain=RETRAIN)
RUN_CONFUSION = RUNS["dann-confusion"]
fig = plots.plot_domain_accuracy(
    {
        "gradient reversal (section 5)": history,
        "domain confusion": results.read_history(RUN_CONFUSION),
    }
)
course.save_and_show(fig, "03_domain_accuracy_confusion")
print(findings.domain_accuracy(RUN_CONFUSION))

# %%
comparison = results.results_table(
    {"CRNN (02)": RUNS["crnn"], "DANN-CRNN (03)": RUN, "DANN-CRNN, confusion": RUN_CONFUSION}
)
display(results.wide_results(comparison))
fig = plot_results_bars(
    comparison,
    chance=1 / len(LABELS),
    oracle=oracle_ua,
    title="gradient reversal vs domain confusion: UA",
)
course.save_and_show(fig, "03_results_confusion")

# %% [markdown]
# Read the source and target bars together: an adversary that raises the target score while
# lowering the source score has also removed cues the emotions needed (loudness, for instance, is
# an emotion cue, and notebook 01 measured how it differs between the corpora). One seed is one draw:
# rerun with other `SEED`s before reading much into a difference of a few points. Notebook 05
# tries a simpler fix for the part of the shift that lies in the input levels: standardising each
# domain with its own statistics.
#
# ## 9. Explore both models
#
# The explorer lets you switch between the runs and click any cell to list and hear its clips;
# *compare* puts a second run beside the first, so the same cell (say, true *sad* predicted
# *neutral*) can be read before and after adaptation, clip by clip. The picture under the widget
# shows what it displays (the CRNN's biggest target confusion, in both runs) for readers of the
# saved notebook.

# %%
explorer = ConfusionExplorer.from_run_dirs(
    {"crnn": RUNS["crnn"], "dann": RUN, "dann-confusion": RUN_CONFUSION},
    max_clips=6,
    compare="dann",
)
explorer.set_picker.value = "target_test"
display(explorer.widget)
course.save_and_show(explorer.picture(clips=3), "03_explorer")

# %% tags=["findings"]
findings.report(findings.dann_findings(RUNS), title="What we found")

# %% [markdown] tags=["exercise"]
# ## Exercises
#
# Each exercise says how long it takes on a 2-core laptop. For a *predict, then run*
# exercise, write your prediction down before you run anything: the answer is worth only
# the prediction you made first. Worked answers, with their reasoning and code:
# [`solutions/03_dann_solutions.ipynb`](solutions/03_dann_solutions.ipynb).
#
# ### Exercise 3a · predict, then run: DANN with its domain loss switched off
#
# *Time:* trains one DANN-CRNN, like `dann`: about 1 min on a 2-core laptop (workshop profile,
# synthetic corpora).
#
# `course.course_run("dann", COURSE.corpora, PROFILE, SEED, name="dann-no-domain-loss",
# domain_weight=0)` trains the same DANN with its domain loss weighted by zero. Which parts of the
# network still get a gradient from the domain loss, and what still reaches the model from the
# target audio? Predict its target test UA against the CRNN's and the DANN-CRNN's, then check with
# `findings.gap_recovered` and `findings.ua_change`.

# %% [markdown] tags=["exercise"]
# ### Exercise 3b · predict, then run: a GRL cap of 0
#
# *Time:* trains one DANN-CRNN, like `dann`: about 1 min on a 2-core laptop (workshop profile,
# synthetic corpora).
#
# With `grl_cap=0` (in its own run folder, `name="dann-grl-cap-0"`) the reversal coefficient never
# leaves zero. Which weights still learn from the domain loss, and which do not? Predict the domain
# head's training accuracy over the epochs, then compare it with the DANN-CRNN's
# (`findings.domain_accuracy`).

# %% [markdown] tags=["exercise"]
# ### Exercise 3c · explain: fooled is not confused
#
# *Time:* a minute or less (no training).
#
# Section 8 calls a domain head whose accuracy is well below 0.5 "fooled". Explain why a head that
# is almost always wrong still shows that the domains are separable. From each run's `history.csv`,
# compute per epoch how separable the domains were, whichever way round the head answered.

# %% [markdown] tags=["exercise"]
# ### Exercise 3d · extend: which epoch was kept?
#
# *Time:* a minute or less (no training).
#
# A run keeps the epoch with the best source validation UA (`metrics.json`, key `selection`). Write
# a finding that names the kept epoch and the domain head's state at that epoch (confused, fooled
# or never fooled), for both adversaries. Why does it matter for what the adversary did to the
# model you evaluate?

# %% [markdown]
# **Next:** notebook 04 swaps the CRNN for a Wav2Vec2 speech encoder, with and without DANN.
