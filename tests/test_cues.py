"""The emotion cues: the synthetic corpus carries what it documents, as ``serlib.analysis`` sees it.

``serlib/synth/cues.py`` and ``docs/synthetic_corpus.md`` say how each emotion changes a voice;
notebook 01 measures clips with ``analysis.acoustic_cues`` and prints ``analysis.cue_findings``.
These tests render clips with known cues in both domains (the IEMOCAP-like room and the
RAVDESS-like studio), measure them the notebook's way and check the documented orderings, check
the measurement against the synthesiser's own F0 where the room could fool it, and check that the
findings read true for every outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib import analysis
from serlib.errors import UserError
from serlib.synth import LAYOUTS, render_clip

SAMPLE_RATE = 16000
EMOTIONS = ("angry", "happy", "neutral", "sad")
AROUSAL_CUES = ("f0_median_hz", "f0_range_st", "loudness_db", "syllable_rate", "alpha_ratio_db")
"""Every cue the corpus documents as lowest in sadness and raised in anger."""


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    """``cue_summary`` of 2 female + 2 male voices per emotion and domain (32 clips, seeded)."""
    rows = []
    for layout in LAYOUTS:
        for emotion in EMOTIONS:
            for seed in (0, 1):
                for gender in "FM":
                    samples, rate, _ = render_clip(emotion, gender, layout, seed=seed)
                    cues = analysis.acoustic_cues(samples, rate)
                    rows.append({"corpus": layout, "label": emotion, "gender": gender, **cues})
    return analysis.cue_summary(pd.DataFrame(rows))


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_sadness_is_lowest_on_every_cue(summary, layout):
    """Sad: low, narrow pitch; quiet; slow; lax voice (less high-frequency energy)."""
    table = summary.loc[layout]
    for cue in AROUSAL_CUES:
        assert table[cue].idxmin() == "sad", (cue, table[cue].to_dict())


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_anger_and_joy_are_raised_as_documented(summary, layout):
    """Angry and happy higher and louder than neutral; anger the loudest and most tense voice,
    joy the highest pitch; together they are wider in pitch, faster and brighter than neutral.

    Pitch range, speaking rate and voice quality vary a lot from clip to clip (one pitch accent
    more or less, a reverberant room blurring syllables): with four clips per emotion, anger and
    joy are compared with neutral through their mean, which the design separates reliably.
    """
    table = summary.loc[layout]
    for cue in ("f0_median_hz", "loudness_db"):
        for emotion in ("angry", "happy"):
            assert table.loc[emotion, cue] > table.loc["neutral", cue], (cue, table[cue].to_dict())
    for cue in ("f0_range_st", "syllable_rate", "alpha_ratio_db"):
        aroused = table.loc[["angry", "happy"], cue].mean()
        assert aroused > table.loc["neutral", cue], (cue, table[cue].to_dict())
    assert table["loudness_db"].idxmax() == "angry"
    assert table["alpha_ratio_db"].idxmax() == "angry"
    assert table["f0_median_hz"].idxmax() == "happy"


def test_measured_pitch_matches_what_was_rendered_even_in_the_room():
    """The F0 the tracker reads from a sad voice in the reverberant, humming room is the F0 the
    synthesiser rendered (``render_clip``'s parameters, the corpus's ``synth_metadata.csv``).

    Pauses full of room noise and 60 Hz hum were once measured as pitch: a sad clip's F0 range
    read 9-18 semitones against about 3 rendered.
    """
    for gender in "FM":
        samples, rate, rendered = render_clip("sad", gender, "iemocap", seed=0)
        measured = analysis.acoustic_cues(samples, rate)
        offset = 12 * np.log2(measured["f0_median_hz"] / rendered["f0_median_hz"])
        assert abs(offset) < 1.0, (measured, rendered["f0_median_hz"])
        assert abs(measured["f0_range_st"] - rendered["f0_range_st"]) < 1.5, (
            measured,
            rendered["f0_range_st"],
        )
        assert measured["syllable_rate"] == pytest.approx(rendered["syllable_rate"], rel=0.35)


def harmonic_bursts(per_second: float, seconds: float = 3.0, f0: float = 150.0) -> np.ndarray:
    """Vowel-like bursts (a harmonic tone switched on and off) at ``per_second``, with 60 Hz hum
    and faint noise in the gaps, inside half a second of that background on each side."""
    rng = np.random.default_rng(0)
    time = np.arange(int((seconds + 1.0) * SAMPLE_RATE)) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * f0 * k * time) / k for k in range(1, 20))
    phase = ((time - 0.5) * per_second) % 1.0
    gate = ((phase < 0.6) & (time >= 0.5) & (time < seconds + 0.5)).astype(float)
    gate = np.convolve(gate, np.hanning(401) / np.hanning(401).sum(), mode="same")
    background = 0.003 * np.sin(2 * np.pi * 60.0 * time) + 0.001 * rng.standard_normal(time.size)
    return (0.2 * voice * gate + background).astype(np.float32)


def test_syllable_rate_counts_vowel_bursts_and_ignores_the_silence_around_them():
    for rate in (2.0, 4.0):
        measured = analysis.syllable_rate(harmonic_bursts(rate))
        assert measured == pytest.approx(rate, rel=0.15)


def test_pitch_is_measured_on_speech_frames_not_on_hum():
    cues = analysis.acoustic_cues(harmonic_bursts(3.0))
    assert cues["f0_median_hz"] == pytest.approx(150.0, rel=0.03)
    assert cues["f0_range_st"] < 1.0  # the 60 Hz hum in the gaps is not pitch range
    assert cues["voiced_fraction"] > 0.5


def test_cue_table_gives_each_gender_an_equal_share(tmp_path):
    rows = []
    for index in range(6):
        gender = "F" if index < 4 else "M"
        path = tmp_path / f"clip{index}.wav"
        sf.write(
            path, harmonic_bursts(3.0, seconds=1.0, f0=200.0 if gender == "F" else 110.0), 16000
        )
        rows.append(
            {
                "path": str(path),
                "corpus": "c",
                "speaker": f"s{index}",
                "gender": gender,
                "label": "sad",
            }
        )
    cues = analysis.cue_table(pd.DataFrame(rows), per_class=4, seed=0)
    assert sorted(cues["gender"]) == ["F", "F", "M", "M"]
    summary = analysis.cue_summary(cues)
    assert summary.loc[("c", "sad"), "f0_median_hz"] == pytest.approx((200 + 110) / 2, rel=0.03)


# --- findings ------------------------------------------------------------------------------------


def cue_frame(values: dict[str, dict[str, tuple[float, ...]]]) -> pd.DataFrame:
    """A ``cue_summary``-shaped table from {corpus: {label: (F0 Hz, range, dB, rate, alpha)}}."""
    rows = [
        {"corpus": corpus, "label": label, **dict(zip(AROUSAL_CUES, cues, strict=True))}
        for corpus, labels in values.items()
        for label, cues in labels.items()
    ]
    return pd.DataFrame(rows).set_index(["corpus", "label"])


AS_DOCUMENTED = {
    "angry": (230.0, 5.0, -20.0, 4.5, -3.0),
    "happy": (250.0, 4.8, -22.0, 4.2, -7.0),
    "neutral": (175.0, 3.8, -26.0, 4.0, -8.5),
    "sad": (145.0, 2.9, -31.0, 3.0, -10.0),
}


def test_findings_when_the_corpora_carry_the_cues_alike():
    target = {
        label: (f0 * 1.1, rng, db - 10, rate, alpha)
        for label, (f0, rng, db, rate, alpha) in AS_DOCUMENTED.items()
    }
    lines = analysis.cue_findings(cue_frame({"iemocap": AS_DOCUMENTED, "ravdess": target}))
    text = "\n".join(lines)
    assert "*sad* is the lowest on median F0, F0 range, loudness, speaking rate and" in text
    assert "in both iemocap and ravdess." in lines[0] and "not for" not in lines[0]
    assert "*angry* and *happy* sit above *neutral*" in lines[1] and "not for" not in lines[1]
    assert lines[2].startswith("The cues order the emotions the same way in iemocap and ravdess.")
    assert (
        lines[3]
        == "Every emotion's loudness is lower in ravdess than in iemocap, by 10.0 to 10.0 dB."
    )
    assert lines[4].startswith(
        "Every emotion's median F0 is higher in ravdess than in iemocap, by 1.7"
    )


def test_findings_name_the_cue_that_breaks_the_design_and_the_order_that_flips():
    # The old notebook 01 measurement: source sad had the widest F0 range, neutral the fastest
    # onsets, and the two corpora swapped angry and happy in median F0.
    source = {
        "angry": (292.5, 5.2, -20.1, 7.6, -3.0),
        "happy": (245.0, 4.7, -20.2, 6.6, -7.0),
        "neutral": (130.9, 3.5, -24.4, 8.2, -8.0),
        "sad": (107.4, 9.1, -31.8, 6.1, -9.0),
    }
    target = {
        "angry": (200.7, 5.6, -30.4, 4.5, -3.0),
        "happy": (241.9, 7.7, -34.9, 4.4, -7.0),
        "neutral": (189.5, 3.9, -39.9, 4.5, -8.0),
        "sad": (113.0, 4.9, -46.7, 4.0, -9.0),
    }
    lines = analysis.cue_findings(cue_frame({"iemocap": source, "ravdess": target}))
    assert lines[0].startswith("*sad* is the lowest on median F0, loudness, speaking rate and")
    assert "not for F0 range in iemocap (*neutral* is 5.6 semitones lower)" in lines[0]
    assert "not for speaking rate in iemocap (*angry* is 0.6 syllables per second below" in lines[1]
    assert "ravdess (*angry* is level and *happy* is 0.1 syllables per second below)" in lines[1]
    assert lines[2].startswith("iemocap and ravdess order the emotions differently on: median F0")
    assert "*angry*/*happy*" in lines[2] and "F0 range" in lines[2]
    assert lines[4].startswith(
        "Median F0 in ravdess against iemocap: higher for *neutral* and *sad*"
    )


def test_findings_for_one_corpus_and_for_unchanged_levels():
    one = analysis.cue_findings(cue_frame({"ravdess": AS_DOCUMENTED}))
    assert len(one) == 2 and one[0].endswith("in ravdess.")
    same = analysis.cue_findings(cue_frame({"a": AS_DOCUMENTED, "b": AS_DOCUMENTED}), ["b", "a"])
    assert same[3] == "Every emotion's loudness is the same in b and a, within 1 dB."
    with pytest.raises(UserError, match="one or two of"):
        analysis.cue_findings(cue_frame({"a": AS_DOCUMENTED}), ["a", "z"])
    with pytest.raises(UserError, match="no column"):
        analysis.cue_findings(cue_frame({"a": AS_DOCUMENTED}).drop(columns="syllable_rate"))
