"""The two synthetic domains: an IEMOCAP-like natural one and a RAVDESS-like acted one.

Each knob mirrors a documented difference between the real corpora:

=====================  ===================================  ====================================
knob                   IEMOCAP-like (source)                RAVDESS-like (target)
=====================  ===================================  ====================================
emotion intensity      natural: weaker (0.9 on average),    acted: normal 1.0, strong 1.45,
                       varying utterance to utterance       little variation
cue consistency        single cues vary +-15 %              +-10 %
recording              one room: RT60 0.45-0.6 s, far mic,  studio: RT60 0.1-0.2 s, close mic,
                       pink noise ~20 dB below speech,      noise ~40 dB below speech, no hum
                       60 Hz hum
channel EQ             low cut 130-150 Hz, bump near 1 kHz, low cut 60-90 Hz, presence bump
                       roll-off (-5..-6 dB/oct) above       (+2..4 dB) near 4-6 kHz, flat top
                       2.5-3 kHz
level (neutral)        -28 dBFS                             -38 dBFS (as quiet as real RAVDESS)
files                  16 kHz                               48 kHz (synthesised at 16 kHz, soxr)
speakers               5 sessions x (1 F + 1 M)             24 actors, odd male
speech                 dialogue turns, 1-15 s, tight cuts   one 7-syllable sentence, ~1 s of
                                                            silence before and after (3-5 s)
class balance          IEMOCAP's (neutral and frustration   balanced (neutral half of the others)
                       common, happy rare)
=====================  ===================================  ====================================

The emotion cues themselves point the same way in both domains (anger is loud and high in both), so a
model can learn emotions that transfer; what changes is their strength and everything around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serlib.synth.room import Recording
from serlib.synth.speakers import Population


@dataclass(frozen=True)
class Domain:
    """Everything that makes one synthetic corpus sound like its real counterpart."""

    name: str
    file_rate: int
    """Sample rate of the written files."""
    population: Population
    intensity_mean: float
    """Average emotion intensity (1.0 = the full profiles of ``cues``)."""
    intensity_sd: float
    """Utterance-to-utterance spread of that intensity."""
    cue_spread: float
    """How independently single cues vary (see ``cues.vary``)."""
    f0_jitter_st: float
    """Utterance-to-utterance F0 variation unrelated to emotion (semitones)."""
    level_jitter_db: float
    """Utterance-to-utterance loudness variation unrelated to emotion (dB)."""
    rate_jitter: float
    """Utterance-to-utterance speaking-rate variation unrelated to emotion (log units)."""
    lead_s: tuple[float, float]
    """Uniform range of the silence before the speech."""
    trail_s: tuple[float, float]
    """Uniform range of the silence after it."""
    rt60_s: tuple[float, float]
    drr_db: tuple[float, float]
    noise_dbfs: tuple[float, float]
    noise_colour: float
    hum_dbfs: tuple[float, float]
    low_cut_hz: tuple[float, float]
    bump_hz: tuple[float, float]
    bump_db: tuple[float, float]
    high_cut_hz: tuple[float, float]
    high_cut_db_oct: tuple[float, float]
    speech_dbfs: float
    """Nominal active level of neutral speech."""
    setup_level_db: float
    """Spread of that level between recording setups (sessions, actors)."""

    def draw_recording(self, rng: np.random.Generator) -> Recording:
        """One recording setup of this domain (a session's room, an actor's studio session)."""

        def pick(bounds: tuple[float, float]) -> float:
            return float(rng.uniform(*bounds))

        return Recording(
            rt60_s=pick(self.rt60_s),
            drr_db=pick(self.drr_db),
            noise_dbfs=pick(self.noise_dbfs),
            noise_colour=self.noise_colour,
            hum_dbfs=pick(self.hum_dbfs),
            hum_hz=60.0,
            low_cut_hz=pick(self.low_cut_hz),
            bump_hz=pick(self.bump_hz),
            bump_db=pick(self.bump_db),
            high_cut_hz=pick(self.high_cut_hz),
            high_cut_db_oct=pick(self.high_cut_db_oct),
            speech_dbfs=self.speech_dbfs + float(rng.normal(0.0, self.setup_level_db)),
        )


IEMOCAP_DOMAIN = Domain(
    name="iemocap",
    file_rate=16_000,
    population=Population(
        f0_female_hz=(200.0, 18.0),
        f0_male_hz=(118.0, 12.0),
        accent_st=(3.2, 0.6),
        rate_syl_s=(4.8, 0.35),
        expressiveness=(0.85, 1.15),
        loudness_db=1.0,
    ),
    intensity_mean=0.9,
    intensity_sd=0.12,
    cue_spread=0.15,
    f0_jitter_st=0.6,
    level_jitter_db=1.0,
    rate_jitter=0.06,
    lead_s=(0.05, 0.35),
    trail_s=(0.1, 0.5),
    rt60_s=(0.45, 0.6),
    drr_db=(1.0, 4.0),
    noise_dbfs=(-52.0, -49.0),
    noise_colour=1.0,
    hum_dbfs=(-60.0, -57.0),
    low_cut_hz=(130.0, 150.0),
    bump_hz=(900.0, 1100.0),
    bump_db=(3.0, 4.0),
    high_cut_hz=(2500.0, 3000.0),
    high_cut_db_oct=(5.0, 6.0),
    speech_dbfs=-28.0,
    setup_level_db=0.5,
)
"""Natural dyadic sessions recorded in a room (Busso et al. 2008, IEMOCAP)."""

RAVDESS_DOMAIN = Domain(
    name="ravdess",
    file_rate=48_000,
    population=Population(
        f0_female_hz=(215.0, 20.0),
        f0_male_hz=(125.0, 14.0),
        accent_st=(3.6, 0.7),
        rate_syl_s=(4.5, 0.35),
        expressiveness=(0.9, 1.15),
        loudness_db=1.5,
    ),
    intensity_mean=1.0,
    intensity_sd=0.08,
    cue_spread=0.1,
    f0_jitter_st=0.4,
    level_jitter_db=0.8,
    rate_jitter=0.05,
    lead_s=(0.55, 1.05),
    trail_s=(0.7, 1.2),
    rt60_s=(0.1, 0.2),
    drr_db=(14.0, 20.0),
    noise_dbfs=(-78.0, -72.0),
    noise_colour=0.3,
    hum_dbfs=(-130.0, -130.0),
    low_cut_hz=(60.0, 90.0),
    bump_hz=(4000.0, 6000.0),
    bump_db=(2.0, 4.0),
    high_cut_hz=(7000.0, 7500.0),
    high_cut_db_oct=(0.5, 1.0),
    speech_dbfs=-38.0,
    setup_level_db=1.5,
)
"""Acted sentences recorded in a studio (Livingstone & Russo 2018, RAVDESS)."""

RAVDESS_STRONG_INTENSITY = 1.45
"""RAVDESS's "strong" intensity relative to "normal" (1.0)."""

DOMAINS = {"iemocap": IEMOCAP_DOMAIN, "ravdess": RAVDESS_DOMAIN}
