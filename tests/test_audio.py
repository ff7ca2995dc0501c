"""load_audio: float32 mono at the asked rate from any WAV/FLAC, or one AudioError naming file and reason."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import APPLE_DOUBLE_HEADER, LFS_POINTER, TONE_HZ, encoded_tone, tone, write_audio

from serlib.audio import (
    CLIPPED,
    MIN_SECONDS,
    NON_FINITE,
    SILENT,
    TOO_SHORT,
    AudioError,
    audio_problem,
    clip_problem,
    load_audio,
    probe_audio,
    sniff_problem,
    to_mono,
)
from serlib.errors import UserError


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """The frequency of the strongest FFT bin: a resampler that keeps pitch keeps it."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[np.argmax(spectrum)])


def with_chunk_before_data(wav: bytes, chunk_id: bytes, payload: bytes) -> bytes:
    """Insert a RIFF chunk between ``fmt `` and ``data``, as RAVDESS's FLLR padding chunk is."""
    data_at = wav.index(b"data")
    chunk = chunk_id + struct.pack("<I", len(payload)) + payload
    body = wav[12:data_at] + chunk + wav[data_at:]
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


# --- good files --------------------------------------------------------------------------------------


def test_mono_16k_wav_comes_back_as_written(tmp_path: Path):
    path = write_audio(tmp_path / "a.wav", 16000, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    np.testing.assert_array_equal(audio, tone(sample_rate=16000))


def test_pcm16_wav_and_flac_agree_to_one_quantisation_step(tmp_path: Path):
    wav = load_audio(write_audio(tmp_path / "a.wav", 16000))
    flac = load_audio(write_audio(tmp_path / "a.flac", 16000))
    assert wav.dtype == flac.dtype == np.float32 and wav.shape == flac.shape
    np.testing.assert_allclose(wav, flac, atol=2 / 32768)
    np.testing.assert_allclose(wav, tone(sample_rate=16000), atol=2 / 32768)


def test_upper_case_suffix_is_read(tmp_path: Path):
    audio = load_audio(write_audio(tmp_path / "03-01-01-01-01-01-24.WAV", 16000))
    assert len(audio) == len(tone(sample_rate=16000))


def test_stereo_is_averaged_to_mono(tmp_path: Path):
    path = write_audio(tmp_path / "stereo.wav", 16000, channels=2, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.ndim == 1
    np.testing.assert_allclose(audio, tone(sample_rate=16000) / 2, atol=1e-7)


def test_to_mono_keeps_mono_and_averages_channels():
    mono = np.arange(4, dtype=np.float32)
    assert to_mono(mono) is mono
    np.testing.assert_array_equal(to_mono(np.stack([mono, 3 * mono], axis=1)), 2 * mono)


@pytest.mark.parametrize("channels", [1, 2])
def test_48k_is_resampled_to_16k_keeping_pitch(tmp_path: Path, channels: int):
    path = write_audio(tmp_path / "48k.wav", 48000, channels=channels, seconds=0.25)
    audio = load_audio(path, sample_rate=16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == round(0.25 * 16000)
    assert abs(dominant_frequency(audio, 16000) - TONE_HZ) < 16000 / len(audio)
    middle = audio[len(audio) // 4 : -len(audio) // 4]
    assert np.max(np.abs(middle)) == pytest.approx(0.5 / channels, rel=0.02)


def test_other_target_rates(tmp_path: Path):
    path = write_audio(tmp_path / "16k.flac", 16000, seconds=0.25)
    assert len(load_audio(path, sample_rate=8000)) == 2000
    assert abs(len(load_audio(path, sample_rate=22050)) - 0.25 * 22050) <= 0.5


def test_wav_with_a_chunk_before_data_loads(tmp_path: Path):
    """RAVDESS originals carry a FLLR chunk before ``data``; it must not confuse the reader."""
    wav = encoded_tone("WAV", 48000, 1, 0.05, None)
    path = tmp_path / "fllr.wav"
    path.write_bytes(with_chunk_before_data(wav, b"FLLR", bytes(4044)))
    assert sniff_problem(path) is None
    np.testing.assert_array_equal(
        load_audio(path, 48000), load_audio(write_audio(tmp_path / "plain.wav", 48000), 48000)
    )


def test_probe_audio_reads_only_the_header(tmp_path: Path):
    info = probe_audio(write_audio(tmp_path / "a.wav", 48000, channels=2))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 2400)


def test_output_is_contiguous_and_writable(tmp_path: Path):
    audio = load_audio(write_audio(tmp_path / "a.wav", 48000, channels=2))
    assert audio.flags["C_CONTIGUOUS"] and audio.flags["WRITEABLE"]


# --- bad files: one error type, naming the file and the reason ----------------------------------------


def write_bad(tmp_path: Path, kind: str) -> Path:
    """One unusable file of the given kind, with a name that would otherwise be fine."""
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "lfs":
        path.write_text(LFS_POINTER)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(encoded_tone("WAV", 16000, 1, 0.05, None)[:30])
    elif kind == "header_only":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    elif kind == "zero_frames":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="FLOAT")
    elif kind == "broken_fmt":
        wav = bytearray(encoded_tone("WAV", 16000, 1, 0.05, None))
        wav[20:36] = bytes(16)
        path.write_bytes(bytes(wav))
    elif kind == "apple_double":
        path.write_bytes(APPLE_DOUBLE_HEADER + bytes(4000))
    elif kind == "mp3":
        path = write_audio(tmp_path / "clip.mp3")
    elif kind == "ogg_as_wav":
        sf.write(path, tone(), 16000, format="OGG")
    elif kind == "nan":
        samples = tone()
        samples[5] = np.nan
        sf.write(path, samples, 16000, subtype="FLOAT")
    elif kind == "inf":
        samples = tone()
        samples[-1] = -np.inf
        sf.write(path, samples, 16000, subtype="DOUBLE")
    elif kind == "missing":
        pass
    else:
        raise AssertionError(kind)
    return path


BAD_FILES = {
    "empty": "empty file",
    "lfs": "git-lfs pointer",
    "random": "not a WAV or FLAC file",
    "truncated": "too short",
    "header_only": "too short",
    "zero_frames": "zero-length audio",
    "broken_fmt": "corrupt or unsupported audio",
    "apple_double": "not a WAV or FLAC file",
    "mp3": "not a WAV or FLAC file",
    "ogg_as_wav": "not a WAV or FLAC file",
    "nan": "NaN or infinite",
    "inf": "NaN or infinite",
    "missing": "cannot read",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_raises_audio_error_naming_file_and_reason(tmp_path: Path, kind: str):
    path = write_bad(tmp_path, kind)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.path == str(path)
    assert BAD_FILES[kind] in error.reason
    assert str(error) == f"{path}: {error.reason}"
    assert "\n" not in str(error)


@pytest.mark.parametrize("kind", ["nan", "inf", "broken_fmt", "zero_frames"])
def test_header_sniffing_passes_files_only_decoding_can_reject(tmp_path: Path, kind: str):
    """The scan's cheap check reads 64 bytes: these look fine there, and load_audio catches them."""
    assert sniff_problem(write_bad(tmp_path, kind)) is None


@pytest.mark.parametrize("kind", ["empty", "lfs", "random", "truncated", "header_only", "mp3"])
def test_header_sniffing_catches_what_the_first_bytes_show(tmp_path: Path, kind: str):
    assert BAD_FILES[kind] in sniff_problem(write_bad(tmp_path, kind))


def test_probe_audio_raises_audio_error_too(tmp_path: Path):
    with pytest.raises(AudioError, match="git-lfs pointer"):
        probe_audio(write_bad(tmp_path, "lfs"))


# --- clips that decode but cannot be used: audio_problem's thresholds -----------------------------------


def at_level(decibels: float, seconds: float = 0.1, rate: int = 16000) -> np.ndarray:
    """A tone whose peak is ``decibels`` dBFS."""
    wave = tone(seconds, rate)
    return (wave / np.abs(wave).max() * 10 ** (decibels / 20)).astype(np.float32)


def with_full_scale_share(share: float, n: int = 10000) -> np.ndarray:
    """A quiet tone with ``share`` of its samples pushed to full scale."""
    wave = at_level(-20, n / 16000)
    wave[: int(share * n)] = 1.0
    return wave


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (at_level(-20), None),
        (at_level(-55), None),
        (at_level(-65), SILENT),
        (np.zeros(1600, np.float32), SILENT),
        (np.full(1600, 0.3, np.float32), SILENT),  # a DC offset is not sound
        (with_full_scale_share(0.005), None),
        (with_full_scale_share(0.02), CLIPPED),
        (-with_full_scale_share(0.02), CLIPPED),
        (at_level(-20, MIN_SECONDS * 1.2), None),
        (at_level(-20, MIN_SECONDS * 0.8), TOO_SHORT),
        (np.concatenate([at_level(-20), [np.nan]]), NON_FINITE),
        (np.zeros(10, np.float32) + np.inf, NON_FINITE),
    ],
    ids=["speech", "quiet", "-65dB", "zeros", "dc", "peaks", "clipped", "clipped-", "short-ok"]
    + ["too-short", "nan", "inf"],
)
def test_audio_problem_thresholds(samples: np.ndarray, expected: str | None):
    assert audio_problem(np.asarray(samples, np.float32), 16000) == expected


def test_clipping_in_one_channel_is_seen_before_the_downmix():
    stereo = np.stack([with_full_scale_share(0.05), at_level(-20, 10000 / 16000)], axis=1)
    assert audio_problem(stereo, 16000) == CLIPPED
    assert audio_problem(to_mono(stereo), 16000) is None, "the average hides it"


@pytest.mark.parametrize(
    ("samples", "reason"),
    [(np.zeros(4000, np.float32), SILENT), (np.clip(4 * tone(0.2), -1, 1), CLIPPED)],
    ids=["silent", "clipped"],
)
def test_load_audio_and_clip_problem_refuse_the_same_clips(tmp_path: Path, samples, reason):
    path = write_audio(tmp_path / "clip.wav", samples=samples)
    assert clip_problem(path) == reason
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert caught.value.reason == reason and str(caught.value) == f"{path}: {reason}"


def test_clip_problem_reports_unreadable_files_and_passes_good_ones(tmp_path: Path):
    assert clip_problem(write_bad(tmp_path, "lfs")).startswith("git-lfs pointer")
    assert clip_problem(write_audio(tmp_path / "good.wav", 48000, channels=2)) is None


def test_audio_errors_are_user_errors():
    """A bad file is the user's to fix: the command line reports it in one line, no traceback."""
    assert issubclass(AudioError, UserError)
