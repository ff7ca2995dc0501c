"""Synthetic speakers: the habitual voice that each emotion is then layered on.

Speakers differ the way real ones do, and these differences are what a speaker-independent split
tests: pitch (female voices about an octave-minus-a-fifth above male ones), the size of their pitch
accents, vocal-tract length (a shorter tract raises all formants; Peterson & Barney 1952, Hillenbrand
et al. 1995), speaking rate, voice quality, habitual loudness, and expressiveness (how strongly they
show emotion). A population describes where a corpus's speakers come from; ``draw_speaker`` samples one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from serlib.errors import UserError


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker's habitual (neutral) voice."""

    speaker_id: str
    gender: str
    """"F" or "M"."""
    f0_median_hz: float
    """Typical pitch of the neutral voice."""
    accent_st: float
    """Typical pitch-accent size in semitones (how melodic the speaker is)."""
    vocal_tract: float
    """Formant scale: 1.0 is an average male tract, about 1.17 an average female one."""
    rate_syl_s: float
    """Habitual articulation rate in syllables per second."""
    tilt_db_oct: float
    """Habitual spectral slope of the voice above about 300 Hz."""
    jitter: float
    """Cycle-to-cycle F0 perturbation (0.006 = 0.6 %)."""
    shimmer: float
    """Cycle-to-cycle amplitude perturbation (0.04 = 4 %)."""
    breathiness_db: float
    """Aspiration-noise level relative to the voicing, in dB."""
    loudness_db: float
    """Habitual level relative to the recording's nominal speech level."""
    expressiveness: float
    """Multiplies the intensity with which this speaker shows every emotion."""

    def as_dict(self) -> dict[str, float | str]:
        """The voice as a flat dict for the metadata sidecar (prefixed ``speaker_``)."""
        out: dict[str, float | str] = {}
        for key, value in asdict(self).items():
            name = key if key.startswith("speaker_") else f"speaker_{key}"
            out[name] = round(value, 4) if isinstance(value, float) else value
        return out


@dataclass(frozen=True)
class Population:
    """Where a corpus's speakers are drawn from: means and spreads of each voice property."""

    f0_female_hz: tuple[float, float]
    f0_male_hz: tuple[float, float]
    accent_st: tuple[float, float]
    rate_syl_s: tuple[float, float]
    expressiveness: tuple[float, float]
    """Uniform range."""
    loudness_db: float
    """Spread (standard deviation) of habitual level."""


def draw_speaker(
    speaker_id: str, gender: str, population: Population, rng: np.random.Generator
) -> Speaker:
    """Sample one speaker of ``gender`` from ``population``."""
    if gender not in ("F", "M"):
        raise UserError(f"gender must be 'F' or 'M', not {gender!r}")
    female = gender == "F"
    f0_mean, f0_spread = population.f0_female_hz if female else population.f0_male_hz
    return Speaker(
        speaker_id=speaker_id,
        gender=gender,
        f0_median_hz=float(np.clip(rng.normal(f0_mean, f0_spread), 0.7 * f0_mean, 1.3 * f0_mean)),
        accent_st=float(np.clip(rng.normal(*population.accent_st), 1.5, 6.0)),
        vocal_tract=float(rng.normal(1.17 if female else 1.0, 0.035)),
        rate_syl_s=float(np.clip(rng.normal(*population.rate_syl_s), 3.6, 6.0)),
        tilt_db_oct=float(rng.normal(-7.0 if female else -6.0, 1.0)),
        jitter=float(rng.uniform(0.004, 0.010)),
        shimmer=float(rng.uniform(0.03, 0.06)),
        breathiness_db=float(rng.normal(-27.0 if female else -31.0, 2.5)),
        loudness_db=float(rng.normal(0.0, population.loudness_db)),
        expressiveness=float(rng.uniform(*population.expressiveness)),
    )
