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
# # 03 · Solutions: DANN
#
# Worked answers to the exercises at the end of [notebook 03](../03_dann.ipynb). Try each exercise
# before you read its answer: a *predict, then run* exercise is worth only the prediction you
# wrote down first.
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
# Parameters: as in notebook 03 (tiny = seconds, workshop = a laptop, full = a GPU; None = the
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
import pandas as pd
from IPython.display import display

from serlib import course, findings, results
from serlib.course_plan import expected_time
from serlib.run_findings import DOMAIN_CHANCE_BAND, name_of

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
RUNS = course.ensure_runs(["crnn", "oracle", "dann", "dann-confusion"], COURSE)


def dann_variant(*, name: str, **options) -> str:
    """Train (or reuse) a DANN-CRNN with changed options in its own run folder ``name``."""
    if RETRAIN or not (course.run_dir(name, PROFILE, SEED, COURSE.tag) / "metrics.json").is_file():
        print(f"training {name}, one DANN-CRNN: {expected_time('dann', PROFILE)}")
    return course.course_run(
        "dann", COURSE.corpora, PROFILE, SEED, name=name, retrain=RETRAIN, **options
    )


# %% [markdown]
# ## Exercise 3a · predict, then run: DANN with its domain loss switched off
#
# **Reasoning.** `domain_weight=0` multiplies the domain loss by zero: neither the domain head nor,
# through the reversal, the encoder gets any gradient from it. What is left of DANN is its
# batches: every step still runs labelled source clips *and* unlabelled target clips through the
# network together, so batch norm normalises with statistics of both domains. The control
# therefore separates two things DANN does at once: seeing target audio in batch norm, and the
# adversary. If the control's target score is close to DANN's, the adversary is not what moved it.
# The domain head of the control never learns, so its accuracy says nothing.

# %%
RUNS["dann-no-domain-loss"] = dann_variant(name="dann-no-domain-loss", domain_weight=0.0)
control, dann, crnn, oracle = (
    RUNS[name] for name in ("dann-no-domain-loss", "dann", "crnn", "oracle")
)
print(findings.gap_recovered(crnn, control, oracle))
print(findings.gap_recovered(crnn, dann, oracle))
print(findings.ua_change(control, dann, "target_test"))
print(findings.source_cost(crnn, control))

# %% [markdown]
# **What to look for.** The first line is what mixed batches alone recover, the second what the
# full DANN recovers, the third how much the adversary adds on top of the control. Set the third
# beside the seed spread of exercise 2a before calling it a gain.

# %% [markdown]
# ## Exercise 3b · predict, then run: a GRL cap of 0
#
# **Reasoning.** With `grl_cap=0` the reversal coefficient stays at zero, so the encoder gets no
# gradient from the domain loss, but the domain head *does* (its weights sit after the GRL). The
# head becomes an observer: it learns to tell the domains apart in features the encoder is free
# to keep domain-specific. Its training accuracy should rise well above 0.5 and stay there; how
# high is a measure of how separable the domains are without an adversary. The emotion scores
# should sit near the control of exercise 3a (both see mixed batches, neither pushes the encoder).

# %%
RUNS["dann-grl-cap-0"] = dann_variant(name="dann-grl-cap-0", grl_cap=0.0)
observer = RUNS["dann-grl-cap-0"]
print(findings.grl_ramp(observer, 0.0))
print(findings.domain_accuracy(observer))
print(findings.domain_accuracy(dann))
print(findings.ua_change(observer, dann, "target_test"))

# %% [markdown]
# **What to look for.** Compare the two domain-accuracy lines: the observer shows how easily the
# domains are told apart when nothing hides them, DANN's line how much of that the reversal took
# away (or turned into a fooled head, exercise 3c).

# %% [markdown]
# ## Exercise 3c · explain: fooled is not confused
#
# **Reasoning.** A domain head that is right a share *q* of the time can be turned into one that is
# right 1 - *q* of the time by swapping its two answers. So a head that is right one time in ten
# is as informative as one that is right nine times in ten: the domains are still separable, only
# with their names swapped. What measures how
# separable the domains are is max(*q*, 1 - *q*), and only a value near 0.5 means the head
# cannot tell. The table computes it per epoch from each run's `history.csv`.

# %%
for name in ("dann", "dann-confusion"):
    history = results.read_history(RUNS[name])
    accuracy = history["train_domain_acc"]
    informative = pd.concat([accuracy, 1 - accuracy], axis=1).max(axis=1)
    display(
        pd.DataFrame(
            {
                "epoch": history["epoch"],
                "domain accuracy": accuracy,
                "answers swapped": 1 - accuracy,
                "max of the two": informative,
            }
        )
        .set_index("epoch")
        .round(3)
    )
    last = float(informative.iloc[-1])
    state = (
        "cannot tell the domains apart: it is confused"
        if last - 0.5 <= DOMAIN_CHANCE_BAND
        else "still separates the domains, whichever way round it answers"
    )
    print(
        f"{course.COURSE_RUNS[name]}: in the last epoch the head's answers, read the better way "
        f"round, are right {last:.2f} of the time (confused means within {DOMAIN_CHANCE_BAND} of "
        f"0.5): the head {state}"
    )

# %% [markdown]
# **The point a good answer makes.** The reversed cross-entropy keeps rewarding the encoder as the
# head gets *more* wrong, without limit, so the encoder can keep the domains apart and merely swap
# them; the two heads then chase each other. The confusion loss is lowest at a 50/50 guess and
# no lower beyond it, so it asks for exactly "cannot tell", which is what alignment needs.

# %% [markdown]
# ## Exercise 3d · extend: which epoch was kept, and where was the domain head then?
#
# **Reasoning.** The run keeps the epoch with the best *source* validation UA
# (`metrics.json`, `selection`), not the last one. The domain head's state at that epoch is what
# the kept model was trained against, so a finding about the adversary should read that row of
# `history.csv`.


# %%
def kept_epoch_finding(run) -> str:
    """The kept epoch (best source validation UA) and the domain head's accuracy at it."""
    selection = results.read_metrics(run)["selection"]
    history = results.read_history(run).set_index("epoch")
    epoch = selection["best_epoch"]
    accuracy = float(history.loc[epoch, "train_domain_acc"])
    if abs(accuracy - 0.5) <= DOMAIN_CHANCE_BAND:
        state = "confused (near 0.5)"
    elif accuracy < 0.5:
        state = "fooled (well below 0.5: the domains still separable, names swapped)"
    else:
        state = "not fooled (well above 0.5: it told the domains apart)"
    return (
        f"{name_of(run)} kept epoch {epoch} of {selection['epochs_run']} (source validation "
        f"UA {selection['best_val_ua']:.3f}); its domain head was {state} at that epoch "
        f"({accuracy:.2f})"
    )


for name in ("dann", "dann-confusion", "dann-grl-cap-0"):
    print(kept_epoch_finding(RUNS[name]))

# %% [markdown]
# **What to look for.** If the kept epoch is early, before the reversal reached its cap, the
# model you evaluate saw little of the adversary, whatever the later epochs did. Compare the kept
# epoch with the epoch at which the ramp reaches its cap (the `grl_ramp` finding of notebook 03).
