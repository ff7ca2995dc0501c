"""What the synthetic speakers say: English-like sounds, syllables and phrases, with no words.

A small inventory of vowels (their formant targets) and consonants (where their formants head and
what noise they make), syllables built from them, RAVDESS's two statements spelled as syllables,
and random nonsense phrases whose syllable and phrase lengths follow a speaker's tempo and an
emotion's pauses. ``voice`` turns these syllables into sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from serlib.synth.cues import EmotionCues
from serlib.synth.speakers import Speaker

VOWELS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # Adult male F1-F3 in Hz, Hillenbrand et al. (1995), JASA 97(5): 3099-3111; (start, end) targets.
    "iy": ((342, 2322, 3000), (330, 2350, 3020)),
    "ih": ((427, 2034, 2684), (430, 2000, 2680)),
    "ey": ((476, 2089, 2691), (360, 2250, 2900)),
    "eh": ((580, 1799, 2605), (560, 1820, 2600)),
    "ae": ((588, 1952, 2601), (640, 1850, 2600)),
    "aa": ((768, 1333, 2522), (740, 1300, 2520)),
    "ao": ((652, 997, 2538), (620, 980, 2520)),
    "ow": ((497, 910, 2459), (420, 880, 2400)),
    "uh": ((469, 1122, 2434), (460, 1150, 2430)),
    "uw": ((378, 997, 2343), (360, 950, 2300)),
    "ah": ((623, 1200, 2550), (610, 1220, 2550)),
    "er": ((474, 1379, 1710), (460, 1400, 1700)),
    "ax": ((500, 1500, 2500), (500, 1500, 2500)),
    "ay": ((768, 1333, 2522), (430, 2000, 2680)),
}
"""Vowel formant targets (F1, F2, F3) at the start and end of the vowel; diphthongs glide."""

SCHWA = np.array([500.0, 1500.0, 2500.0])
"""The centre of the vowel space: reduced (sad) speech moves towards it, tense speech away from it."""


@dataclass(frozen=True)
class Consonant:
    """How a consonant sounds: manner, voicing, where the formants head, and its noise."""

    manner: str
    """"stop", "fricative", "nasal", "approximant" or "aspirate"."""
    voiced: bool
    locus: tuple[float, float, float] | None
    """Formants (F1, F2, F3) the transitions point to; None for /h/ (it takes the vowel's)."""
    noise_hz: float = 0.0
    """Centre of the frication or burst noise."""
    noise_bw: float = 1.0
    """Width (standard deviation, Hz) of that noise band."""
    noise_db: float = -60.0
    """Level of the noise relative to a vowel."""
    ms: float = 60.0
    """Typical duration in milliseconds (closure for stops)."""


CONSONANTS: dict[str, Consonant] = {
    "p": Consonant("stop", False, (300, 900, 2300), 1200, 1500, -14, 60),
    "t": Consonant("stop", False, (300, 1700, 2700), 4200, 1500, -10, 55),
    "k": Consonant("stop", False, (300, 2000, 2400), 2300, 700, -10, 60),
    "b": Consonant("stop", True, (300, 900, 2300), 1200, 1500, -18, 50),
    "d": Consonant("stop", True, (300, 1700, 2700), 4000, 1500, -16, 45),
    "g": Consonant("stop", True, (300, 2000, 2400), 2300, 700, -16, 50),
    "s": Consonant("fricative", False, (300, 1700, 2700), 5800, 1300, -12, 100),
    "sh": Consonant("fricative", False, (300, 1900, 2500), 3300, 900, -10, 100),
    "f": Consonant("fricative", False, (300, 1100, 2300), 5000, 3000, -24, 80),
    "th": Consonant("fricative", False, (300, 1500, 2600), 5000, 3000, -26, 75),
    "z": Consonant("fricative", True, (300, 1700, 2700), 5800, 1300, -18, 70),
    "v": Consonant("fricative", True, (300, 1100, 2300), 5000, 3000, -28, 60),
    "dh": Consonant("fricative", True, (300, 1500, 2600), 5000, 3000, -30, 50),
    "h": Consonant("aspirate", False, None, 0, 1, -60, 60),
    "m": Consonant("nasal", True, (250, 1000, 2200), ms=65),
    "n": Consonant("nasal", True, (250, 1500, 2600), ms=60),
    "ng": Consonant("nasal", True, (250, 2000, 2600), ms=65),
    "l": Consonant("approximant", True, (360, 1300, 2700), ms=55),
    "r": Consonant("approximant", True, (350, 1100, 1500), ms=60),
    "w": Consonant("approximant", True, (300, 700, 2200), ms=55),
    "y": Consonant("approximant", True, (280, 2200, 2900), ms=50),
}
"""A small English-like consonant inventory (loci after Delattre et al. 1955 and Stevens 1998)."""

ONSET_WEIGHTS = {
    "": 12, "t": 10, "d": 7, "n": 7, "s": 7, "k": 6, "m": 6, "l": 6, "r": 6, "b": 5, "p": 5,
    "h": 5, "w": 4, "f": 4, "dh": 4, "g": 3, "sh": 2, "y": 2, "v": 2, "z": 1, "th": 1,
}  # fmt: skip
CODA_WEIGHTS = {
    "": 50, "n": 8, "t": 7, "r": 6, "s": 6, "d": 5, "l": 5, "k": 4, "m": 4, "z": 4, "ng": 2,
    "p": 2, "f": 1, "v": 1, "th": 1, "sh": 1,
}  # fmt: skip
VOWEL_WEIGHTS = {
    "ax": 12, "ih": 10, "eh": 7, "iy": 6, "ae": 6, "aa": 6, "ah": 6, "ow": 4, "uw": 4, "ey": 4,
    "ay": 4, "ao": 3, "er": 3, "uh": 2,
}  # fmt: skip


@dataclass(frozen=True)
class Syllable:
    """One syllable: onset consonants, a vowel, coda consonants, and whether it is stressed."""

    onset: tuple[str, ...] = ()
    vowel: str = "ax"
    coda: tuple[str, ...] = ()
    stressed: bool = False

    def spelling(self) -> str:
        """A readable ARPAbet-like spelling, stressed vowels in capitals (for the metadata)."""
        vowel = self.vowel.upper() if self.stressed else self.vowel
        return "".join(self.onset) + vowel + "".join(self.coda)


Phrase = tuple[Syllable, ...]


def _syllable(onset: str, vowel: str, coda: str = "", stressed: bool = False) -> Syllable:
    return Syllable(tuple(onset.split()), vowel, tuple(coda.split()), stressed)


STATEMENTS: dict[int, tuple[str, Phrase]] = {
    1: (
        "Kids are talking by the door",
        (
            _syllable("k", "ih", "d z", True),
            _syllable("", "aa", "r"),
            _syllable("t", "ao", "", True),
            _syllable("k", "ih", "ng"),
            _syllable("b", "ay", "", True),
            _syllable("dh", "ax"),
            _syllable("d", "ao", "r", True),
        ),
    ),
    2: (
        "Dogs are sitting by the door",
        (
            _syllable("d", "ao", "g z", True),
            _syllable("", "aa", "r"),
            _syllable("s", "ih", "", True),
            _syllable("t", "ih", "ng"),
            _syllable("b", "ay", "", True),
            _syllable("dh", "ax"),
            _syllable("d", "ao", "r", True),
        ),
    ),
}
"""RAVDESS's two statements, as syllables (rough ARPAbet), so every actor says the same thing."""


def _cumulative(weights: dict[str, int]) -> tuple[list[str], np.ndarray]:
    return list(weights), np.cumsum(list(weights.values()), dtype=float)


_ONSETS, _VOWELS, _CODAS = (_cumulative(w) for w in (ONSET_WEIGHTS, VOWEL_WEIGHTS, CODA_WEIGHTS))


def _choose(rng: np.random.Generator, table: tuple[list[str], np.ndarray]) -> str:
    """One key of a (keys, cumulative weights) table, drawn in proportion to its weight."""
    keys, cumulative = table
    return keys[int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))]


def random_phrases(rng: np.random.Generator, n_syllables: int, pause: float = 1.0) -> list[Phrase]:
    """Nonsense speech: ``n_syllables`` English-like syllables grouped into phrases.

    ``pause`` > 1 (sad speech) makes phrases shorter, hence more pauses, as well as longer ones.
    """
    phrases: list[Phrase] = []
    left = max(1, n_syllables)
    mean_length = 6.0 / math.sqrt(max(pause, 0.3))
    while left > 0:
        length = int(min(left, max(2, round(rng.normal(mean_length, 1.8)))))
        if 0 < left - length < 2:
            length = left
        syllables = []
        previous_stressed = False
        for _ in range(length):
            stressed = bool(rng.random() < (0.15 if previous_stressed else 0.45))
            syllables.append(
                Syllable(
                    onset=tuple(c for c in [_choose(rng, _ONSETS)] if c),
                    vowel=_choose(rng, _VOWELS),
                    coda=tuple(c for c in [_choose(rng, _CODAS)] if c),
                    stressed=stressed,
                )
            )
            previous_stressed = stressed
        if not any(s.stressed for s in syllables):
            pick = int(rng.integers(length))
            s = syllables[pick]
            syllables[pick] = Syllable(s.onset, s.vowel, s.coda, True)
        phrases.append(tuple(syllables))
        left -= length
    return phrases


def syllables_for_duration(seconds: float, speaker: Speaker, cues: EmotionCues) -> int:
    """How many syllables fill about ``seconds`` of speech at this speaker's and emotion's tempo."""
    rate = speaker.rate_syl_s * cues.rate
    phrase_syllables = 6.0 / math.sqrt(max(cues.pause, 0.3))
    pause_s = 0.22 * cues.pause
    speech_share = (phrase_syllables / rate) / (phrase_syllables / rate + pause_s)
    return max(2, round(seconds * rate * speech_share))
