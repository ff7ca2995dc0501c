"""serlib.shift: proxy A-distances of a trained run's test clips, at the input and the embedding,
with the source's statistics and with the target's own, and the sentences that report them.

The runs train on tone corpora (tests/tone_corpora.py) whose target is the source's tones played
20 dB quieter: a pure level shift, which per-band standardisation with the target's own statistics
removes exactly. So the input distance must be at its ceiling with the source's statistics and far
below it with the target's, which is the lesson notebook 05 draws from these functions.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from tone_corpora import EMODB_LETTER, PITCH_HZ, tone_clip, write_ravdess

from serlib import shift
from serlib.cache import load_features
from serlib.errors import UserError
from serlib.features import FrontendConfig
from serlib.runs import load_run, train_run

torch.set_num_threads(1)

GAIN = 0.1
"""The target's tones are the source's times this: 20 dB quieter in every mel band."""

EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")


def write_quiet_emodb(root: Path, takes: int = 3) -> Path:
    """EmoDB layout, the source's tone recipe at ``GAIN``: a level shift and nothing else."""
    for speaker in EMODB_SPEAKERS:
        for emotion, letter in EMODB_LETTER.items():
            for take in range(1, takes + 1):
                path = root / "wav" / f"{speaker}a0{take}{letter}a.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                clip = tone_clip(PITCH_HZ[emotion], int(speaker) * 100 + take, 0.01)
                sf.write(path, GAIN * clip, 16000)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A source-only CRNN and the same CRNN trained with target statistics (tiny, 2 epochs)."""
    root = tmp_path_factory.mktemp("shift")
    source = write_ravdess(root / "ravdess", actors=10)
    target = write_quiet_emodb(root / "emodb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERLIB_HOME", str(root / "home"))
        made = {}
        for name, options in (("crnn", {}), ("statistics", {"target_statistics": True})):
            made[name] = train_run(
                "crnn",
                f"ravdess:{source}",
                root / "runs" / name,
                target=f"emodb:{target}",
                profile="tiny",
                epochs=2,
                progress=False,
                **options,
            ).run_dir
        yield made


def test_target_adaptation_statistics_are_those_a_target_statistics_run_fits(runs):
    """Rebuilt from a source-only run, they equal what --target-statistics stored in its run."""
    rebuilt = shift.target_adaptation_statistics(load_run(runs["crnn"]))
    stored = load_run(runs["statistics"]).inputs.target_stats
    np.testing.assert_allclose(rebuilt.mean, stored.mean, atol=1e-5)
    np.testing.assert_allclose(rebuilt.std, stored.std, atol=1e-5)


def test_pooled_log_mels_are_each_clips_standardised_spectrum_averaged_over_time(runs):
    run = load_run(runs["crnn"])
    clips = shift.evaluation_clips(runs["crnn"], "target_test", max_clips=5, seed=0)
    stats = run.inputs.stats
    pooled = shift.pooled_log_mels(run, clips, stats)
    assert pooled.shape == (5, 128)
    features = load_features(clips["path"].tolist(), FrontendConfig()).arrays
    by_hand = np.stack([stats.apply(x).mean(axis=1) for x in features])
    in_order = (
        np.argsort(pooled.sum(axis=1)),
        np.argsort(by_hand.sum(axis=1)),
    )  # same clips, any order
    np.testing.assert_allclose(pooled[in_order[0]], by_hand[in_order[1]], atol=1e-5)


def test_embeddings_change_with_the_statistics_the_inputs_use(runs):
    run = load_run(runs["crnn"])
    clips = shift.evaluation_clips(runs["crnn"], "target_test", max_clips=6, seed=0)
    with_source = shift.clip_embeddings(run, clips, run.inputs.stats)
    with_target = shift.clip_embeddings(run, clips, shift.target_adaptation_statistics(run))
    assert with_source.shape == with_target.shape == (6, 256)
    assert np.abs(with_source - with_target).max() > 1e-3


def test_the_targets_own_statistics_remove_a_level_shift_from_the_inputs(runs):
    """20 dB quieter in every band: with the source's statistics every target band sits far below
    the source's; with the target's own, the two domains' average spectra agree."""
    run = load_run(runs["crnn"])
    source = shift.evaluation_clips(runs["crnn"], "source_test", max_clips=None, seed=0)
    target = shift.evaluation_clips(runs["crnn"], "target_test", max_clips=None, seed=0)
    source_mean = shift.pooled_log_mels(run, source, run.inputs.stats).mean(axis=0)
    shifted = shift.pooled_log_mels(run, target, run.inputs.stats).mean(axis=0) - source_mean
    own = shift.target_adaptation_statistics(run)
    aligned = shift.pooled_log_mels(run, target, own).mean(axis=0) - source_mean
    level_db = 20 * np.log10(GAIN)
    shifted_db = shifted * run.inputs.stats.std  # back in dB, band by band
    assert abs(shifted_db.mean() - level_db) < 1.0 and (shifted_db < level_db / 2).all()
    assert np.abs(aligned).mean() < 0.1 * np.abs(shifted).mean()


def test_a_level_shift_saturates_the_input_distance_until_the_target_uses_its_own_statistics(runs):
    table = shift.domain_distances(runs["crnn"], max_per_set=None, seed=0)
    assert list(table.index) == list(shift.PLACES)
    assert list(table.columns) == list(shift.STATISTICS)
    assert ((table >= 0) & (table <= 2)).all().all()
    assert table.attrs["clips"] >= 16
    inputs = table.loc["input log-mels"]
    assert shift.is_saturated(inputs["source statistics"])  # 20 dB apart in every band
    assert not shift.is_saturated(inputs["target statistics"])


def test_distance_table_measures_the_inputs_once_and_every_runs_embeddings(runs):
    table = shift.distance_table(
        {"CRNN": runs["crnn"], "CRNN + statistics": runs["statistics"]}, max_per_set=8, seed=0
    )
    places = table.groupby("place")["run"].apply(set).to_dict()
    assert places == {"input log-mels": {""}, "embeddings": {"CRNN", "CRNN + statistics"}}
    assert len(table) == 3 * len(shift.STATISTICS) and (table["clips per domain"] == 8).all()


def test_distance_table_refuses_runs_trained_on_other_data(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs["crnn"], other)
    config = json.loads((other / "config.json").read_text())
    config["splits"]["target_test"] = config["splits"]["target_test"][:1]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="other test clips"):
        shift.distance_table({"CRNN": runs["crnn"], "other": other})


def test_input_distances_need_a_run_with_source_statistics(runs):
    run = load_run(runs["crnn"])
    per_clip = replace(run, inputs=replace(run.inputs, stats=None, normalisation="utterance"))
    with pytest.raises(UserError, match="its own statistics"):
        shift.mel_inputs(per_clip)


def distances(inputs: tuple[float, float], embeddings: tuple[float, float]) -> pd.DataFrame:
    """A ``distance_table`` with one run "R", given (source, target statistics) pairs."""
    rows = [
        {"place": place, "run": run, "target standardised with": column, "proxy A-distance": value}
        for place, run, pair in zip(shift.PLACES, ("", "R"), (inputs, embeddings), strict=True)
        for column, value in zip(shift.STATISTICS, pair, strict=True)
    ]
    return pd.DataFrame(rows).assign(**{"clips per domain": 100})


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ((2.0, 0.4), "lowered the proxy A-distance on the input log-mels (2.000 -> 0.400)"),
        ((1.0, 1.02), "did not change the proxy A-distance on the input log-mels"),
        ((0.5, 1.2), "raised the proxy A-distance on the input log-mels (0.500 -> 1.200)"),
        ((2.0, 1.98), "on the input log-mels the proxy A-distance is saturated with either"),
    ],
)
def test_statistics_findings_read_true_for_every_outcome(inputs, expected):
    lines = shift.distance_findings(distances(inputs, (2.0, 2.0)))
    assert len(lines) == 3
    assert expected in lines[0]
    assert lines[1].startswith("on R's embeddings the proxy A-distance is saturated")


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ((1.0, 0.5), "less separable (1.000 -> 0.500)"),
        ((0.5, 1.0), "more separable (0.500 -> 1.000)"),
        ((1.0, 1.01), "as separable (1.000 -> 1.010, within 0.05)"),
        ((2.0, 2.0), "saturated on both (2.000 -> 2.000)"),
    ],
)
def test_encoder_findings_read_true_for_every_outcome(pair, expected):
    lines = shift.distance_findings(distances((pair[0], 2.0), (pair[1], 2.0)))
    assert lines[2].startswith("from inputs to R's embeddings: with source statistics")
    assert f"with source statistics for the target, {expected}" in lines[2]
    assert "with target statistics for the target, saturated on both" in lines[2]


def test_embedding_findings_say_whether_the_target_is_apart_and_ordered_inside():
    rng = np.random.default_rng(0)
    emotions = np.repeat(["angry", "sad"], 20)
    centres = {"angry": np.array([0.0, 5.0]), "sad": np.array([0.0, -5.0])}
    source = np.stack([centres[e] for e in emotions]) + rng.normal(0, 0.3, (40, 2))
    clips = pd.DataFrame({"domain": ["source"] * 40 + ["target"] * 40, "label": list(emotions) * 2})
    shifted = source + np.array([100.0, 0.0])  # the target: the same emotions, moved away
    apart, ordered = shift.embedding_findings(np.vstack([source, shifted]), clips, "CRNN")
    assert apart.startswith("source and target sit apart in CRNN's embedding: 100 % (50 % by")
    assert ordered.startswith("inside the target, the same emotions sit together: 100 % (50 %")

    scattered = rng.normal(0, 1, (80, 2))  # nothing but noise: mixed and scattered
    mixed, unordered = shift.embedding_findings(scattered, clips, "CRNN")
    assert mixed.startswith("the domains are mixed")
    assert unordered.startswith("inside the target, emotions are scattered")
    agree, chance = shift.neighbour_agreement(np.array([[0.0], [0.1], [5.0]]), ["a", "a", "b"])
    assert agree == pytest.approx(2 / 3) and chance == pytest.approx(5 / 9)
