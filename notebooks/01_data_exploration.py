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
# studio). This course reproduces a published study of exactly that setting, says what it changes
# and why, and measures every step. Before training anything we look at the data, because most of
# what goes wrong later is visible here.
#
# **What you will learn**
# - which study the course reproduces, what it reported, and what serlib does differently;
# - how a corpus becomes one table of utterances (path, speaker, gender, session/actor, emotion);
# - class balance per corpus and per label scheme, and why unweighted accuracy (UA) matters;
# - speakers, genders and clip durations, and why every split must be speaker-independent;
# - what a clip looks like as a waveform, a spectrogram and a log-mel spectrogram, and how a
#   log-mel is computed (by hand, checked against serlib's frontend);
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
# (None = the synthetic corpus), the seed, and where corpora and runs live (None = $SERLIB_HOME or
# ./data; in Colab, HOME = "/content/drive/MyDrive/serlib" keeps them on Google Drive).
import os

PROFILE = os.environ.get("SERLIB_PROFILE", "workshop")
SOURCE_ROOT = os.environ.get("SERLIB_IEMOCAP_DIR") or None
TARGET_ROOT = os.environ.get("SERLIB_RAVDESS_DIR") or None
SEED = int(os.environ.get("SERLIB_SEED", "0"))
HOME = None

# %%
import textwrap

import librosa
import pandas as pd
import torch
from IPython.display import Audio, display

from serlib import analysis, course, data_plots, findings, labels
from serlib.audio import load_audio
from serlib.corpora import load_corpus
from serlib.features import FrontendConfig, log_mel

COURSE = course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)
pd.set_option("display.width", 120)
CUE_CLIPS_PER_CLASS = {"tiny": 2, "workshop": 8, "full": 25}[PROFILE]

# %% [markdown]
# ## 0. The study this course reproduces
#
# The study trained three models on IEMOCAP and tested them on RAVDESS: a CRNN on log-mel
# spectrograms, the same CRNN with domain-adversarial training (DANN-CRNN), and a pretrained
# Wav2Vec2 encoder with DANN. Its reported accuracies, printed from `serlib.study`, are the
# numbers this course sets its own beside:

# %%
print(textwrap.fill(course.STUDY.description, 100))
reported = course.study_table()
display(reported)
print(textwrap.fill(reported.attrs["note"], 100))

# %% [markdown]
# serlib keeps the study's models (and, in the `full` profile, its training settings) and changes
# how the result is measured, because each of these choices changes the number being reported:

# %%
for what, change in course.study_changes().iterrows():
    print(f"{what.upper()}")
    for column in ("the study", "serlib", "why"):
        print(
            textwrap.fill(
                change[column], 100, initial_indent=f"  {column}: ", subsequent_indent="    "
            )
        )

# %% [markdown]
# Notebook 02 trains the CRNN, 03 the DANN-CRNN, 04 the Wav2Vec2 models, and 05 measures the
# study's label mapping and its protocol against serlib's. Every number from here on is printed
# by code from a run in front of you, never written into the text.
#
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
native_counts = (
    pd.concat({role: scan.table["emotion"].value_counts() for role, scan in scans.items()}, axis=1)
    .fillna(0)
    .astype(int)
)
display(native_counts)

# %% [markdown]
# ## 2. Label mapping: onto which classes?
#
# The two corpora do not even use the same labels. To train on one and test on the other, both
# are mapped onto shared classes by a **label scheme**. `4class` (angry, happy, neutral, sad) is the
# standard for cross-corpus work; the study used `seed5`, which adds *frustrated*.
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
# Plain accuracy (WA, weighted by class size) rewards a model that always answers the largest
# class: it scores that class's share of the clips, however large. **Unweighted accuracy** (UA,
# the mean of the per-class recalls) gives the same model one over the number of classes whatever
# the balance, which is why UA is the headline number of this course. Look at how unequal the
# bars are in each corpus, and whether the two corpora are unequal in the same way.

# %%
for scheme in ("4class", "seed5"):
    balance = {scan.corpus: labels.apply_scheme(scan.table, scheme) for scan in scans.values()}
    fig = data_plots.plot_class_balance(
        balance,
        column="label",
        labels=labels.scheme_labels(scheme),
        title=f"clips per class, {scheme}",
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
fig = data_plots.plot_durations(
    durations, source=COURSE.corpora["source"].name, target=COURSE.corpora["target"].name
)
course.save_and_show(fig, "01_durations")

# %% [markdown]
# ## 6. One clip, three pictures
#
# The **waveform** is what the microphone recorded. The **spectrogram** (short-time Fourier
# transform) shows energy over time and frequency, brighter where there is more: the evenly spaced
# lines are the harmonics of the voice's pitch, and the broad bright bands across them are the
# formants (the resonances of the vocal tract). The **log-mel spectrogram** squeezes the frequency
# axis onto the mel scale (fine at low frequencies, coarse at high ones, like the ear; its axis is
# labelled in Hz) and takes the logarithm (like loudness). A `[128, T]` log-mel image is exactly what
# the CRNN of notebook 02 reads. Both clips share one colour scale per row, so a quieter clip really
# looks darker.

# %%
example = {}
for role, scan in scans.items():
    angry = labels.apply_scheme(scan.table, "4class").query("label == 'angry'")
    clip = angry.sample(1, random_state=SEED).iloc[0]
    example[f"{role} ({clip['corpus']}): angry, {clip['speaker']}"] = load_audio(
        clip["path"], sample_rate=16000
    )
fig = data_plots.plot_clips(example, 16000, title="the same emotion in the two domains")
course.save_and_show(fig, "01_clips")

# %% [markdown]
# Same emotion, two domains: compare the background between syllables, and how loud and how high
# the voice is. Whatever differs between the two columns apart from the emotion is **domain
# shift**.
#
# ## 7. A log-mel spectrogram, by hand
#
# serlib's frontend (`serlib.features.log_mel`) is five steps. Cut the waveform into overlapping
# frames (`n_fft` samples, one every `hop_length`; the clip is padded by half a frame on each side
# so frame t is centred on sample t × hop), multiply each frame by a Hann window, take its Fourier
# transform and square the magnitude (the power spectrum), sum neighbouring frequencies with the
# mel filter bank, and convert to decibels with a floor `top_db` below the loudest cell. Here they
# are on the source clip above, then compared with serlib's own output.

# %%
config = FrontendConfig()
waveform = next(iter(example.values()))
x = torch.from_numpy(waveform)
half = config.n_fft // 2
padded = torch.nn.functional.pad(x, (half, half))  # zeros: frame t is centred on sample t * hop
window = torch.from_numpy(librosa.filters.get_window("hann", config.n_fft)).float()
spectrum = torch.stft(  # frames of n_fft samples every hop, each windowed, then an FFT
    padded, config.n_fft, config.hop_length, window=window, center=False, return_complex=True
)  # [n_fft // 2 + 1 frequencies, T frames]
power = spectrum.abs() ** 2
filters = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)
mel_power = torch.from_numpy(filters) @ power  # [n_mels, T]: each band sums nearby frequencies
decibels = 10 * torch.log10(mel_power.clamp_min(config.amin))  # the log, with a floor at amin
by_hand = torch.maximum(decibels, decibels.max() - config.top_db)  # nothing below peak - top_db

ours = torch.from_numpy(log_mel(waveform, config))
print(
    f"waveform {tuple(x.shape)} -> frames x frequencies {tuple(spectrum.T.shape)} -> log-mel {tuple(by_hand.shape)}"
)
print(
    f"serlib's log-mel: {tuple(ours.shape)}; largest difference {(by_hand - ours).abs().max().item():.2e} dB"
)
torch.testing.assert_close(by_hand, ours, rtol=0, atol=1e-5)
print("equal to serlib's frontend within 1e-5 dB")

# %% [markdown]
# ## 8. Listening
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
# ## 9. Acoustic cues per emotion, in both domains
#
# The literature documents the main cues, and the synthetic corpus is built to carry them:
# **anger** and **happiness** raise the pitch (F0), widen its range, and make speech louder and
# faster; **sadness** lowers and flattens pitch, and slows and softens speech; **neutral** sits in
# between; tense, aroused voices also keep more energy at high frequencies. We measure, per clip
# and on its speech frames only (pauses and the silence around a clip hold room noise, not voice):
# F0 median and range with `librosa.pyin` (a probabilistic pitch tracker), the voiced share of
# speech, loudness (RMS in dB), syllables per second (peaks of the vowel-band energy), the alpha
# ratio (energy above 1 kHz against below it: voice quality) and the spectral centroid
# (brightness). Women and men share each emotion's clips equally, because pitch differs more
# between them than between emotions. A pitch tracker can be wrong (octave jumps on low, breathy or
# reverberant voices), so a measured cue that disagrees with the design is a question about the
# corpus *or* about the measurement. The table gives the medians; the boxes show the spread and how
# many clips each holds.

# %%
both = pd.concat([labels.apply_scheme(scan.table, "4class") for scan in scans.values()])
cues = analysis.cue_table(both, per_class=CUE_CLIPS_PER_CLASS, seed=SEED)
if cues.attrs["skipped"]:
    print(f"{len(cues.attrs['skipped'])} clips skipped, e.g. {cues.attrs['skipped'][0]}")
cue_summary = analysis.cue_summary(cues)
display(cue_summary)

# %%
fig = data_plots.plot_cue_boxes(
    cues,
    source=COURSE.corpora["source"].name,
    target=COURSE.corpora["target"].name,
    shown=("f0_median_hz", "f0_range_st", "loudness_db", "syllable_rate", "alpha_ratio_db"),
    labels=labels.scheme_labels("4class"),
)
course.save_and_show(fig, "01_acoustic_cues")

# %% [markdown]
# Look for two things. **Within** each corpus: do the cues order the emotions as described above
# (sad lowest, angry and happy above neutral)? **Between** the corpora: does the same
# emotion sit at the same level in both? If the levels differ, a pitch or loudness that means
# "neutral" in one corpus means something else in the other, and a model that learned absolute
# levels on the source will misread the target: the shift that domain adaptation (notebook 03)
# tries to remove. The findings at the end of this notebook say what these measurements show.
#
# ## 10. Why the `seed5` mapping is a problem
#
# `seed5` adds a fifth class, *frustrated*. IEMOCAP has it (`fru`; section 1 counts its clips). The
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
    print(
        f"{corpus_name}: " + "; ".join(f"{k} <- {', '.join(v)}" for k, v in sorted(members.items()))
    )

# %%
seed5_target = labels.apply_scheme(scans["target"].table, "seed5")
display(pd.crosstab(seed5_target["emotion"], seed5_target["label"]))

# %% [markdown]
# Three problems follow from the mapping itself:
#
# 1. **Label shift, built in.** Source "frustrated" is irritation in conversation; target
#    "frustrated" is acted fear and disgust, voiced differently. The model is asked to call two
#    different things by one name, so target recall on this class measures the mapping, not the
#    model.
# 2. **Imbalance changes.** Calm and surprised inflate neutral and happy on the target only, so
#    the class priors the model learned on the source are wrong on the target.
# 3. **No standard to compare with.** Published cross-corpus results use the four shared classes,
#    so `seed5` numbers cannot be set beside them.
#
# The course therefore uses **`4class` by default** and keeps `seed5` only to reproduce the study
# and to measure, in notebook 05, what the mapping alone changes.

# %% tags=["findings"]
corpus_order = [COURSE.corpora["source"].name, COURSE.corpora["target"].name]
findings.report(analysis.cue_findings(cue_summary, corpus_order), title="What we found")

# %% [markdown] tags=["exercise"]
# ## Exercises
#
# Each exercise says how long it takes on a 2-core laptop. For a *predict, then run*
# exercise, write your prediction down before you run anything: the answer is worth only
# the prediction you made first. Worked answers, with their reasoning and code:
# [`solutions/01_data_exploration_solutions.ipynb`](solutions/01_data_exploration_solutions.ipynb).
#
# ### Exercise 1a · predict, then run: the emotion-intensity knob
#
# *Time:* a minute or less (no training).
#
# `serlib.synth.render_clip(emotion, speaker="F", domain="ravdess", intensity=..., seed=SEED)`
# renders one sentence of the target corpus with an emotion at a chosen strength (0 = neutral,
# 1 = the full profile of section 9); the same seed keeps the voice, the words and the room. Before
# running it, write down how the median F0, the F0 range, the loudness and the speaking rate of an
# *angry* and of a *sad* sentence should move as the intensity goes from 0 to 1. Then render both
# at three intensities, measure each clip with `analysis.acoustic_cues(waveform, rate)` and compare
# with what you wrote.

# %% [markdown] tags=["exercise"]
# ### Exercise 1b · explain: why UA and not plain accuracy?
#
# *Time:* a minute or less (no training).
#
# A lazy model answers the source's largest `4class` class for every clip. From the class-balance
# figures of section 3, what WA and what UA does it score on the source, and on the target? Check
# your answer with `serlib.metrics.weighted_accuracy` and `unweighted_accuracy`, and explain why
# the course compares corpora with UA.

# %% [markdown] tags=["exercise"]
# ### Exercise 1c · extend: can clip duration alone tell the emotion?
#
# *Time:* a minute or less (no training).
#
# Section 5 measured every clip's duration. Fit a classifier that sees only the duration (for
# example scikit-learn's `DecisionTreeClassifier(max_depth=2)`), score it with UA inside each
# corpus with folds by speaker (`GroupKFold`), then train it on the source and test it on the
# target. Print one sentence per score saying whether it is above chance, at chance or below. What
# would such a shortcut mean for a model that reads whole clips?

# %% [markdown]
# **Next:** notebook 02 trains the CRNN baseline on the source and tests it on the target.
