"""Reading audio: one function in, float32 mono at the rate you ask for, or one clear error out.

Every corpus stores audio a little differently (48 kHz RAVDESS with a few stereo files, 16 kHz IEMOCAP,
FLAC copies, git-lfs pointers in a careless clone). ``load_audio`` hides that: soundfile reads, we
downmix to mono, soxr resamples. Anything unusable raises ``AudioError`` naming the file and the reason,
so a long job can count and report the file instead of dying on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

AUDIO_SUFFIXES = (".wav", ".flac")
"""The file types the corpus loaders accept."""

LFS_POINTER_PREFIX = b"version https://git-lfs"


class AudioError(ValueError):
    """An audio file cannot be used; the message is ``<path>: <reason>``."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def sniff_problem(path: str | Path) -> str | None:
    """Why a file is unusable judging by its size and first bytes, or None if it looks like audio.

    This is what a corpus scan checks for every file: it catches empty files, git-lfs pointers and
    files that are neither RIFF/WAVE nor FLAC, without decoding any audio.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    if size == 0:
        return "empty file"
    if head.startswith(LFS_POINTER_PREFIX):
        return "git-lfs pointer, not audio (run `git lfs pull` in the corpus folder)"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return None if size > 44 else "WAV file too short to hold audio"
    if head[:4] in (b"RF64", b"BW64") or head[:4] == b"fLaC":
        return None
    return "not a WAV or FLAC file (unrecognised header)"


def probe_audio(path: str | Path) -> sf._SoundFileInfo:
    """Check a file's header and return its soundfile info, or raise AudioError."""
    problem = sniff_problem(path)
    if problem:
        raise AudioError(path, problem)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as error:
        raise AudioError(path, f"corrupt or unsupported audio ({error})") from None
    if info.frames == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    return info


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a [frames, channels] array (soundfile's layout) into one."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample with soxr's high-quality filter; a no-op when the rates already match."""
    if source_rate == target_rate:
        return samples
    return soxr.resample(samples, source_rate, target_rate, quality="HQ")


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Read a WAV/FLAC file as float32 mono at ``sample_rate``; raise AudioError if unusable."""
    probe_audio(path)
    try:
        samples, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as error:
        raise AudioError(path, f"corrupt audio ({error})") from None
    if samples.shape[0] == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    if not np.isfinite(samples).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    mono = to_mono(samples)
    return np.ascontiguousarray(resample(mono, file_rate, sample_rate), dtype=np.float32)
