"""Reading audio: one function in, float32 mono at the rate you ask for, or one clear error out.

Every corpus stores audio a little differently (48 kHz RAVDESS with a few stereo files, 16 kHz IEMOCAP,
FLAC copies, git-lfs pointers in a careless clone). ``load_audio`` hides that: soundfile reads, we
downmix to mono, soxr resamples. Anything unusable raises ``AudioError`` naming the file and the reason,
so a long job can count and report the file instead of dying on it.

"Unusable" includes clips that decode but hold no speech a model can learn from: NaN samples, a clip
shorter than one analysis window, digital silence, a waveform flattened against full scale
(``audio_problem``, thresholds below). Training, prediction and ``serlib scan --check-audio`` all
apply the same check, so a clip is either used everywhere or reported everywhere with one reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from serlib.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac")
"""The file types the corpus loaders accept."""

LFS_POINTER_PREFIX = b"version https://git-lfs"

MIN_SECONDS = 0.025
"""Shorter clips are refused: 25 ms is one analysis window (Wav2Vec2's first frame needs 400 samples
at 16 kHz), and no spoken word is that short. Real clips are far longer: RAVDESS's shortest is 2.9 s,
EmoDB's 1.4 s, IEMOCAP's about 0.6 s."""

SILENT_PEAK = 10 ** (-60 / 20)
"""A clip whose loudest sample (around its mean) stays below -60 dBFS holds no speech: 16-bit
quantisation noise sits near -90 dBFS, while the quietest real clips measured peak far higher
(RAVDESS -44 dBFS, EmoDB about 0 dBFS)."""

CLIP_LEVEL = 0.99
"""A sample this close to full scale (within 1 %, -0.09 dBFS) counts as clipped."""

CLIPPED_FRACTION = 0.01
"""A clip with more than 1 % of its samples at full scale is flattened, not just loud: its loudness
and spectrum, the cues a model learns emotion from, are distorted. Clean corpora stay far below
(RAVDESS and EmoDB at most 0.03 %, so one or two brief peaks touching the limit are never refused)."""

NON_FINITE = "audio contains NaN or infinite samples"
TOO_SHORT = f"too short to use (under {MIN_SECONDS * 1000:g} ms of audio)"
SILENT = f"silent (no sample above {20 * np.log10(SILENT_PEAK):.0f} dBFS)"
CLIPPED = f"clipped (over {CLIPPED_FRACTION:.0%} of samples at full scale)"
"""The reasons ``audio_problem`` gives: fixed strings, so reports can count clips per reason."""


class AudioError(UserError):
    """An audio file cannot be used; the message is ``<path>: <reason>``.

    A ``UserError`` (so a ``ValueError``): the fix is the user's (re-encode, re-download or remove it).
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def sniff_problem(path: str | Path) -> str | None:
    """Why a file is unusable judging by its size and first bytes, or None if it looks like audio.

    This is what a corpus scan checks for every file: it catches empty files, git-lfs pointers and
    files that are neither RIFF/WAVE nor FLAC, without decoding any audio.
    """
    try:  # os and open take str or Path as they are: no Path object to build per file
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
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


def audio_problem(samples: np.ndarray, sample_rate: int) -> str | None:
    """Why decoded audio ``[frames]`` or ``[frames, channels]`` is unusable, or None if it is fine.

    Checked on the file's own samples, before any downmix or resampling, which would hide clipping
    in one channel and let a resampler's ringing overshoot full scale.
    """
    samples = np.asarray(samples)
    if not np.isfinite(samples).all():
        return NON_FINITE
    if samples.shape[0] < MIN_SECONDS * sample_rate:
        return TOO_SHORT
    if np.abs(samples - samples.mean(axis=0)).max() < SILENT_PEAK:
        return SILENT
    if np.count_nonzero(np.abs(samples) >= CLIP_LEVEL) > CLIPPED_FRACTION * samples.size:
        return CLIPPED
    return None


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a WAV/FLAC file at its own rate: float32 ``[frames, channels]`` and the rate.

    Raises AudioError if the file cannot be decoded; the samples themselves are not judged here.
    The file is opened once (header and samples), which halves the cost for short clips.
    """
    problem = sniff_problem(path)
    if problem:
        raise AudioError(path, problem)
    try:
        with sf.SoundFile(str(path)) as handle:
            if handle.frames == 0:
                raise AudioError(path, "zero-length audio (no samples)")
            samples = handle.read(dtype="float32", always_2d=True)
            file_rate = handle.samplerate
    except (RuntimeError, sf.LibsndfileError) as error:
        raise AudioError(path, f"corrupt or unsupported audio ({error})") from None
    if samples.shape[0] == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    return samples, file_rate


def clip_problem(path: str | Path) -> str | None:
    """Why the file at ``path`` cannot be used (unreadable or ``audio_problem``), or None.

    What ``serlib scan --check-audio`` asks of every clip: the same verdict ``load_audio`` gives,
    without the cost of resampling.
    """
    try:
        samples, file_rate = read_audio(path)
    except AudioError as error:
        return error.reason
    return audio_problem(samples, file_rate)


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Read a WAV/FLAC file as float32 mono at ``sample_rate``; raise AudioError if unusable.

    Unusable means unreadable, or refused by ``audio_problem`` (NaN, too short, silent, clipped).
    """
    samples, file_rate = read_audio(path)
    problem = audio_problem(samples, file_rate)
    if problem:
        raise AudioError(path, problem)
    mono = to_mono(samples)
    return np.ascontiguousarray(resample(mono, file_rate, sample_rate), dtype=np.float32)
