"""A small source-filter speech synthesiser: syllables in, a speech-like waveform out.

How a voice is made (Fant 1960, *Acoustic theory of speech production*; Klatt 1980, "Software for a
cascade/parallel formant synthesizer", JASA 67(3): 971-995):

1. **Source.** The vocal folds open and close once per pitch period. We make that buzz as a pulse train
   whose period follows the F0 contour, with cycle-to-cycle jitter (period) and shimmer (amplitude),
   and mix in aspiration noise for a breathy voice. Consonants add frication noise (/s/, /sh/, /f/)
   and short bursts (/t/, /k/).
2. **Filter.** The vocal tract is a tube whose resonances, the formants F1-F5, give each vowel its
   colour (/i/ has F1 low and F2 high; /a/ has F1 high). Formants glide between vowel targets and
   consonant loci, which is what makes syllables sound connected. A spectral tilt on top sets the voice
   quality: flat for a tense, pressed voice, steep for a lax, soft one.
3. **Prosody.** Syllables are grouped into phrases separated by pauses. F0 falls slowly through each
   phrase (declination), rises on stressed syllables (pitch accents) and rises or falls at the end.
   Stressed syllables are longer and louder.

The filter is applied frame by frame in the short-time Fourier domain (see ``dsp``): each 32 ms frame of
the excitation is multiplied by that frame's envelope. The result is clearly synthetic, in the way an
old formant synthesiser is, but has what matters for emotion recognition: harmonic voicing with
formants, syllable rhythm, pauses, noise consonants, and every cue listed in ``cues``.

What it is not: there are no words, no real phonotactics, no coarticulation beyond formant glides, and
no glottal-flow model beyond a smooth pulse. It is no substitute for real speech.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from serlib.synth import dsp
from serlib.synth.cues import EmotionCues
from serlib.synth.speakers import Speaker
from serlib.synth.syllables import CONSONANTS, SCHWA, VOWELS, Phrase

HIGHER_FORMANTS = (3500.0, 4500.0)
"""F4 and F5 of an average male voice; with F1-F3 they make the five-formant cascade."""

BANDWIDTHS = np.array([70.0, 100.0, 140.0, 220.0, 300.0])
"""Formant bandwidths in Hz (narrow = peaky, "ringing"; breathy voices widen F1)."""


MAX_ACCENT_ST = 7.0
"""The largest pitch accent in semitones, however wide an emotion makes the range."""

MAX_BREATHINESS_DB = -15.0
"""The loudest aspiration noise relative to the voicing (breathiness cues add up to at most this)."""


# --- timing: syllables -> segments on the 8 ms frame grid -------------------------------------------

NOMINAL_RATE = 4.7
"""Syllables per second that the base durations below produce; speakers and emotions scale them."""


@dataclass
class _Timeline:
    """Per-segment values collected while timing an utterance; turned into frame tracks at the end."""

    frames: list[int] = field(default_factory=list)
    voice: list[float] = field(default_factory=list)
    aspiration: list[float] = field(default_factory=list)
    frication: list[float] = field(default_factory=list)
    noise_hz: list[float] = field(default_factory=list)
    noise_bw: list[float] = field(default_factory=list)
    nasal: list[float] = field(default_factory=list)
    gain_db: list[float] = field(default_factory=list)
    anchors: list[tuple[float, ...]] = field(default_factory=list)
    """(frame, F1, F2, F3): formant targets that the tracks glide between."""
    syllables: list[tuple[int, int, int, bool, bool]] = field(default_factory=list)
    """(start, nucleus start, nucleus end, stressed, phrase-final) frame of each syllable."""
    phrases: list[tuple[int, int]] = field(default_factory=list)
    length: int = 0
    """Frames so far."""

    def add(
        self,
        n: int,
        voice: float = 0.0,
        aspiration: float = 0.0,
        frication: float = 0.0,
        noise_hz: float = 4000.0,
        noise_bw: float = 1.0,
        nasal: float = 0.0,
        gain_db: float = 0.0,
        formants: np.ndarray | None = None,
    ) -> None:
        """Append a segment of ``n`` frames; ``formants`` adds a target at its middle."""
        if formants is not None:
            self.anchors.append((self.length + n / 2.0, *formants))
        self.frames.append(n)
        self.voice.append(voice)
        self.aspiration.append(aspiration)
        self.frication.append(frication)
        self.noise_hz.append(noise_hz)
        self.noise_bw.append(noise_bw)
        self.nasal.append(nasal)
        self.gain_db.append(gain_db)
        self.length += n


def _frames(ms: float, scale: float, rng: np.random.Generator) -> int:
    """A duration in frames: ``ms`` stretched by ``scale`` and a random +-15 %, at least one frame."""
    return max(1, round(ms * scale * math.exp(rng.normal(0.0, 0.15)) * dsp.FRAME_RATE / 1000.0))


def _vowel_targets(vowel: str, articulation: float) -> tuple[np.ndarray, np.ndarray]:
    start, end = (np.asarray(t, dtype=float) for t in VOWELS[vowel])
    return (SCHWA + articulation * (start - SCHWA), SCHWA + articulation * (end - SCHWA))


def _add_consonant(
    timeline: _Timeline,
    symbol: str,
    vowel_formants: np.ndarray,
    slow: float,
    gain_db: float,
    aspirated: bool,
    rng: np.random.Generator,
) -> None:
    """Append one consonant's segments (closure, burst, aspiration, frication or murmur)."""
    c = CONSONANTS[symbol]
    locus = vowel_formants if c.locus is None else 0.4 * vowel_formants + 0.6 * np.asarray(c.locus)
    noise = dsp.db_to_gain(c.noise_db)
    if c.manner == "stop":
        closure = _frames(c.ms, slow, rng)
        timeline.add(closure, voice=0.12 if c.voiced else 0.0, gain_db=gain_db, formants=locus)
        burst = 1 + int(rng.random() < 0.5)
        timeline.add(
            burst, frication=noise, noise_hz=c.noise_hz, noise_bw=c.noise_bw, gain_db=gain_db
        )
        if aspirated and not c.voiced:
            timeline.add(_frames(35.0, slow, rng), aspiration=0.35, gain_db=gain_db)
    elif c.manner == "fricative":
        timeline.add(
            _frames(c.ms, slow, rng),
            voice=0.35 if c.voiced else 0.0,
            frication=noise,
            noise_hz=c.noise_hz,
            noise_bw=c.noise_bw,
            gain_db=gain_db,
            formants=locus,
        )
    elif c.manner == "aspirate":
        timeline.add(_frames(c.ms, slow, rng), aspiration=0.45, gain_db=gain_db, formants=locus)
    elif c.manner == "nasal":
        timeline.add(
            _frames(c.ms, slow, rng), voice=0.3, nasal=1.0, gain_db=gain_db, formants=locus
        )
    else:
        timeline.add(_frames(c.ms, slow, rng), voice=0.5, gain_db=gain_db, formants=locus)


def _time_utterance(
    phrases: Sequence[Phrase], speaker: Speaker, cues: EmotionCues, rng: np.random.Generator
) -> _Timeline:
    """Lay the syllables out in time: durations, pauses, loudness and formant targets."""
    timeline = _Timeline()
    slow = NOMINAL_RATE / (speaker.rate_syl_s * cues.rate)
    for index, phrase in enumerate(phrases):
        if index > 0:
            pause_ms = 220.0 * cues.pause * math.exp(rng.normal(0.0, 0.35))
            timeline.add(_frames(pause_ms, 1.0, rng))
        phrase_start = timeline.length
        for position, syllable in enumerate(phrase):
            final = position == len(phrase) - 1
            stretch = slow * (1.45 if final else 1.0)
            gain_db = rng.normal(0.0, 1.5 * cues.loudness_range)
            gain_db += 3.0 * cues.loudness_range * syllable.stressed - 2.5 * final
            start_formants, end_formants = _vowel_targets(syllable.vowel, cues.articulation)
            syllable_start = timeline.length
            for symbol in syllable.onset:
                aspirated = syllable.stressed
                _add_consonant(timeline, symbol, start_formants, slow, gain_db, aspirated, rng)
            vowel_ms = (150.0 if syllable.stressed else 85.0) + 30.0 * (syllable.vowel == "ay")
            vowel_frames = _frames(vowel_ms, stretch, rng)
            nucleus_start = timeline.length
            first = max(1, vowel_frames // 2)
            timeline.add(first, voice=1.0, gain_db=gain_db, formants=start_formants)
            timeline.add(
                vowel_frames - first + 1, voice=1.0, gain_db=gain_db, formants=end_formants
            )
            nucleus_end = timeline.length
            for symbol in syllable.coda:
                _add_consonant(timeline, symbol, end_formants, 0.8 * stretch, gain_db, False, rng)
            timeline.syllables.append(
                (syllable_start, nucleus_start, nucleus_end, syllable.stressed, final)
            )
        timeline.phrases.append((phrase_start, timeline.length))
    return timeline


# --- prosody: the F0 contour --------------------------------------------------------------------


def _f0_contour(
    timeline: _Timeline, speaker: Speaker, cues: EmotionCues, rng: np.random.Generator
) -> np.ndarray:
    """Per-frame F0 in Hz: level + declination + pitch accents + phrase ends + drift + tremor."""
    length = timeline.length
    t = np.arange(length, dtype=float)
    seconds = t / dsp.FRAME_RATE
    semitones = np.full(length, cues.f0_shift_st)
    accent = min(speaker.accent_st * cues.f0_range, MAX_ACCENT_ST)
    for start, end in timeline.phrases:
        span = slice(start, end)
        middle = 0.5 * (start + end) / dsp.FRAME_RATE
        duration = max(end - start, 1) / dsp.FRAME_RATE
        declination = -0.35 * accent * min(duration, 3.0)
        semitones[span] += declination * ((t[span] - start) / max(end - start, 1) - 0.5)
        semitones[span] += cues.f0_slope_st_s * (seconds[span] - middle)
    centres, widths, heights = [], [], []
    for start, n_start, n_end, stressed, final in timeline.syllables:
        if stressed:
            centres.append(n_start + (0.55 + 0.1 * rng.standard_normal()) * (n_end - n_start))
            widths.append(0.55 * max(n_end - start, 2))
            heights.append(accent * rng.uniform(0.55, 1.0))
        if final:
            rise = rng.random() < cues.final_rise
            ramp = np.clip((t - n_start) / max(n_end - n_start, 1), 0.0, 1.0)
            ramp[n_end + 12 :] = 0.0
            semitones += (0.9 if rise else -0.5) * accent * ramp * (t >= start)
    if centres:
        bumps = (t[:, None] - np.array(centres)) / np.array(widths)
        semitones += np.exp(-0.5 * bumps**2) @ np.array(heights)
    knots = np.arange(0, length + 32, 32)
    semitones += np.interp(t, knots, rng.normal(0.0, 0.45, knots.size))
    if cues.tremor_st > 0:
        semitones += cues.tremor_st * np.sin(2 * np.pi * 6.0 * seconds + rng.uniform(0, 2 * np.pi))
    return np.clip(speaker.f0_median_hz * 2.0 ** (semitones / 12.0), 55.0, 700.0)


# --- rendering ------------------------------------------------------------------------------------

_PULSE_DECAY = 5.0
"""The pulse train's harmonics fall as exp(-5 f / 8 kHz); the envelope undoes this below 6 kHz."""

_NOISE_LEVEL = 9.0
"""Scales unit white noise so that a flat noise envelope of 1 matches a harmonic of amplitude 1."""


def _glottal_pulses(
    f0_frames: np.ndarray, n_samples: int, jitter: float, shimmer: float, rng: np.random.Generator
) -> np.ndarray:
    """A smooth pulse train following F0, with per-cycle jitter and shimmer.

    Each sample is the closed-form sum of harmonics a**k cos(k*phase), so the pulse is band-limited
    (no aliasing buzz) whatever the pitch, and costs a cosine and a division per sample.
    """
    f0 = dsp.frames_to_samples(f0_frames, n_samples)
    cycles = np.cumsum(f0) / dsp.SAMPLE_RATE
    count = int(cycles[-1] * 1.25) + 3  # room for the cycles that jitter adds
    f0 = f0 * (1.0 + jitter * np.clip(rng.standard_normal(count), -3, 3)[cycles.astype(np.int64)])
    cycles = np.cumsum(f0) / dsp.SAMPLE_RATE
    cosine = np.cos(2 * np.pi * cycles)
    a = np.exp(-_PULSE_DECAY * f0 / (dsp.SAMPLE_RATE / 2))
    pulses = (a * cosine - a * a) / (1.0 - 2.0 * a * cosine + a * a)
    amplitude = 1.0 + shimmer * np.clip(rng.standard_normal(count), -3, 3)
    return pulses * amplitude[(cycles + 0.5).astype(np.int64)]


def _vocal_tract(formants: np.ndarray, bandwidths: np.ndarray, vocal_tract: float) -> np.ndarray:
    """Gain [frames, bins] of a cascade of resonators (each unity at 0 Hz), as a magnitude.

    |H(f)| = F^2 / sqrt((F^2 - f^2)^2 + (f B)^2) per formant, multiplied over F1-F5, plus the poles
    above F5 of a tube of this length (they lift the high frequencies, as in Fant's correction).
    Computed as a sum of logs in single precision (fast, and far from float32's range limits).
    """
    f2 = dsp.FREQUENCIES**2
    formants = formants.astype(np.float32)
    bandwidths = bandwidths.astype(np.float32)
    log_gain = np.broadcast_to(_higher_poles(vocal_tract), (formants.shape[0], f2.size)).copy()
    for k in range(formants.shape[1]):
        squared = formants[:, k : k + 1] ** 2
        log_gain += np.log(squared)
        log_gain -= 0.5 * np.log((squared - f2) ** 2 + f2 * bandwidths[:, k : k + 1] ** 2)
    return np.exp(log_gain)


def _higher_poles(vocal_tract: float) -> np.ndarray:
    """Log gain of the tube's resonances above F5 (wide, since losses grow with frequency)."""
    f2 = dsp.FREQUENCIES.astype(np.float64) ** 2
    gain = np.zeros_like(f2)
    for k in range(6, 13):
        pole = (2 * k - 1) * 500.0 * vocal_tract
        gain += np.log(pole**2) - 0.5 * np.log((pole**2 - f2) ** 2 + f2 * (0.4 * pole) ** 2)
    return gain.astype(np.float32)


def _formant_tracks(
    timeline: _Timeline, speaker: Speaker, cues: EmotionCues
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame F1-F5 and their bandwidths, gliding between the segments' targets."""
    length = timeline.length
    t = np.arange(length, dtype=float)
    anchors = np.asarray(timeline.anchors, dtype=float)
    scale = speaker.vocal_tract * (1.0 + cues.formant_shift)
    formants = np.empty((length, 5))
    for k in range(3):
        formants[:, k] = np.interp(t, anchors[:, 0], anchors[:, k + 1]) * scale
    formants[:, 3] = HIGHER_FORMANTS[0] * scale
    formants[:, 4] = HIGHER_FORMANTS[1] * scale
    formants[:, 2] = np.minimum(formants[:, 2], formants[:, 3] - 250.0)
    formants[:, 1] = np.maximum(formants[:, 1], formants[:, 0] + 200.0)
    nasal = dsp.smooth(np.repeat(np.asarray(timeline.nasal), timeline.frames), 3)
    breathy = max(0.0, cues.breathiness_db) / 8.0
    bandwidths = np.tile(BANDWIDTHS, (length, 1))
    bandwidths[:, 0] += 40.0 * breathy + 80.0 * nasal
    bandwidths[:, 1:3] *= (1.0 + 2.0 * nasal)[:, None]
    return formants, bandwidths


def _octaves_above(corner_hz: float) -> np.ndarray:
    """log2 of sqrt(1 + (f / corner)^2): 0 below the corner, one per octave above it."""
    return 0.5 * np.log2(1.0 + (dsp.FREQUENCIES / corner_hz) ** 2)


_DB = math.log(10.0) / 20.0  # dB -> natural-log amplitude
_PULSE_COMPENSATION = _PULSE_DECAY * np.minimum(dsp.FREQUENCIES, 6000.0) / (dsp.SAMPLE_RATE / 2)
_LOW_PASS = -((dsp.FREQUENCIES / 7200.0) ** 8)
# A fixed all-pass phase whose group delay grows from 0 to 2.5 ms across the band. The magnitude
# envelope alone is zero-phase, which would leave every glottal pulse a sharp spike (a peak level
# about 6 dB above real speech); delaying the high harmonics a little spreads each pulse over time
# the way the vocal tract's resonances do, at the cost of one multiply per frame.
_DISPERSION = np.exp(
    -1j * np.pi * 0.0025 * dsp.FREQUENCIES.astype(np.float64) ** 2 / (dsp.SAMPLE_RATE / 2)
).astype(np.complex64)
# Aspiration noise: weak below 1.5 kHz (-12 dB/oct high-pass), gently falling above.
_ASPIRATION_SHAPE = (
    -12.0 * _DB * np.log2(1.0 + (1500.0 / np.maximum(dsp.FREQUENCIES, 1.0)) ** 2) / 2
)
_ASPIRATION_SHAPE = _ASPIRATION_SHAPE - 3.0 * _DB * _octaves_above(1500.0)


@dataclass
class Speech:
    """A rendered utterance before the room: samples and what was said how."""

    samples: np.ndarray
    """Float64 samples at ``dsp.SAMPLE_RATE``, scaled to an active-speech RMS of 0.1 (-20 dBFS)."""
    voiced: np.ndarray
    """Per-frame bool: frames with a vowel or voiced consonant."""
    f0_hz: np.ndarray
    """Per-frame F0 contour (defined everywhere; meaningful where ``voiced``)."""
    n_syllables: int
    n_phrases: int

    @property
    def duration_s(self) -> float:
        return self.samples.size / dsp.SAMPLE_RATE

    def summary(self) -> dict[str, float]:
        """The prosody the utterance was rendered with, for the metadata sidecar.

        F0 median and 10th-90th percentile range (semitones) over the voiced frames, and syllables
        per second of speech, are the statistics ``serlib.analysis.acoustic_cues`` measures from
        the audio, so a measurement can be checked against the truth clip by clip.
        """
        f0 = self.f0_hz[self.voiced] if self.voiced.any() else self.f0_hz
        low, median, high = np.percentile(f0, [10, 50, 90])
        return {
            "n_syllables": self.n_syllables,
            "n_phrases": self.n_phrases,
            "speech_s": round(self.duration_s, 4),
            "syllable_rate": round(self.n_syllables / self.duration_s, 3),
            "f0_mean_hz": round(float(np.mean(f0)), 2),
            "f0_median_hz": round(float(median), 2),
            "f0_range_st": round(float(12.0 * np.log2(high / low)), 3),
            "f0_sd_st": round(float(np.std(12.0 * np.log2(f0 / np.mean(f0)))), 3),
        }


def render_speech(
    phrases: Sequence[Phrase], speaker: Speaker, cues: EmotionCues, rng: np.random.Generator
) -> Speech:
    """Synthesise ``phrases`` spoken by ``speaker`` with the emotion ``cues`` (clean, close-talking).

    Returns speech scaled to an active-speech level of -20 dBFS; loudness cues are applied later with
    the recording level, so that a quiet sad voice and a loud angry one keep their difference.
    """
    timeline = _time_utterance(phrases, speaker, cues, rng)
    length = timeline.length
    n_samples = (length - 1) * dsp.HOP + 1
    repeat = np.asarray(timeline.frames)

    gain_db = dsp.smooth(np.repeat(np.asarray(timeline.gain_db), repeat), 5)
    gain = dsp.db_to_gain(gain_db)
    voice = dsp.smooth(np.repeat(np.asarray(timeline.voice), repeat), 3) * gain
    # Capped so that even the breathiest voice keeps enough harmonic energy for a pitch tracker.
    breath = dsp.db_to_gain(min(speaker.breathiness_db + cues.breathiness_db, MAX_BREATHINESS_DB))
    aspiration = dsp.smooth(np.repeat(np.asarray(timeline.aspiration), repeat), 3) * gain
    aspiration = aspiration + breath * voice
    frication = dsp.smooth(np.repeat(np.asarray(timeline.frication), repeat), 3) * gain
    noise_hz = np.repeat(np.asarray(timeline.noise_hz), repeat)
    noise_bw = np.repeat(np.asarray(timeline.noise_bw), repeat)

    f0 = _f0_contour(timeline, speaker, cues, rng)
    pulses = _glottal_pulses(
        f0, n_samples, speaker.jitter * cues.jitter, speaker.shimmer * cues.shimmer, rng
    )
    noise = _NOISE_LEVEL * rng.standard_normal(n_samples)
    spectra = dsp.stft(np.stack([pulses, noise]))

    formants, bandwidths = _formant_tracks(timeline, speaker, cues)
    tract = _vocal_tract(formants, bandwidths, speaker.vocal_tract)
    tilt = (speaker.tilt_db_oct + cues.tilt_db_oct) * _DB * _octaves_above(300.0)
    voiced_shape = np.exp(tilt + _PULSE_COMPENSATION + _LOW_PASS).astype(np.float32)
    noise_shape = np.exp(_ASPIRATION_SHAPE + _LOW_PASS).astype(np.float32)
    envelope = tract * (voice.astype(np.float32)[:, None] * voiced_shape)
    spectrum = spectra[0] * envelope * _DISPERSION
    envelope = tract * (aspiration.astype(np.float32)[:, None] * noise_shape)
    rows = np.flatnonzero(frication > 1e-4)
    if rows.size:
        band = (dsp.FREQUENCIES - noise_hz[rows, None].astype(np.float32)) / noise_bw[rows, None]
        envelope[rows] += frication[rows, None].astype(np.float32) * np.exp(-0.5 * band**2)
    spectrum += spectra[1] * envelope
    samples = dsp.istft(spectrum, n_samples).astype(np.float64)

    voiced = np.repeat(np.asarray(timeline.voice), repeat) >= 0.3
    active = np.repeat(np.asarray(timeline.voice) + np.asarray(timeline.frication), repeat) > 0.05
    blocks = samples[: (length - 1) * dsp.HOP].reshape(-1, dsp.HOP)
    level = dsp.rms_db(blocks[active[:-1]] if active[:-1].any() else blocks)
    samples *= dsp.db_to_gain(-20.0 - level)
    return Speech(
        samples=samples,
        voiced=voiced,
        f0_hz=f0,
        n_syllables=sum(len(p) for p in phrases),
        n_phrases=len(phrases),
    )
