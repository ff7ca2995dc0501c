"""The log-mel frontend matches librosa, batches exactly, and normalises as documented."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from serlib.features import (
    FrontendConfig,
    LogMel,
    MelStats,
    frame_count,
    log_mel,
    log_mel_many,
    normalise_utterance,
    trim_silence,
)


def speech_like(seconds: float, seed: int, sample_rate: int = 16000) -> np.ndarray:
    """A gliding harmonic tone with noise and a loudness envelope: a wide dB range, like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    wave = 0.1 * envelope * voiced + 0.003 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def librosa_log_mel(wave: np.ndarray, config: FrontendConfig) -> np.ndarray:
    """The reference: librosa.feature.melspectrogram then librosa.power_to_db."""
    power = librosa.feature.melspectrogram(
        y=wave,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        center=config.center,
        pad_mode=config.pad_mode,
        power=config.power,
    )
    return librosa.power_to_db(power, ref=config.ref, amin=config.amin, top_db=config.top_db)


def assert_relative_close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """Element-wise within ``rtol`` of each value, with a floor of ``rtol`` times the dB range."""
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_float32_log_mel_matches_librosa_within_1e_4_relative(pad_mode: str) -> None:
    config = FrontendConfig(pad_mode=pad_mode)
    wave = speech_like(1.3, seed=0)
    ours = log_mel(wave, config)
    reference = librosa_log_mel(wave, config)
    assert ours.dtype == np.float32
    assert ours.shape == (128, frame_count(len(wave), config))
    assert_relative_close(ours, reference, rtol=1e-4)


def test_float64_log_mel_matches_librosa_to_rounding() -> None:
    config = FrontendConfig(n_mels=64, top_db=None, fmin=50.0, fmax=7000.0)
    wave = speech_like(0.7, seed=1).astype(np.float64)
    ours = LogMel(config).double()(torch.from_numpy(wave)).numpy()
    np.testing.assert_allclose(ours, librosa_log_mel(wave, config), rtol=1e-9, atol=1e-9)


def test_batched_clips_equal_clips_computed_alone() -> None:
    """Padding a batch must not change any clip: own centring, own frame count, own top_db."""
    config = FrontendConfig(pad_mode="reflect")
    waves = [
        speech_like(s, seed=i) * g for i, (s, g) in enumerate([(0.9, 1.0), (0.3, 1e-3), (0.6, 5.0)])
    ]
    alone = [LogMel(config)(torch.from_numpy(w)).numpy() for w in waves]
    batched = log_mel_many(waves, config, batch_size=3)
    for one, many in zip(alone, batched, strict=True):
        assert one.shape == many.shape
        np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-4)


def test_equal_length_batch_forward_has_batch_shape() -> None:
    waves = torch.from_numpy(np.stack([speech_like(0.5, seed=i) for i in range(3)]))
    out = LogMel()(waves)
    assert out.shape == (3, 128, frame_count(waves.shape[1], FrontendConfig()))
    single = LogMel()(waves[1])
    torch.testing.assert_close(out[1], single)


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
def test_frame_count_follows_librosa() -> None:
    config = FrontendConfig()
    for n in (1, 255, 256, 257, 16000):
        assert (
            frame_count(n, config)
            == librosa_log_mel(np.zeros(n, np.float32) + 0.1, config).shape[1]
        )
    assert frame_count(2048, FrontendConfig(center=False)) == 5


def test_config_key_is_stable_and_changes_with_any_parameter() -> None:
    config = FrontendConfig()
    assert (
        config.key() == FrontendConfig().key() == FrontendConfig.from_dict(config.to_dict()).key()
    )
    changed = {
        "n_mels": 64,
        "hop_length": 160,
        "n_fft": 512,
        "fmin": 20.0,
        "fmax": 7600.0,
        "top_db": None,
        "pad_mode": "reflect",
        "sample_rate": 8000,
    }
    keys = {dataclasses.replace(config, **{name: value}).key() for name, value in changed.items()}
    assert config.key() not in keys and len(keys) == len(changed)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_mels": 0}, {"pad_mode": "wrap"}, {"fmax": 9000.0}, {"fmin": 8000.0}, {"top_db": -1.0}],
)
def test_bad_frontend_parameters_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FrontendConfig(**kwargs)


def test_bad_wave_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="mono"):
        log_mel_many([np.zeros((2, 100), np.float32)])
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        LogMel()(torch.zeros(1, 2, 100))


def test_global_stats_fit_apply_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    clips = [rng.normal(loc=np.arange(8)[:, None], scale=2.0, size=(8, n)) for n in (50, 70, 90)]
    stats = MelStats.fit(clips)
    normalised = np.concatenate([stats.apply(c) for c in clips], axis=1)
    np.testing.assert_allclose(normalised.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.std(axis=1), 1, atol=1e-4)
    again = MelStats.from_dict(stats.to_dict())
    np.testing.assert_array_equal(again.mean, stats.mean)
    tensor = again.apply(torch.from_numpy(clips[0]).float())
    np.testing.assert_allclose(tensor.numpy(), stats.apply(clips[0]), atol=1e-5)
    with pytest.raises(ValueError, match="mels"):
        stats.apply(np.zeros((4, 10)))
    with pytest.raises(ValueError, match="at least one frame"):
        MelStats.fit([])


def test_utterance_normalisation_is_per_band() -> None:
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(16, 40)).astype(np.float32)
    y = normalise_utterance(x)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=1), 1, atol=1e-4)
    assert np.isfinite(normalise_utterance(np.zeros((4, 10)))).all()


def test_trim_silence_drops_the_silence_around_a_clip_but_not_a_pause_inside_it() -> None:
    rate, config = 16000, FrontendConfig()
    speech = np.concatenate([speech_like(0.8, 0), np.zeros(rate // 2), speech_like(0.8, 1)])
    hiss = 1e-4 * np.random.default_rng(2).standard_normal(rate).astype(np.float32)  # ~ -60 dB
    padded = np.concatenate([hiss, speech, hiss])
    trimmed = trim_silence(log_mel(padded, config), top_db=40.0)
    speech_frames = len(speech) // config.hop_length
    # the kept frames are the speech and its half-second pause, give or take a window's width
    assert speech_frames <= trimmed.shape[1] <= speech_frames + config.n_fft // config.hop_length
    np.testing.assert_array_equal(trim_silence(trimmed, 40.0), trimmed)  # trimming is idempotent
    flat = np.full((8, 5), -20.0, dtype=np.float32)
    assert trim_silence(flat, 40.0).shape == (8, 5)
    with pytest.raises(ValueError, match="top_db"):
        trim_silence(flat, 0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_gpu_frontend_matches_cpu() -> None:
    waves = [speech_like(s, seed=i) for i, s in enumerate((0.4, 1.1, 0.8))]
    cpu = log_mel_many(waves)
    gpu = log_mel_many(waves, device="cuda")
    for a, b in zip(cpu, gpu, strict=True):
        assert_relative_close(b, a, rtol=1e-4)


@pytest.mark.realdata
def test_real_ravdess_clip_matches_librosa() -> None:
    root = Path(os.environ.get("SERLIB_RAVDESS_DIR", "/nonexistent"))
    files = sorted(root.glob("Actor_*/*.*"))[:2] if root.is_dir() else []
    if not files:
        pytest.skip("set SERLIB_RAVDESS_DIR to a RAVDESS folder to run this check")
    from serlib.audio import load_audio

    config = FrontendConfig()
    for path in files:
        wave = load_audio(path, config.sample_rate)
        assert_relative_close(log_mel(wave, config), librosa_log_mel(wave, config), rtol=1e-4)
