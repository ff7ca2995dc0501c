"""The feature cache computes once, reuses, invalidates on change, and never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlib.augment import WavePerturbation
from serlib.cache import ArrayCache, feature_cache, fill_cache, load_features, write_atomically
from serlib.features import FrontendConfig, frame_count, log_mel

SAMPLE_RATE = 16000
SMALL = FrontendConfig(n_fft=256, hop_length=128, n_mels=32)


def write_clip(path: Path, seconds: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = 0.2 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    sf.write(path, wave.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return str(path)


@pytest.fixture
def clips(tmp_path: Path) -> list[str]:
    return [write_clip(tmp_path / f"clip{i}.wav", 0.3 + 0.1 * i, seed=i) for i in range(4)]


def test_computed_once_then_read_back(clips: list[str], tmp_path: Path) -> None:
    first = load_features(clips, SMALL, root=tmp_path / "cache", progress=False)
    assert first.n_computed == 4 and first.kept == [0, 1, 2, 3] and not first.skipped
    second = load_features(clips, SMALL, root=tmp_path / "cache", progress=False)
    assert second.n_computed == 0
    for a, b, path in zip(first.arrays, second.arrays, clips, strict=True):
        assert b.dtype == np.float16
        np.testing.assert_array_equal(a, b)
        wave, _ = sf.read(path, dtype="float32")
        assert b.shape == (32, frame_count(len(wave), SMALL))
        np.testing.assert_allclose(b, log_mel(wave, SMALL), atol=0.05)  # float16 storage


def test_changed_file_is_recomputed(clips: list[str], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    before = load_features(clips, SMALL, root=root, progress=False).arrays[1]
    stat = os.stat(clips[1])
    write_clip(Path(clips[1]), 0.4, seed=9)  # same length, new content
    os.utime(clips[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = load_features(clips, SMALL, root=root, progress=False)
    assert after.n_computed == 1
    assert after.arrays[1].shape == before.shape and not np.array_equal(after.arrays[1], before)


def test_changed_parameter_uses_a_separate_entry(clips: list[str], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    load_features(clips, SMALL, root=root, progress=False)
    other = FrontendConfig(n_fft=256, hop_length=128, n_mels=16)
    assert feature_cache(SMALL, root=root).folder != feature_cache(other, root=root).folder
    result = load_features(clips, other, root=root, progress=False)
    assert result.n_computed == 4 and result.arrays[0].shape[0] == 16
    assert load_features(clips, SMALL, root=root, progress=False).n_computed == 0


def test_bad_and_missing_files_are_counted_skips(clips: list[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    pointer = tmp_path / "pointer.wav"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")
    paths = [clips[0], str(empty), str(tmp_path / "gone.wav"), str(pointer), clips[1]]
    result = load_features(paths, SMALL, root=tmp_path / "cache", progress=False)
    assert result.kept == [0, 4] and len(result.arrays) == 2
    reasons = {Path(skip.path).name: skip.reason for skip in result.skipped}
    assert set(reasons) == {"empty.wav", "gone.wav", "pointer.wav"}
    assert "empty" in reasons["empty.wav"] and "git-lfs" in reasons["pointer.wav"]


def test_perturbed_copies_are_cached_beside_the_clean_ones(
    clips: list[str], tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    faster = WavePerturbation(speed=1.25, noise_snr_db=10.0, seed=3)
    clean = load_features(clips, SMALL, root=root, progress=False)
    perturbed = load_features(clips, SMALL, faster, root=root, progress=False)
    assert perturbed.n_computed == 4
    ratio = clean.arrays[3].shape[1] / perturbed.arrays[3].shape[1]
    assert ratio == pytest.approx(1.25, rel=0.05)
    feature_cache(SMALL, faster, root).clear()
    again = load_features(clips, SMALL, faster, root=root, progress=False)
    assert again.n_computed == 4  # recomputed after clear, and the noise is reproducible:
    np.testing.assert_array_equal(again.arrays[2], perturbed.arrays[2])


def test_wave_perturbation_is_deterministic_per_clip() -> None:
    wave = np.sin(np.linspace(0, 200, 8000)).astype(np.float32)
    noisy = WavePerturbation(noise_snr_db=20.0, seed=1)
    a, b = noisy.apply(wave, SAMPLE_RATE, "x.wav"), noisy.apply(wave, SAMPLE_RATE, "x.wav")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, noisy.apply(wave, SAMPLE_RATE, "y.wav"))
    snr = 10 * np.log10(np.mean(wave**2) / np.mean((a - wave) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)
    assert WavePerturbation().key() == "clean" and WavePerturbation().is_identity
    assert WavePerturbation(speed=0.9).key() != WavePerturbation(speed=1.1).key()
    with pytest.raises(ValueError, match="speed"):
        WavePerturbation(speed=3.0)


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "entry.npy"

    def write_half_then_fail(handle: object) -> None:
        handle.write(b"\x93NUMPY half an array")
        raise KeyboardInterrupt  # the user presses Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, write_half_then_fail)
    assert list(target.parent.iterdir()) == []


def test_damaged_entry_is_recomputed(clips: list[str], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    load_features(clips, SMALL, root=root, progress=False)
    entry = feature_cache(SMALL, root=root).path_for(clips[0])
    entry.write_bytes(entry.read_bytes()[:20])
    result = load_features(clips, SMALL, root=root, progress=False)
    assert result.n_computed == 1 and result.arrays[0].shape[0] == 32


def test_generic_array_cache_for_other_extractors(clips: list[str], tmp_path: Path) -> None:
    """What the Wav2Vec2 frozen-feature mode does: any compute function, any key."""
    calls: list[int] = []

    def summary(waves: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(waves))
        return [np.array([len(w), w.mean()], dtype=np.float64) for w in waves]

    cache = ArrayCache("w2v2", "layer6-test", root=tmp_path / "cache", dtype=None)
    first = fill_cache(clips, cache, summary, SAMPLE_RATE, batch_size=3, progress=False)
    assert calls == [3, 1] and first.arrays[0].dtype == np.float64
    assert first.arrays[2][0] == int(0.5 * SAMPLE_RATE)
    precomputed = fill_cache(clips, cache, summary, SAMPLE_RATE, keep=False, progress=False)
    assert (
        precomputed.n_computed == 0
        and precomputed.arrays == []
        and precomputed.kept == [0, 1, 2, 3]
    )
    assert cache.load(clips[3]) is not None and cache.load(str(tmp_path / "clip0.wav")) is not None
    with pytest.raises(ValueError, match="plain folder name"):
        ArrayCache("w2v2", "../escape")


def test_perturbed_arrays_need_their_own_cache_key(clips: list[str], tmp_path: Path) -> None:
    cache = ArrayCache("w2v2", "clean-states", root=tmp_path / "cache")
    with pytest.raises(ValueError, match="perturbation"):
        fill_cache(clips, cache, list, SAMPLE_RATE, perturbation=WavePerturbation(speed=0.9))
