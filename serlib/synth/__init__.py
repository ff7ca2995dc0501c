"""The built-in synthetic emotional-speech corpus: IEMOCAP-like and RAVDESS-like, made offline.

Real emotional-speech corpora cannot ship with a course (IEMOCAP needs a licence request), so serlib
makes its own, in minutes, on a laptop:

>>> from serlib.synth import generate_corpus, render_clip
>>> root = generate_corpus("ravdess", "data/synth/ravdess", profile="tiny")   # doctest: +SKIP
>>> samples, sample_rate, params = render_clip("angry", speaker="M")           # doctest: +SKIP

**What it is.** Speech-like audio from a small formant synthesiser (``voice``): voiced nonsense
syllables (``syllables``) with harmonics and gliding formants, noise consonants, syllable rhythm and
pauses. Emotions are rendered with the cues the literature documents (``cues``: F0 level, range and
contour, loudness, speaking rate, spectral tilt, jitter, shimmer, breathiness), by speakers who
differ in pitch, vocal-tract length and expressiveness (``speakers``), recorded in a room or a studio
(``room``), written in the real IEMOCAP and RAVDESS layouts (``layouts``) so the ordinary corpus
loaders read them.

**Why two domains.** The IEMOCAP-like source and the RAVDESS-like target differ the way the real
corpora do (``domains``): natural, weaker, more variable emotion vs acted and strong; a reverberant,
noisy room with a coloured microphone vs a dry studio; 16 kHz vs 48 kHz files; IEMOCAP's class
imbalance vs RAVDESS's balance; dialogue turns vs one short sentence in long silences. A model trained
on the source loses accuracy on the target, and because the differences are mostly in the recording
rather than in the emotion cues, domain adaptation has something it can fix.

**What it is not.** It is not speech: there are no words, the voice is buzzy and the emotions are
cleaner and more uniform than any human's. Numbers measured on it teach how the pipeline behaves; they
say nothing about how well a model recognises real emotional speech.

**Knobs.** ``cues.EMOTION_CUES`` (each emotion's profile), ``domains.IEMOCAP_DOMAIN`` and
``domains.RAVDESS_DOMAIN`` (intensity, variability, room, noise, EQ, levels, silences, speakers),
``layouts.IEMOCAP_COUNTS`` / ``RAVDESS_ACTORS`` (corpus sizes per profile). Every clip's parameters are
written to ``synth_metadata.csv`` beside the corpus.
"""

from __future__ import annotations

from serlib.synth.corpus import (
    INFO_FILE,
    METADATA_FILE,
    SYNTH_VERSION,
    OutputFolderError,
    generate_corpus,
    render_clip,
)
from serlib.synth.cues import EMOTION_CUES, EmotionCues
from serlib.synth.domains import DOMAINS, Domain
from serlib.synth.layouts import LAYOUTS, plan
from serlib.synth.speakers import Speaker

__all__ = [
    "DOMAINS",
    "EMOTION_CUES",
    "INFO_FILE",
    "LAYOUTS",
    "METADATA_FILE",
    "OutputFolderError",
    "SYNTH_VERSION",
    "Domain",
    "EmotionCues",
    "Speaker",
    "generate_corpus",
    "plan",
    "render_clip",
]
