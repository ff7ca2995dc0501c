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
# # 01 · Data exploration: two emotional-speech corpora, two domains
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/serlib/serlib/blob/main/notebooks/01_data_exploration.ipynb)
#
# A speech-emotion model trained on one corpus (the **source**, IEMOCAP-like: dyadic, natural-ish
# speech in a noisy room) is tested on another (the **target**, RAVDESS-like: acted speech in a
# studio). Before training anything we look at the data, because most of what goes wrong later
# is visible here.
#
# **What you will learn**
# - how a corpus becomes one table of utterances (path, speaker, gender, session/actor, emotion);
# - class balance per corpus and per label scheme, and why unweighted accuracy (UA) matters;
# - speakers, genders and clip durations, and why every split must be speaker-independent;
# - what a clip looks like as a waveform, a spectrogram and a log-mel spectrogram (what the CRNN sees);
# - which acoustic cues carry emotion (pitch, loudness, rate) and how they differ between domains;
# - how labels are mapped onto common classes, and why the study's `seed5` mapping is a problem.
#
# Everything runs on the built-in **synthetic corpus** unless you point serlib at the real ones
# (`SERLIB_IEMOCAP_DIR`, `SERLIB_RAVDESS_DIR`).

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
# (None = the synthetic corpus), and the seed.
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Audio, display

from serlib import analysis, course, data_plots, labels
from serlib.audio import load_audio
from serlib.corpora import load_corpus

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT)
pd.set_option("display.width", 120)
CUE_CLIPS_PER_CLASS = {"tiny": 2, "workshop": 8, "full": 25}[PROFILE]

# %% [markdown]
# ## 1. The corpora as tables
#
# `course.setup` (above) found the two domains with `course.course_corpora`. With no real corpus
# configured it writes the synthetic ones (once per profile and seed) in the real IEMOCAP and RAVDESS
# folder layouts, so exactly the same loaders read them.

# %%
scans = {role: load_corpus(corpus.name, corpus.root) for role, corpus in COURSE.corpora.items()}
for role, scan in scans.items():
    print(f"{role}: {len(scan.table)} utterances, {len(scan.skipped)} files skipped")
    for skip in scan.skipped[:5]:
        print(f"   skipped {skip.path}: {skip.reason}")

# %%
source_table = scans["source"].table
target_table = scans["target"].table
source_prefix = f"{COURSE.corpora['source'].root}/"
display(source_table.head().assign(path=lambda t: t["path"].str.removeprefix(source_prefix)))

# %%
target_prefix = f"{COURSE.corpora['target'].root}/"
display(target_table.head().assign(path=lambda t: t["path"].str.removeprefix(target_prefix)))

# %% [markdown]
# Every corpus gives the same base columns: `path, corpus, speaker, gender, group, emotion`
# (`group` is the IEMOCAP session or the RAVDESS actor) plus what the corpus knows on top, such as
# the RAVDESS intensity. `emotion` is the corpus's **native** label. (Paths are shown relative to
# each corpus folder; the table holds absolute paths.)

# %%
native_counts = pd.concat(
    {role: scan.table["emotion"].value_counts() for role, scan in scans.items()}, axis=1
).fillna(0).astype(int)
display(native_counts)

# %% [markdown]
# ## 2. Label mapping: onto which classes?
#
# The two corpora do not even use the same labels. To train on one and test on the other, both
# are mapped onto shared classes by a **label scheme**. `4class` (angry, happy, neutral, sad) is the
# standard for cross-corpus work; the study we reproduce used `seed5`, which adds *frustrated*.
# These tables are the whole mapping: anything marked `(dropped)` is not used.

# %%
# NBVAL_CHECK_OUTPUT
for corpus_name in (course.SOURCE_CORPUS, course.TARGET_CORPUS):
    mapping = labels.mapping_table("4class", corpus_name).merge(
        labels.mapping_table("seed5", corpus_name), on="native"
    )
    print(f"{corpus_name}:")
    print(mapping.to_string(index=False))
    print()

# %% [markdown]
# ## 3. Class balance, per corpus and per scheme
#
# A corpus where half the clips are *neutral* lets a model that always answers "neutral" reach 50 %
# plain accuracy (WA). **Unweighted accuracy** (UA, the mean of the per-class recalls) gives that
# model 25 % on four classes, which is why UA is the headline number of this course.

# %%
for scheme in ("4class", "seed5"):
    balance = {scan.corpus: labels.apply_scheme(scan.table, scheme) for scan in scans.values()}
    fig = data_plots.plot_class_balance(
        balance, column="label", labels=labels.scheme_labels(scheme), title=f"clips per class, {scheme}"
    )
    course.save_and_show(fig, f"01_class_balance_{scheme}")

# %%
for scan in scans.values():
    dropped = labels.dropped_counts(scan.table, "4class")
    print(f"{scan.corpus}: 4class drops {sum(dropped.values())} clips: {dropped}")

# %% [markdown]
# ## 4. Speakers and genders
#
# Emotion and speaker identity are tangled: a model that has heard a speaker in training recognises
# *that voice* rather than the emotion. Every split in this course is **speaker-independent**
# (IEMOCAP by session, RAVDESS by actor), and gender balance matters because pitch, the strongest
# emotion cue, depends on it.

# %%
speakers = pd.concat(
    [
        scan.table.groupby(["corpus", "gender"])["speaker"].nunique().rename("speakers")
        for scan in scans.values()
    ]
).to_frame()
speakers["clips"] = pd.concat(
    [scan.table.groupby(["corpus", "gender"]).size() for scan in scans.values()]
)
display(speakers)

# %%
per_group = pd.concat(
    {scan.corpus: scan.table.groupby("group").size() for scan in scans.values()}
).rename("clips")
display(per_group.groupby(level=0).describe()[["count", "min", "mean", "max"]])

# %% [markdown]
# ## 5. Durations
#
# Clip lengths decide how we batch: the CRNN crops or pads to a fixed length, Wav2Vec2 takes the
# waveform as it is. Durations come from the file headers, so this is fast even on real corpora.

# %%
for scan in scans.values():
    seconds, problems = analysis.clip_durations(scan.table["path"].tolist())
    scan.table["duration"] = seconds
    if problems:
        print(f"{scan.corpus}: {len(problems)} unreadable files, e.g. {problems[0]}")
durations = pd.concat([scan.table[["corpus", "emotion", "duration"]] for scan in scans.values()])
display(durations.groupby("corpus")["duration"].describe().round(2))

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for corpus_name, rows in durations.groupby("corpus"):
    ax.hist(rows["duration"].dropna(), bins=30, alpha=0.6, label=corpus_name)
ax.set_xlabel("duration (s)")
ax.set_ylabel("clips")
ax.legend()
ax.set_title("clip durations")
course.save_and_show(fig, "01_durations")

# %% [markdown]
# ## 6. One clip, three pictures
#
# The **waveform** is what the microphone recorded. The **spectrogram** (short-time Fourier
# transform) shows energy over time and frequency: the evenly spaced lines are the harmonics of
# the voice's pitch, the dark bands the formants. The **log-mel spectrogram** squeezes the
# frequency axis onto the mel scale (fine at low frequencies, coarse at high ones, like the ear)
# and takes the logarithm (like loudness). A `[128, T]` log-mel image is exactly what the CRNN of
# notebook 02 reads.

# %%
example = {}
for role, scan in scans.items():
    angry = labels.apply_scheme(scan.table, "4class").query("label == 'angry'")
    clip = angry.sample(1, random_state=SEED).iloc[0]
    example[role] = (clip, load_audio(clip["path"], sample_rate=16000))

clip, waveform = example["source"]
fig = data_plots.plot_clip(waveform, 16000, title=f"source ({clip['corpus']}): angry, {clip['speaker']}")
course.save_and_show(fig, "01_clip_source")

# %%
clip, waveform = example["target"]
fig = data_plots.plot_clip(waveform, 16000, title=f"target ({clip['corpus']}): angry, {clip['speaker']}")
course.save_and_show(fig, "01_clip_target")

# %% [markdown]
# Same emotion, two domains: look at the background between syllables (room noise in the source,
# near silence in the studio target) and at how loud and how high the voice is. Those
# differences are the **domain shift**.
#
# ## 7. Listening
#
# One clip per class and domain. (The committed notebook does not embed audio, to stay small: run
# the cell to get the players.)

# %%
for role, scan in scans.items():
    mapped = labels.apply_scheme(scan.table, "4class")
    for label_name in labels.scheme_labels("4class"):
        rows = mapped[mapped["label"] == label_name]
        if rows.empty:
            continue
        clip = rows.sample(1, random_state=SEED).iloc[0]
        print(f"{role} · {label_name} · {clip['speaker']}")
        display(Audio(load_audio(clip["path"], sample_rate=16000)[: 16000 * 4], rate=16000))

# %% [markdown]
# ## 8. Acoustic cues per emotion, in both domains
#
# Decades of research agree on the main cues: **anger** and **happiness** raise the pitch (F0),
# widen its range, and make speech louder and faster; **sadness** lowers and flattens pitch, and
# slows and softens speech; **neutral** sits in between. We measure, per clip:
# F0 median and range with `librosa.pyin` (a probabilistic pitch tracker), loudness (RMS in dB),
# onsets per second (a proxy for the speaking rate) and the spectral centroid (brightness).

# %%
both = pd.concat([labels.apply_scheme(scan.table, "4class") for scan in scans.values()])
cues = analysis.cue_table(both, per_class=CUE_CLIPS_PER_CLASS, seed=SEED)
if cues.attrs["skipped"]:
    print(f"{len(cues.attrs['skipped'])} clips skipped, e.g. {cues.attrs['skipped'][0]}")
display(analysis.cue_summary(cues))

# %%
shown = ["f0_median_hz", "f0_range_st", "loudness_db", "onset_rate"]
long_cues = cues.melt(id_vars=["corpus", "label"], value_vars=shown, var_name="cue")
grid = sns.catplot(
    data=long_cues,
    x="label",
    y="value",
    hue="corpus",
    col="cue",
    kind="box",
    sharey=False,
    height=3.0,
    aspect=1.0,
    col_order=shown,
)
for ax, cue in zip(grid.axes.flat, shown, strict=True):
    ax.set_title(analysis.CUES[cue], fontsize=9)
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelrotation=45)
grid.figure.suptitle("acoustic cues per emotion: source vs target", y=1.03)
course.save_and_show(grid.figure, "01_acoustic_cues")

# %% [markdown]
# Within each corpus the cues order the emotions the same way (angry above sad), but the two
# domains sit at **different levels**: a pitch or loudness that means "neutral" in one corpus
# means something else in the other. A model that learned absolute levels on the source will
# misread the target. This is the shift that domain adaptation (notebook 03) tries to remove.
#
# ## 9. Why the `seed5` mapping is a problem
#
# `seed5` adds a fifth class, *frustrated*. IEMOCAP has it (`fru`, one of its largest classes). The
# acted target corpus has no frustration, so the study filled the class with **fearful and
# disgust** and folded **calm into neutral** and **surprised into happy**. Compare what the
# "same" class contains in each domain:

# %%
# NBVAL_CHECK_OUTPUT
for corpus_name in (course.SOURCE_CORPUS, course.TARGET_CORPUS):
    mapping = labels.label_mapping("seed5", corpus_name)
    members = {}
    for native, mapped in mapping.items():
        members.setdefault(mapped, []).append(native)
    print(f"{corpus_name}: " + "; ".join(f"{k} <- {', '.join(v)}" for k, v in sorted(members.items())))

# %%
seed5_target = labels.apply_scheme(scans["target"].table, "seed5")
display(pd.crosstab(seed5_target["emotion"], seed5_target["label"]))

# %% [markdown]
# Three problems follow:
#
# 1. **Label shift, built in.** Source "frustrated" is mild, low-arousal irritation in
#    conversation; target "frustrated" is acted fear and disgust, high-arousal and differently
#    voiced. The model is asked to call two different things by one name, so target recall on
#    this class measures the mapping, not the model.
# 2. **Imbalance changes.** Calm and surprised inflate neutral and happy on the target only, so
#    the class priors the model learned on the source are wrong on the target.
# 3. **No standard to compare with.** Published cross-corpus results use the four shared classes,
#    so `seed5` numbers cannot be set beside them.
#
# The course therefore uses **`4class` by default** and keeps `seed5` only to reproduce the study
# and to measure, in notebook 05, how much the mapping alone costs.
#
# **Next:** notebook 02 trains the CRNN baseline on the source and tests it on the target.
