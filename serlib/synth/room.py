"""Recording conditions: the room, the microphone, the background noise and the level.

Much of what separates two emotional-speech corpora is not the speakers but the recording: IEMOCAP was
recorded in a room with the actors moving about, far from the microphones, with audible reverberation,
background noise and mains hum; RAVDESS in a studio, close to a condenser microphone, almost dry and
noiseless. A model trained on one learns those conditions along with the emotions, which is the
domain shift this course is about. These are "nuisance" differences: an encoder can learn to ignore
them, which is what domain-adversarial training asks of it.

One ``Recording`` describes a setup; ``record`` applies it to clean speech in one FFT convolution:
a synthetic room impulse response (exponentially decaying noise with a given RT60 and direct-to-
reverberant ratio, after Lehmann & Johansson 2008's statistical model), a microphone/channel EQ,
coloured background noise and hum at fixed absolute levels (a louder voice does not make the room
noisier), then the speech level.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.fft

from serlib.synth import dsp


@dataclass(frozen=True)
class Recording:
    """One recording setup (room + microphone + noise + gain)."""

    rt60_s: float
    """Reverberation time: seconds for the reverberant sound to decay by 60 dB."""
    drr_db: float
    """Direct-to-reverberant energy ratio: high when close to the microphone."""
    noise_dbfs: float
    """RMS level of the background noise, in dB relative to full scale."""
    noise_colour: float
    """Spectral exponent of the noise: 0 white (electronic hiss), 1 pink (room), 2 brown (rumble)."""
    hum_dbfs: float
    """Level of mains hum (50/60 Hz and harmonics); -120 for none."""
    hum_hz: float
    low_cut_hz: float
    """Corner of the microphone/preamp high-pass filter."""
    bump_hz: float
    """Centre of a broad EQ bump (room mode, microphone presence peak)."""
    bump_db: float
    high_cut_hz: float
    """Where the high-frequency roll-off (distance, off-axis microphone) starts."""
    high_cut_db_oct: float
    speech_dbfs: float
    """Active level of this setup's neutral speech; emotions and speakers move around it."""

    def as_dict(self) -> dict[str, float]:
        """The setup as a flat dict (rounded, prefixed ``rec_``) for the metadata sidecar."""
        return {f"rec_{k}": round(float(v), 3) for k, v in asdict(self).items()}


def vary(
    recording: Recording, rng: np.random.Generator, drr_db: float, level_db: float
) -> Recording:
    """The same setup for one more utterance: the speaker moved a little, the gain drifted."""
    return replace(
        recording,
        drr_db=recording.drr_db + rng.normal(0.0, drr_db),
        noise_dbfs=recording.noise_dbfs + rng.normal(0.0, 1.0),
        speech_dbfs=recording.speech_dbfs + rng.normal(0.0, level_db),
    )


def impulse_response(recording: Recording, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: a direct path plus an exponentially decaying diffuse tail.

    The tail is Gaussian noise under an envelope that falls 60 dB in ``rt60_s``, starting a few
    milliseconds after the direct sound, slightly low-passed (air and walls absorb high frequencies),
    and scaled so that direct / tail energy equals ``drr_db``.
    """
    length = max(64, int(1.1 * recording.rt60_s * dsp.SAMPLE_RATE))
    t = np.arange(length) / dsp.SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / recording.rt60_s)
    tail[: int(rng.uniform(0.002, 0.006) * dsp.SAMPLE_RATE)] = 0.0
    tail = np.convolve(tail, [0.5, 0.35, 0.15])[:length]
    tail *= math.sqrt(10.0 ** (-recording.drr_db / 10.0) / (np.sum(tail**2) + 1e-20))
    tail[0] += 1.0
    return tail


def channel_gain_db(recording: Recording, freqs: np.ndarray) -> np.ndarray:
    """The microphone/channel EQ in dB at ``freqs``: high-pass, a broad bump, a high roll-off."""
    f = np.maximum(freqs, 1.0)
    low_cut = -10.0 * np.log10(1.0 + (recording.low_cut_hz / f) ** 4)
    bump = recording.bump_db * np.exp(-0.5 * (np.log2(f / recording.bump_hz) / 0.8) ** 2)
    roll_off = -recording.high_cut_db_oct * 0.5 * np.log2(1.0 + (f / recording.high_cut_hz) ** 2)
    return low_cut + bump + roll_off


def _hum(recording: Recording, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: the fundamental and a few harmonics, built from one whole number of cycles."""
    period = int(round(dsp.SAMPLE_RATE / math.gcd(int(recording.hum_hz), dsp.SAMPLE_RATE)))
    t = np.arange(period) / dsp.SAMPLE_RATE
    cycle = np.zeros(period)
    for harmonic, weight in ((1, 1.0), (2, 0.5), (3, 0.6), (5, 0.3)):
        phase = rng.uniform(0, 2 * np.pi)
        cycle += weight * np.sin(2 * np.pi * harmonic * recording.hum_hz * t + phase)
    cycle *= dsp.db_to_gain(recording.hum_dbfs) / math.sqrt(np.mean(cycle**2))
    return np.resize(cycle, n_samples)


def record(
    speech: np.ndarray,
    recording: Recording,
    level_db: float,
    lead_s: float,
    trail_s: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, float]]:
    """Put clean speech (active level -20 dBFS) into the room, at ``level_db`` above the nominal level.

    ``lead_s`` and ``trail_s`` of room tone surround the speech (the reverberant tail rings into the
    trailing one). Returns the recorded samples at ``dsp.SAMPLE_RATE`` and what was measured: the
    speech level, signal-to-noise ratio, and any gain reduction applied to avoid clipping.
    """
    lead = int(round(lead_s * dsp.SAMPLE_RATE))
    n_samples = lead + speech.size + int(round(trail_s * dsp.SAMPLE_RATE))
    response = impulse_response(recording, rng)
    size = scipy.fft.next_fast_len(n_samples + response.size, real=True)
    freqs = np.fft.rfftfreq(size, 1.0 / dsp.SAMPLE_RATE)
    speech_gain = dsp.db_to_gain(recording.speech_dbfs + level_db + 20.0)
    # Single precision throughout: ample for 16-bit files, and the FFTs run twice as fast.
    placed = np.zeros(size, dtype=np.float32)
    placed[lead : lead + speech.size] = speech * speech_gain
    spectrum = scipy.fft.rfft(placed) * scipy.fft.rfft(response.astype(np.float32), n=size)

    noise = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    noise *= np.maximum(freqs, 20.0) ** (-recording.noise_colour / 2.0)
    noise[0] = 0.0
    noise_rms = math.sqrt(2.0 * np.sum(np.abs(noise) ** 2)) / size
    spectrum += (noise * (dsp.db_to_gain(recording.noise_dbfs) / noise_rms)).astype(np.complex64)

    spectrum *= dsp.db_to_gain(channel_gain_db(recording, freqs)).astype(np.float32)
    samples = scipy.fft.irfft(spectrum, n=size)[:n_samples].astype(np.float64)
    if recording.hum_dbfs > -100:
        samples += _hum(recording, n_samples, rng)

    peak = float(np.max(np.abs(samples)))
    reduction_db = 0.0
    if peak > 0.98:
        reduction_db = 20.0 * math.log10(0.98 / peak)
        samples *= 0.98 / peak
    speech_level = -20.0 + 20.0 * math.log10(speech_gain) + reduction_db
    info = {
        "speech_dbfs": round(speech_level, 2),
        "snr_db": round(speech_level - recording.noise_dbfs, 2),
        "gain_reduction_db": round(reduction_db, 2),
    }
    return samples, info
