"""The few signal-processing tools the synthesiser needs, in plain numpy.

The voice is shaped in the short-time Fourier domain: the excitation (a pulse train and a noise) is cut
into overlapping frames, each frame's spectrum is multiplied by that moment's vocal-tract envelope,
and the frames are added back together. This is how a vocoder works, and it lets every formant,
voicing and noise change happen as one array operation per utterance instead of a filter per sample.
These helpers are written here rather than taken from librosa so that generating a corpus needs only
numpy and scipy, starts fast in worker processes, and gives the same bits on every run.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

SAMPLE_RATE = 16_000
"""The rate the voice is synthesised at (RAVDESS-like files are resampled to 48 kHz when written)."""

N_FFT = 512
"""Frame length of the spectral shaping: 32 ms, long enough to resolve harmonics of a low voice."""

HOP = 128
"""Frame step: 8 ms, i.e. 125 control frames per second, fine enough for consonant bursts."""

FRAME_RATE = SAMPLE_RATE / HOP

FREQUENCIES = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE).astype(np.float32)
"""The centre frequency (Hz) of each of the 257 spectral bins."""

_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
_OVERLAP = N_FFT // HOP
# A periodic Hann window used for analysis and synthesis sums (squared) to 1.5 at 75 % overlap.
_WINDOW_SQUARE_SUM = float(np.sum(_WINDOW**2) / HOP)


def n_frames(n_samples: int) -> int:
    """How many centred frames cover ``n_samples`` (frame t is centred on sample t * HOP)."""
    return 1 + n_samples // HOP


def stft(signals: np.ndarray) -> np.ndarray:
    """Centred short-time spectra of one or more signals: [..., samples] -> [..., frames, bins].

    Works in single precision (complex64): plenty for 16-bit audio, and twice as fast.
    """
    half = N_FFT // 2
    padded = np.pad(
        signals.astype(np.float32), [(0, 0)] * (signals.ndim - 1) + [(half, half + HOP)]
    )
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[..., ::HOP, :]
    frames = frames[..., : n_frames(signals.shape[-1]), :]
    return scipy.fft.rfft(frames * _WINDOW, axis=-1)


def istft(spectra: np.ndarray, n_samples: int) -> np.ndarray:
    """Overlap-add [frames, bins] spectra back into ``n_samples`` samples (inverse of ``stft``).

    With a hop of a quarter frame, every fourth frame tiles the signal without overlap, so the
    overlap-add is four reshapes and adds rather than a loop over frames.
    """
    frames = scipy.fft.irfft(spectra, n=N_FFT, axis=-1) * _WINDOW
    count = frames.shape[0]
    out = np.zeros((count + _OVERLAP) * HOP + N_FFT, dtype=frames.dtype)
    for offset in range(_OVERLAP):
        group = frames[offset::_OVERLAP]
        start = offset * HOP
        out[start : start + group.size] += group.reshape(-1)
    half = N_FFT // 2
    return out[half : half + n_samples] / _WINDOW_SQUARE_SUM


def frames_to_samples(track: np.ndarray, n_samples: int) -> np.ndarray:
    """Linearly interpolate a per-frame control track to one value per sample."""
    return np.interp(np.arange(n_samples), np.arange(track.size) * HOP, track)


def smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` frames (odd), edges held, so gains ramp instead of jumping."""
    if width <= 1:
        return track
    kernel = np.full(width, 1.0 / width)
    padded = np.pad(track, width // 2, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def db_to_gain(db: float | np.ndarray) -> float | np.ndarray:
    """Decibels to a linear amplitude factor."""
    if isinstance(db, np.ndarray):
        return 10.0 ** (db / 20.0)
    return 10.0 ** (float(db) / 20.0)


def rms_db(signal: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (1.0)."""
    return float(10.0 * np.log10(np.mean(np.square(signal, dtype=np.float64)) + 1e-20))


def coloured_noise(n_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), via one FFT."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(n_samples, 1.0 / SAMPLE_RATE)
    spectrum *= np.maximum(freqs, 20.0) ** (-exponent / 2.0)
    noise = np.fft.irfft(spectrum, n=n_samples)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-20)
