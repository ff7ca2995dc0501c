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
# # 05 · Domain-shift analysis: what changed, what did not, and how to report it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/serlib/serlib/blob/main/notebooks/05_domain_shift_analysis.ipynb)
#
# Notebooks 02-04 trained the course's models and left their run folders behind. This notebook
# reads them (training any that are missing, so it also runs on its own) and asks *why* the numbers
# are what they are, then tries the simplest fixes beside the adversarial one.
#
# **What you will learn**
# - to look at embeddings with t-SNE, coloured by domain and by emotion, before and after DANN;
# - to measure how separable the domains are with the proxy A-distance, why it saturates, and
#   where it still says something (inputs against embeddings, source against target statistics);
# - which classes the domain shift hurts most (per-class recall shift);
# - what the `seed5` label mapping alone changes (an ablation);
# - why adapting on the test speakers (the study's transductive protocol) answers another question
#   than speaker-disjoint adaptation;
# - how far the simplest baselines, the target's own input or batch-norm statistics, get without
#   any adversary;
# - to report all models in one table: UA, WA and macro-F1 on source and target, against chance
#   and the oracle.

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
import pandas as pd
from IPython.display import display

from serlib import analysis, course, findings, plots, results, shift
from serlib.labels import scheme_labels
from serlib.result_plots import plot_results_bars

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
EMBEDDINGS_PER_SET = {"tiny": 60, "workshop": 300, "full": 600}[PROFILE]
LABELS = scheme_labels("4class")

# %% [markdown]
# ## 1. The runs of notebooks 02-04
#
# The same profile, seed and data always give the same run folders. `course.ensure_runs` reuses
# the finished ones and trains (saying how long that takes) the ones that are missing.

# %%
# the runs of notebooks 02-04 (reused when they exist; RETRAIN applies to this notebook's own runs;
# quiet: each named in one line, its notebook shows how it trained)
RUNS = course.ensure_runs(["crnn", "oracle", "dann", "w2v2", "w2v2-dann"], COURSE, quiet=True)
for name, folder in RUNS.items():
    print(f"{course.COURSE_RUNS[name]:<28} {course.short_path(folder)}")
oracle_ua = results.read_metrics(RUNS["oracle"])["target_test"]["ua"]

# %% [markdown]
# ## 2. Embeddings before and after DANN
#
# Every model maps a clip to an embedding (256 numbers for the CRNN) just before its emotion head.
# t-SNE draws those points in 2-D so that neighbours stay neighbours. We embed the **source test**
# and **target test** speakers, and colour the same map twice: by domain (left) and by emotion
# (right). DANN's aim is a left panel where the domains mix, while the right panel keeps emotions
# apart. Compare the two pairs of panels: do the domains mix more after DANN? Is each region still
# organised by emotion, which is what the emotion head needs? t-SNE keeps neighbourhoods, not
# distances, so read the pictures for structure; the lines under each figure count nearest
# neighbours in the embedding itself, and the next section measures separability.

# %%
for name, run in (("CRNN", RUNS["crnn"]), ("DANN-CRNN", RUNS["dann"])):
    vectors, clips = analysis.run_embeddings(run, max_per_set=EMBEDDINGS_PER_SET, seed=SEED)
    points = analysis.project_2d(vectors, seed=SEED)
    fig = plots.plot_embedding(
        points, clips["domain"], clips["label"], title=f"{name}: t-SNE of test embeddings"
    )
    course.save_and_show(fig, f"05_tsne_{name.lower()}")
    for line in shift.embedding_findings(vectors, clips, name):
        print(line)

# %% [markdown]
# ## 3. Proxy A-distance: how separable are the domains, and where?
#
# Train a linear classifier to tell source clips from target clips and measure its held-out error
# ε. The **proxy A-distance** is `2 (1 - 2ε)`: 0 when the domains cannot be told apart, 2 when they
# are perfectly separable (Ben-David et al.). A low distance is necessary for transfer, not
# sufficient: the emotions must also stay separable.
#
# **Why it saturates.** On a CRNN's 256-number embeddings, with a few hundred clips per domain, a
# linear probe needs only one consistent difference between the recordings (a noise floor, a
# level) to separate them without error. When it finds one, the distance sits at its ceiling of 2,
# whatever the rest of the features do, and cannot show whether adaptation moved the domains
# closer: a measure at its ceiling says "separable", and nothing about how much.
#
# So we measure it where the probe has less to work with, on the same test clips (`serlib.shift`):
#
# - on the **input**: each clip's standardised log-mel averaged over time, one number per mel band
#   (the clip's average spectrum, before any learned layer; it is the same for every model, so it
#   is measured once), and on each model's **embedding**;
# - with the target clips standardised by the **source** training speakers' statistics (what every
#   run does by default) and by the **target** adaptation speakers' own (their audio, never their
#   labels: what `serlib train --target-statistics` does).
#
# Look for the cells that are below the ceiling, and at what changes them: the statistics, the
# encoder, or DANN. Each run folder also stores the distance of its own embeddings
# (`metrics.json`), which the findings at the end compare for the CRNN and the DANN-CRNN.

# %%
distances = shift.distance_table(
    {"CRNN": RUNS["crnn"], "DANN-CRNN": RUNS["dann"]}, max_per_set=EMBEDDINGS_PER_SET, seed=SEED
)
display(
    distances.pivot_table(
        index=["place", "run"],
        columns="target standardised with",
        values="proxy A-distance",
        sort=False,
    ).round(3)
)
print(
    f"clips per domain: {distances['clips per domain'].iloc[0]} (the input rows hold for every run)"
)
for line in shift.distance_findings(distances):
    print("-", line)

# %% [markdown]
# ## 4. Per-class recall shift
#
# UA is the mean of the per-class recalls, so a drop in UA is a sum of per-class drops. Which
# classes pay for the domain shift? Each pair of bars is a class's recall on source test speakers
# and on target test speakers; the dashed line is chance. Look for the classes whose target bar
# falls to chance, and for the ones whose target bar rises above their source bar: a model that
# sends most target clips to one class gets a high recall on that class for free.

# %%
recalls = {}
for name in ("crnn", "dann"):
    scores = results.read_metrics(RUNS[name])
    label = course.COURSE_RUNS[name]
    recalls[f"{label} source"] = scores["source_test"]["recall"]
    recalls[f"{label} target"] = scores["target_test"]["recall"]
    print(f"{label}: recall per class, source test -> target test")
    display(
        analysis.recall_shift(
            scores["source_test"]["recall"], scores["target_test"]["recall"]
        ).round(3)
    )
fig = plots.plot_recall_shift(recalls, labels=LABELS)
course.save_and_show(fig, "05_recall_shift")
print(findings.recall_drop(RUNS["crnn"]))
print(findings.per_class_shift(RUNS["crnn"], RUNS["dann"], "target_test"))

# %% [markdown]
# ## 5. Ablation: the `seed5` label mapping
#
# Notebook 01 argued that `seed5` (adding *frustrated*, filled on the target with fearful and
# disgust) builds a label shift into the task. Here we measure it: the same CRNN, trained with
# `seed5` instead of `4class`. Chance UA is one over the number of classes, so it differs between
# the schemes; compare each UA with its own chance level, and look at the *frustrated* recall on
# the target.

# %%
RUNS |= course.ensure_runs(["crnn-seed5"], COURSE, retrain=RETRAIN)
ablation_rows = []
for scheme, run in (("4class", RUNS["crnn"]), ("seed5", RUNS["crnn-seed5"])):
    scores = results.read_metrics(run)
    n_classes = len(scores["source_test"]["labels"])
    ablation_rows.append(
        {
            "scheme": scheme,
            "classes": n_classes,
            "chance UA": 1 / n_classes,
            "source test UA": scores["source_test"]["ua"],
            "target test UA": scores["target_test"]["ua"],
            "target UA / chance": scores["target_test"]["ua"] * n_classes,
        }
    )
display(pd.DataFrame(ablation_rows).set_index("scheme").round(3))
seed5_recall = results.read_metrics(RUNS["crnn-seed5"])["target_test"]["recall"]
print(
    "seed5 target recall per class:",
    {k: None if v is None else round(v, 3) for k, v in seed5_recall.items()},
)
print(findings.label_scheme_finding(RUNS["crnn"], RUNS["crnn-seed5"]))

# %% [markdown]
# ## 6. Protocol: speaker-disjoint versus transductive adaptation
#
# Our DANN adapted on the target **adaptation** speakers and was tested on *other* target
# speakers: a model deployed on new speakers faces exactly that. The study adapted and tested on
# **all** of the target corpus, so the test speakers' own (unlabelled) audio shaped the features:
# a *transductive* protocol. Same model, same data, both protocols.
#
# The two answer different questions. The speaker-disjoint number is what to expect on speakers
# the model has never heard; the transductive number is the one to set beside the study's. Seeing
# the test speakers' audio during adaptation can make aligning *those* speakers easier, but one
# training run's noise (another data order, another epoch chosen on source validation) can be
# larger than that gain, so either row can come out ahead on one seed: rerun with other `SEED`s
# before reading anything into the difference, and always say which protocol a target number
# comes from.

# %%
RUNS |= course.ensure_runs(["dann-transductive"], COURSE, retrain=RETRAIN)
protocols = results.results_table(
    {"DANN, speaker-disjoint": RUNS["dann"], "DANN, transductive": RUNS["dann-transductive"]},
    sets={"target_test": "target test", "target_all": "all target"},
)
display(results.wide_results(protocols))
for name in ("dann", "dann-transductive"):
    print(
        f"{course.COURSE_RUNS[name]}: target_test = {results.read_metrics(RUNS[name])['target_test']['protocol']}"
    )
print(findings.ua_change(RUNS["dann"], RUNS["dann-transductive"], "target_test"))

# %% [markdown]
# ## 7. Simpler fixes: the target's own statistics
#
# Every model so far standardised the target's log-mels with the *source* training speakers' mean
# and deviation per mel band, so a target recorded quieter or brighter arrives shifted. The
# simplest unsupervised adaptation uses the target adaptation speakers' own statistics instead
# (their audio, never their labels; the test speakers stay unheard). A CRNN's training reads no
# target clip, so this needs no new training: the course scores notebook 02's trained CRNN again,
# with only its target inputs standardised differently. Section 3 measured what that does to the
# separability of the inputs; here is what it does to the scores.
#
# The same idea one level deeper is **AdaBN**: the CRNN's batch-norm layers remember the mean and
# variance of the *source* features they saw in training. After training, re-estimate them on the
# target adaptation speakers' audio (no label, no weight changed) and use them for target clips
# only: `serlib train --target-batchnorm`, `target_batchnorm=True` here.
#
# Compare each row's target score with the CRNN's, the DANN-CRNN's and the oracle's, and its
# source score with the CRNN's: a simple baseline belongs beside every adaptation method, and a
# method earns credit only for what it adds above it.

# %%
RUNS |= course.ensure_runs(
    ["crnn-target-statistics", "crnn-target-batchnorm"], COURSE, retrain=RETRAIN
)
fixes = results.results_table(
    {
        "CRNN (source statistics)": RUNS["crnn"],
        "CRNN + target statistics": RUNS["crnn-target-statistics"],
        "CRNN + target batch norm (AdaBN)": RUNS["crnn-target-batchnorm"],
        "DANN-CRNN": RUNS["dann"],
    }
)
display(results.wide_results(fixes))
for fix in ("crnn-target-statistics", "crnn-target-batchnorm", "dann"):
    print(findings.gap_recovered(RUNS["crnn"], RUNS[fix], RUNS["oracle"]))

# %% [markdown]
# **Try it.** Three more experiments take one option each, and belong beside the rows above
# before any of them is credited:
#
# - read both corpora the same way: trim the silence around each clip (`trim_db=40`,
#   `serlib train --trim-silence`) and standardise each clip with its own statistics
#   (`normalisation="utterance"`, `--normalisation utterance`), with no adaptation at all;
# - a control for DANN: the same DANN with its domain loss switched off (`domain_weight=0`),
#   where the target audio reaches the model only through batch norm over mixed batches;
# - a gentler adversary: the confusion loss at a lower domain weight (`adversary="confusion",
#   domain_weight=0.25`) on top of target statistics.
#
# Each is one call, e.g. `course.course_run("dann", COURSE.corpora, PROFILE, SEED,
# name="dann-control", domain_weight=0)`, and `findings.gap_recovered(RUNS["crnn"], run,
# RUNS["oracle"])` says what it recovered. What fixes one shift is not a fix for another: measure
# on the corpora you care about, over several seeds.
#
# ## 8. All models, one table
#
# UA (the headline), WA and macro-F1 on the source test speakers and on the held-out target test
# speakers. Model selection everywhere used source validation UA only; no target label was used
# for training or selection, except by the oracle, which is drawn as the dotted line and not as a
# model. Chance is one over the number of classes of each run's scheme.

# %%
final = course.course_results(PROFILE, SEED, COURSE.tag)
if final.attrs["missing"]:
    print("missing:", "; ".join(final.attrs["missing"]))
display(results.wide_results(final))
models = final[~final["model"].str.startswith(course.COURSE_RUNS["oracle"])]
chance = {
    model: 1 / len(results.read_metrics(folder)["target_test"]["labels"])
    for model, folder in course.course_run_dirs(PROFILE, SEED, COURSE.tag).items()
    if model in set(models["model"])
}
fig = plot_results_bars(
    models,
    chance=chance,
    oracle=oracle_ua,
    title=f"UA, {PROFILE} profile, seed {SEED}",
    note="transductive: adapted on the target test speakers",
)
course.save_and_show(fig, "05_results")

# %%
results_file = course.runs_root(PROFILE, SEED, COURSE.tag) / "results.csv"
final.to_csv(results_file, index=False)
print(f"results written to {course.short_path(results_file)}")

# %% [markdown]
# **Reading the table.** The gap between source and target UA is the cost of the domain shift;
# the share of the gap to the oracle that a method closes is the benefit of adaptation; the
# Wav2Vec2 rows show what that encoder adds (with the tiny offline encoder: what random features
# give, which is a baseline and not a result about pretraining). One seed is one draw: run several
# seeds before believing a difference of a few points. The findings below are computed from the
# runs above.

# %% tags=["findings"]
findings.report(
    findings.shift_findings(RUNS) + shift.distance_findings(distances), title="What we found"
)

# %% [markdown] tags=["exercise"]
# ## Exercises
#
# Each exercise says how long it takes on a 2-core laptop. For a *predict, then run*
# exercise, write your prediction down before you run anything: the answer is worth only
# the prediction you made first. Worked answers, with their reasoning and code:
# [`solutions/05_domain_shift_analysis_solutions.ipynb`](solutions/05_domain_shift_analysis_solutions.ipynb).
#
# ### Exercise 5a · predict, then run: read both corpora alike
#
# *Time:* trains one CRNN, like `crnn`: about 1 min on a 2-core laptop (workshop profile, synthetic
# corpora).
#
# The first experiment of section 7's "Try it": the CRNN with `trim_db=40` and
# `normalisation="utterance"`, in its own run folder (`name="crnn-read-alike"`). Before running,
# predict its target test UA against the CRNN with target statistics, and its source test UA
# against the plain CRNN. What happens when you add `target_statistics=True` as well, and why?

# %% [markdown] tags=["exercise"]
# ### Exercise 5b · predict, then run: a gentle adversary on top of target statistics
#
# *Time:* trains one DANN-CRNN, like `dann-confusion`: about 2 min on a 2-core laptop (workshop
# profile, synthetic corpora).
#
# The third experiment of section 7's "Try it": `course.course_run("dann", COURSE.corpora, PROFILE,
# SEED, name="dann-confusion-target-statistics", adversary="confusion", domain_weight=0.25,
# target_statistics=True)`. Against which run must the adversary be credited, and what do you
# expect it to add there? Check with `findings.ua_change`.

# %% [markdown] tags=["exercise"]
# ### Exercise 5c · explain: a class whose recall rises on the target
#
# *Time:* a minute or less (no training).
#
# In the recall-shift figure of section 4, a class's target recall can rise above its source recall
# while UA falls. Explain how, and check your explanation against the share of target clips the
# CRNN predicts as each class.

# %% [markdown] tags=["exercise"]
# ### Exercise 5d · extend: does target statistics help every target speaker?
#
# *Time:* a minute or less (no training).
#
# From the `predictions/target_test.csv` of the CRNN and of the CRNN with target statistics,
# compute each target test speaker's UA and print a finding that counts the speakers the target
# statistics helped, hurt and left unchanged (within 1 UA point). What would mixed results say
# about the shift?
