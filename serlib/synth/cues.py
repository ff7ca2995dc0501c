"""How each emotion changes a voice: the acoustic cues of the synthetic corpus, in readable numbers.

Listeners recognise emotions in speech from a handful of cues that decades of studies agree on, and the
synthesiser renders exactly those (values are changes relative to the same speaker's neutral voice):

- F0 (pitch) level, range and contour: up in anger, joy, fear and surprise, down in sadness; wide in
  joy and anger, narrow in sadness; rising phrase ends in joy and surprise, falling in sadness.
- Loudness: high in anger, raised in joy, low in sadness and calm.
- Speaking rate and pauses: fast in anger, fear and joy; slow, with long pauses, in sadness.
- Voice quality: spectral tilt (tense, "pressed" voices in anger keep more high-frequency energy; lax
  voices in sadness lose it), jitter and shimmer (cycle-to-cycle irregularity: raised in anger, fear
  and sadness), breathiness (raised in sadness and fear), and formant shifts (smiling raises formants).

Sources, summarised into the table below:

- Banse, R. & Scherer, K. R. (1996). Acoustic profiles in vocal emotion expression. Journal of
  Personality and Social Psychology 70(3), 614-636.
- Juslin, P. N. & Laukka, P. (2003). Communication of emotions in vocal expression and music
  performance: different channels, same code? Psychological Bulletin 129(5), 770-814 (Table 7 lists the
  direction of each cue per emotion across 104 speech studies).
- Scherer, K. R. (2003). Vocal communication of emotion: a review of research paradigms. Speech
  Communication 40, 227-256.
- Murray, I. R. & Arnott, J. L. (1993). Toward the simulation of emotion in synthetic speech. Journal of
  the Acoustical Society of America 93(2), 1097-1108.
- Gobl, C. & Ní Chasaide, A. (2003). The role of voice quality in communicating emotion, mood and
  attitude. Speech Communication 40, 189-212.
- Tartter, V. C. (1980). Happy talk: perceptual and acoustic effects of smiling on speech. Perception
  & Psychophysics 27(1), 24-27.

The sizes are our reading of those directions, chosen so that "full intensity" (1.0) sounds like clearly
acted emotion; ``scaled`` turns a profile up or down, which is how the natural (IEMOCAP-like) and
acted (RAVDESS-like) domains differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from serlib.errors import UserError


@dataclass(frozen=True)
class EmotionCues:
    """One emotion's acoustic profile, relative to the same speaker's neutral voice."""

    f0_shift_st: float = 0.0
    """Change of mean F0 in semitones (12 = an octave)."""
    f0_range: float = 1.0
    """Multiplies the size of pitch accents and declination (F0 variability)."""
    f0_slope_st_s: float = 0.0
    """Extra F0 trend across each phrase in semitones per second (< 0: falling, as in sadness)."""
    final_rise: float = 0.15
    """Probability that a phrase ends with a rising rather than falling pitch."""
    loudness_db: float = 0.0
    """Change of voice level in dB."""
    loudness_range: float = 1.0
    """Multiplies the syllable-to-syllable loudness variation."""
    rate: float = 1.0
    """Speaking-rate multiplier (> 1: more syllables per second)."""
    pause: float = 1.0
    """Multiplies the length and frequency of pauses between phrases."""
    tilt_db_oct: float = 0.0
    """Change of spectral slope in dB per octave (> 0: flatter, tense; < 0: steeper, lax)."""
    jitter: float = 1.0
    """Multiplies the speaker's cycle-to-cycle F0 perturbation."""
    shimmer: float = 1.0
    """Multiplies the speaker's cycle-to-cycle amplitude perturbation."""
    breathiness_db: float = 0.0
    """Change of the aspiration-noise level in dB."""
    formant_shift: float = 0.0
    """Relative shift of all formants (0.04 = 4 % higher, as when smiling)."""
    articulation: float = 1.0
    """Vowel-space size (> 1: hyper-articulated, < 1: reduced towards schwa)."""
    tremor_st: float = 0.0
    """Depth in semitones of a 6 Hz F0 tremor (fear)."""


NEUTRAL = EmotionCues()

# Which fields are ratios (scaled on a log axis) and which are differences (scaled linearly).
_RATIO_FIELDS = frozenset(
    {"f0_range", "loudness_range", "rate", "pause", "jitter", "shimmer", "articulation"}
)

EMOTION_CUES: dict[str, EmotionCues] = {
    "neutral": NEUTRAL,
    # Calm (RAVDESS): relaxed, a little lower, quieter, slower; the "tenderness" profile of J&L 2003.
    "calm": EmotionCues(
        f0_shift_st=-1.0,
        f0_range=0.8,
        loudness_db=-2.0,
        loudness_range=0.85,
        rate=0.92,
        pause=1.2,
        tilt_db_oct=-1.0,
        breathiness_db=2.0,
        articulation=0.95,
    ),
    # Joy/happiness: high, wide, rising F0; raised loudness; a bit faster; smiling raises formants.
    "happy": EmotionCues(
        f0_shift_st=6.0,
        f0_range=1.6,
        f0_slope_st_s=0.5,
        final_rise=0.45,
        loudness_db=4.5,
        loudness_range=1.2,
        rate=1.08,
        pause=0.85,
        tilt_db_oct=0.5,
        jitter=0.9,
        shimmer=0.9,
        breathiness_db=-2.0,
        formant_shift=0.05,
        articulation=1.1,
    ),
    # Excited (IEMOCAP): joy with higher activation.
    "excited": EmotionCues(
        f0_shift_st=6.0,
        f0_range=1.6,
        f0_slope_st_s=0.5,
        final_rise=0.45,
        loudness_db=6.0,
        loudness_range=1.3,
        rate=1.15,
        pause=0.75,
        tilt_db_oct=2.0,
        jitter=1.0,
        shimmer=1.0,
        breathiness_db=-1.0,
        formant_shift=0.04,
        articulation=1.12,
    ),
    # Hot anger: loud, high and variable F0, fast, tense (flat tilt), irregular, hyper-articulated.
    "angry": EmotionCues(
        f0_shift_st=3.5,
        f0_range=1.4,
        f0_slope_st_s=-0.5,
        final_rise=0.05,
        loudness_db=9.0,
        loudness_range=1.4,
        rate=1.15,
        pause=0.7,
        tilt_db_oct=4.5,
        jitter=1.6,
        shimmer=1.5,
        breathiness_db=-5.0,
        formant_shift=0.02,
        articulation=1.2,
    ),
    # Frustration (IEMOCAP): a milder, more controlled anger.
    "frustrated": EmotionCues(
        f0_shift_st=1.5,
        f0_range=1.15,
        f0_slope_st_s=-0.3,
        final_rise=0.1,
        loudness_db=3.0,
        loudness_range=1.15,
        rate=1.05,
        pause=0.9,
        tilt_db_oct=1.5,
        jitter=1.3,
        shimmer=1.2,
        breathiness_db=1.0,
        articulation=1.05,
    ),
    # Sadness: low, narrow, falling F0; quiet; slow with long pauses; lax, breathy, reduced vowels.
    # Declination and falling phrase ends already lower the pitch, so the extra fall is gentle: at
    # -1 st/s over sadness's long, slow phrases it spanned more semitones than neutral's whole
    # range, and measured sad clips were not narrow. The steep tilt outweighs the (high-frequency)
    # breath noise, so that a lax sad voice measurably loses high frequencies.
    "sad": EmotionCues(
        f0_shift_st=-3.0,
        f0_range=0.5,
        f0_slope_st_s=-0.15,
        final_rise=0.03,
        loudness_db=-6.0,
        loudness_range=0.7,
        rate=0.72,
        pause=1.8,
        tilt_db_oct=-4.0,
        jitter=1.3,
        shimmer=1.3,
        breathiness_db=3.0,
        formant_shift=-0.02,
        articulation=0.8,
        tremor_st=0.15,
    ),
    # Surprise: very wide F0 with rising ends, raised loudness.
    "surprised": EmotionCues(
        f0_shift_st=6.0,
        f0_range=1.8,
        f0_slope_st_s=1.0,
        final_rise=0.8,
        loudness_db=3.0,
        loudness_range=1.2,
        rate=1.0,
        tilt_db_oct=1.0,
        formant_shift=0.02,
        articulation=1.1,
    ),
    # Fear: high but narrow F0 with tremor, fast, breathy and irregular.
    "fearful": EmotionCues(
        f0_shift_st=5.0,
        f0_range=0.85,
        f0_slope_st_s=0.3,
        final_rise=0.35,
        loudness_db=1.0,
        rate=1.2,
        pause=1.2,
        tilt_db_oct=0.0,
        jitter=1.8,
        shimmer=1.5,
        breathiness_db=4.0,
        articulation=0.95,
        tremor_st=0.5,
    ),
    # Disgust: lowered F0, slow, creaky (irregular), slightly lowered formants.
    "disgust": EmotionCues(
        f0_shift_st=-1.5,
        f0_range=1.1,
        f0_slope_st_s=-0.5,
        final_rise=0.05,
        loudness_db=0.5,
        rate=0.85,
        pause=1.2,
        tilt_db_oct=0.5,
        jitter=1.6,
        shimmer=1.4,
        breathiness_db=1.0,
        formant_shift=-0.02,
    ),
}
"""Full-intensity cue profiles of every emotion the two layouts use."""

IEMOCAP_EMOTIONS = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "ang": "angry",
    "sad": "sad",
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgust",
    "oth": "other",
    "xxx": "no agreement",
}
"""IEMOCAP's label codes and what each means ("oth" and "xxx" are rendered as ambiguous blends)."""

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
"""RAVDESS's emotions, in the order of its file-name codes 01..08."""


def cue_profile(emotion: str) -> EmotionCues:
    """The full-intensity profile of ``emotion`` (an EMOTION_CUES name or an IEMOCAP code)."""
    name = IEMOCAP_EMOTIONS.get(emotion, emotion)
    if name not in EMOTION_CUES:
        known = sorted(EMOTION_CUES) + sorted(
            k for k in IEMOCAP_EMOTIONS if k not in ("oth", "xxx")
        )
        raise UserError(f"unknown emotion {emotion!r}; choose one of {', '.join(known)}")
    return EMOTION_CUES[name]


def scaled(cues: EmotionCues, intensity: float) -> EmotionCues:
    """Move a profile towards neutral (intensity < 1) or beyond it (> 1).

    Differences (semitones, dB) scale linearly and ratios (rate, range) on a log axis, so that
    intensity 0 is always exactly neutral and 2 doubles every deviation.
    """
    values = {}
    for item in fields(EmotionCues):
        value, base = getattr(cues, item.name), getattr(NEUTRAL, item.name)
        if item.name in _RATIO_FIELDS:
            values[item.name] = base * (value / base) ** intensity
        else:
            values[item.name] = base + intensity * (value - base)
    values["final_rise"] = min(max(values["final_rise"], 0.0), 1.0)
    return EmotionCues(**values)


def blend(first: EmotionCues, second: EmotionCues, weight: float) -> EmotionCues:
    """A mixture of two profiles (``weight`` of ``second``), for utterances raters disagree on."""
    values = {}
    for item in fields(EmotionCues):
        a, b = getattr(first, item.name), getattr(second, item.name)
        if item.name in _RATIO_FIELDS:
            values[item.name] = a ** (1.0 - weight) * b**weight
        else:
            values[item.name] = (1.0 - weight) * a + weight * b
    return EmotionCues(**values)


def vary(cues: EmotionCues, rng: np.random.Generator, spread: float) -> EmotionCues:
    """Scale each cue's deviation from neutral by its own random factor exp(N(0, spread)).

    Natural speech does not move all cues together: one angry utterance is loud but not fast, another
    fast but not loud. ``spread`` 0 keeps the profile; 0.3 lets single cues vary by about 30 %.
    """
    if spread <= 0:
        return cues
    factors = np.exp(rng.normal(0.0, spread, len(fields(EmotionCues))))
    values = {}
    for item, factor in zip(fields(EmotionCues), factors, strict=True):
        value, base = getattr(cues, item.name), getattr(NEUTRAL, item.name)
        if item.name in _RATIO_FIELDS:
            values[item.name] = base * math.exp(math.log(value / base) * factor)
        elif item.name == "final_rise":
            values[item.name] = min(max(base + (value - base) * factor, 0.0), 1.0)
        else:
            values[item.name] = base + (value - base) * factor
    return replace(cues, **values)


def as_dict(cues: EmotionCues, prefix: str = "cue_") -> dict[str, float]:
    """The profile as a flat dict (rounded), for the metadata sidecar."""
    return {prefix + item.name: round(float(getattr(cues, item.name)), 4) for item in fields(cues)}
