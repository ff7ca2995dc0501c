"""Log-mel frontend in torch, and the normalisation of its output.

The frontend turns waveforms into the picture the CRNN sees: a log-mel spectrogram of shape
``[n_mels, frames]``. It is written in plain torch (``torch.stft`` times librosa's mel filter
bank), so it runs batched on the CPU or a GPU, and it matches ``librosa.feature.melspectrogram``
followed by ``librosa.power_to_db`` (tests/test_features.py shows it). No torchaudio.

Public API (stable; the cache, the datasets and the training loop rely on it):

- ``FrontendConfig``: frozen dataclass of every parameter that changes the output; its
  ``key()`` is a short stable hash used by the feature cache. Defaults are the study's
  (16 kHz, n_fft 1024, hop 256, 128 mels) and librosa's (Slaney mel scale and norm,
  ``center=True`` with ``pad_mode="constant"``, power 2, ``power_to_db(ref=1.0, amin=1e-10,
  top_db=80)``).
- ``LogMel(config)``: ``nn.Module``; ``forward(waves[B, L]) -> [B, n_mels, T]`` in dB.
- ``log_mel(wave, config)``: one clip, numpy in, numpy out.
- ``log_mel_many(waves, config, batch_size, device)``: many clips of different lengths, computed
  in batches, each exactly as if it were computed alone.
- ``frame_count(n_samples, config)``: frames a clip of ``n_samples`` gives (``1 + n // hop``).
- ``MelStats``: per-mel-band mean and std fitted on training features (``fit``), applied with
  ``apply``, saved into a run folder with ``to_dict``/``from_dict``.
- ``normalise_utterance(x)``: per-band mean/std over one utterance's own frames.
- ``trim_silence(x, top_db)``: one clip's log-mels without its leading and trailing silence.
- the normalisations themselves are named in ``serlib.config.NORMALISATIONS``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class FrontendConfig:
    """Every parameter that changes the log-mel output (and so the cache key)."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None  # None means sample_rate / 2, as in librosa
    power: float = 2.0
    center: bool = True
    pad_mode: str = "constant"  # librosa >= 0.10's default for stft
    amin: float = 1e-10
    ref: float = 1.0
    top_db: float | None = 80.0

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError(f"FrontendConfig sizes must be positive, got {self}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        nyquist = self.sample_rate / 2
        fmax = nyquist if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= nyquist:
            raise ValueError(
                f"need 0 <= fmin < fmax <= {nyquist} Hz, got fmin={self.fmin}, fmax={fmax}"
            )
        if self.amin <= 0 or self.ref <= 0:
            raise ValueError("amin and ref must be positive")
        if self.top_db is not None and self.top_db < 0:
            raise ValueError(f"top_db must be >= 0 or None, got {self.top_db}")

    def key(self) -> str:
        """Short stable hash of the parameters: equal configs give equal keys across runs."""
        text = json.dumps({"logmel": asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FrontendConfig:
        return cls(**values)


def frame_count(n_samples: int, config: FrontendConfig) -> int:
    """Frames of a clip with ``n_samples`` samples (librosa's count for center=True)."""
    if config.center:
        return 1 + n_samples // config.hop_length
    if n_samples < config.n_fft:
        raise ValueError(f"a clip of {n_samples} samples is shorter than n_fft={config.n_fft}")
    return 1 + (n_samples - config.n_fft) // config.hop_length


def mel_filterbank(config: FrontendConfig) -> np.ndarray:
    """librosa's mel filter bank ``[n_mels, 1 + n_fft // 2]`` (Slaney scale and norm)."""
    return librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
    )


class LogMel(nn.Module):
    """Batched log-mel spectrogram: ``[B, L]`` waveforms -> ``[B, n_mels, T]`` decibels.

    Follow it with ``.to(device)`` to run on a GPU and ``.double()`` for float64 output.
    It has no trainable parameters; the window and filter bank are buffers.
    """

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__()
        self.config = config or FrontendConfig()
        # float64 so that .double() gives librosa's window exactly; cast to the input's dtype on use
        window = torch.hann_window(self.config.n_fft, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window, persistent=False)
        filters = torch.from_numpy(mel_filterbank(self.config))
        self.register_buffer("filters", filters, persistent=False)

    def pad_for_centering(self, waves: torch.Tensor) -> torch.Tensor:
        """Pad n_fft // 2 samples on each side, as ``center=True`` does in librosa."""
        if not self.config.center:
            return waves
        half = self.config.n_fft // 2
        if self.config.pad_mode == "reflect" and waves.shape[-1] <= half:
            raise ValueError(f"reflect padding needs clips longer than {half} samples")
        return F.pad(waves.unsqueeze(1), (half, half), mode=self.config.pad_mode).squeeze(1)

    def power_mel(self, padded_waves: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram of already centre-padded waves: ``[B, L] -> [B, n_mels, T]``."""
        spectrum = torch.stft(
            padded_waves,
            n_fft=self.config.n_fft,
            hop_length=self.config.hop_length,
            window=self.window.to(padded_waves.dtype),
            center=False,
            return_complex=True,
        )
        power = spectrum.abs()
        if self.config.power != 1.0:
            power = power.pow(self.config.power)
        return torch.matmul(self.filters.to(power.dtype), power)

    def to_decibels(
        self, mel_power: torch.Tensor, n_frames: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``power_to_db`` per clip: 10 log10(max(S, amin) / ref), floored at max - top_db.

        ``n_frames`` gives each clip's valid frames in a padded batch, so that the top_db floor
        uses the clip's own maximum, as it would if the clip were computed alone.
        """
        cfg = self.config
        db = 10.0 * torch.log10(mel_power.clamp_min(cfg.amin))
        db = db - 10.0 * np.log10(max(cfg.amin, cfg.ref))
        if cfg.top_db is None:
            return db
        if n_frames is None:
            peak = db.amax(dim=(-2, -1), keepdim=True)
        else:
            frames = torch.arange(db.shape[-1], device=db.device)
            lengths = torch.as_tensor(list(n_frames), device=db.device)
            valid = (frames[None, :] < lengths[:, None])[:, None, :]
            peak = db.masked_fill(~valid, -torch.inf).amax(dim=(-2, -1), keepdim=True)
        return torch.maximum(db, peak - cfg.top_db)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        if waves.ndim == 1:
            return self.forward(waves.unsqueeze(0)).squeeze(0)
        if waves.ndim != 2:
            raise ValueError(f"expected waves of shape [B, L], got {tuple(waves.shape)}")
        return self.to_decibels(self.power_mel(self.pad_for_centering(waves)))


def log_mel(wave: np.ndarray, config: FrontendConfig | None = None) -> np.ndarray:
    """Log-mel of one clip: float waveform ``[L]`` -> float32 ``[n_mels, T]``."""
    return log_mel_many([wave], config, batch_size=1)[0]


@contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block, then restore the previous count.

    A clip's STFT is about a millisecond of work: splitting it across threads gains nothing, and
    on a laptop whose other core is busy each split operation waits for the straggler (measured
    20-70x slower with 2 threads on a loaded 2-core machine).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def log_mel_many(
    waves: Sequence[np.ndarray],
    config: FrontendConfig | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    frontend: LogMel | None = None,
) -> list[np.ndarray]:
    """Log-mels of clips of different lengths, batched, each exactly as if computed alone.

    Each clip is centre-padded on its own (so reflect padding sees its own edges), then zeros
    pad the batch to its longest clip; frames past a clip's own count are dropped and the top_db
    floor uses only its own frames. Clips are grouped by length to waste little padding.
    ``batch_size`` defaults to 1 on the CPU (one thread, clip by clip, is fastest there) and 32
    on a GPU. Returns float32 arrays in the input order.
    """
    frontend = frontend or LogMel(config).to(device)
    config = frontend.config
    device = frontend.filters.device
    on_cpu = device.type == "cpu"
    if batch_size is None:
        batch_size = 1 if on_cpu else 32
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i, wave in enumerate(waves):
        if np.ndim(wave) != 1:
            raise ValueError(f"clip {i}: expected a mono waveform [L], got shape {np.shape(wave)}")
    lengths = [len(wave) for wave in waves]
    order = np.argsort(lengths, kind="stable")
    results: list[np.ndarray | None] = [None] * len(waves)
    with one_cpu_thread() if on_cpu else nullcontext(), torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            n_frames = [frame_count(lengths[i], config) for i in chunk]
            decibels = log_mel_batch([waves[i] for i in chunk], n_frames, frontend)
            for row, i in enumerate(chunk):
                results[i] = np.ascontiguousarray(decibels[row, :, : n_frames[row]], np.float32)
    return results  # type: ignore[return-value]


def log_mel_batch(waves: list[np.ndarray], n_frames: list[int], frontend: LogMel) -> np.ndarray:
    """One padded batch ``[B, n_mels, max(n_frames)]`` (see ``log_mel_many``)."""
    padded = [
        frontend.pad_for_centering(torch.as_tensor(wave, dtype=torch.float32)[None])[0]
        for wave in waves
    ]
    longest = max(max(len(p) for p in padded), frontend.config.n_fft)
    batch = torch.zeros(len(waves), longest, dtype=torch.float32)
    for row, p in enumerate(padded):
        batch[row, : len(p)] = p
    mel_power = frontend.power_mel(batch.to(frontend.filters.device))[..., : max(n_frames)]
    return frontend.to_decibels(mel_power, n_frames).cpu().numpy()


@dataclass(frozen=True, eq=False)  # arrays inside: compare them with numpy, not ==
class MelStats:
    """Per-mel-band mean and standard deviation, fitted on training features only."""

    mean: np.ndarray  # [n_mels]
    std: np.ndarray  # [n_mels]

    @classmethod
    def fit(cls, features: Iterable[np.ndarray], min_std: float = 1e-5) -> MelStats:
        """Mean/std per band over every frame of every clip (float64 sums, so order-stable)."""
        total, total_sq, count = None, None, 0
        for x in features:
            x = np.asarray(x, dtype=np.float64)
            if x.ndim != 2:
                raise ValueError(f"expected features [n_mels, T], got shape {x.shape}")
            if total is None:
                total, total_sq = np.zeros(x.shape[0]), np.zeros(x.shape[0])
            elif x.shape[0] != total.shape[0]:
                raise ValueError(f"mixed mel counts: {x.shape[0]} vs {total.shape[0]}")
            total += x.sum(axis=1)
            total_sq += np.square(x).sum(axis=1)
            count += x.shape[1]
        if total is None or count == 0:
            raise ValueError("MelStats.fit needs at least one frame")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return cls(mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32))

    def apply(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Normalise features ``[..., n_mels, T]`` band by band."""
        if x.shape[-2] != len(self.mean):
            raise ValueError(f"features have {x.shape[-2]} mels, stats have {len(self.mean)}")
        if isinstance(x, torch.Tensor):
            mean = torch.as_tensor(self.mean, device=x.device, dtype=x.dtype)[:, None]
            std = torch.as_tensor(self.std, device=x.device, dtype=x.dtype)[:, None]
            return (x - mean) / std
        return ((x - self.mean[:, None]) / self.std[:, None]).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> MelStats:
        mean = np.asarray(values["mean"], dtype=np.float32)
        std = np.asarray(values["std"], dtype=np.float32)
        if mean.shape != std.shape or mean.ndim != 1:
            raise ValueError("MelStats needs 1-d mean and std of equal length")
        return cls(mean, std)


def normalise_utterance(x: np.ndarray, min_std: float = 1e-5) -> np.ndarray:
    """Per-band mean/std over one clip's own frames ``[n_mels, T]`` (cepstral-style CMVN).

    Removes the recording's level and channel colouring, which is part of the domain shift.
    """
    x = np.asarray(x, dtype=np.float32)
    mean = x.mean(axis=-1, keepdims=True)
    std = np.maximum(x.std(axis=-1, keepdims=True), min_std)
    return (x - mean) / std


def trim_silence(x: np.ndarray, top_db: float) -> np.ndarray:
    """One clip's log-mels ``[n_mels, T]`` without the leading and trailing frames that are more
    than ``top_db`` below its loudest frame; pauses inside the clip stay.

    Why: corpora differ in how much silence surrounds a clip (RAVDESS about 1 s on each side,
    IEMOCAP and EmoDB tightly cut). Random training crops then land on silence, and per-clip or
    per-corpus statistics measure the silence as much as the speech. A frame's loudness is its
    total mel power; trimming twice gives the same frames as trimming once. Returns a view.
    """
    if top_db <= 0:
        raise ValueError(f"top_db must be > 0, got {top_db}")
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected features [n_mels, T], got shape {x.shape}")
    if x.shape[1] == 0:
        return x
    db = x.astype(np.float64)
    peak = db.max(axis=0)  # per frame, so the power sum below cannot overflow
    loudness = peak + 10 * np.log10(np.power(10.0, (db - peak) / 10).sum(axis=0))
    loud = np.flatnonzero(loudness >= loudness.max() - top_db)
    return x[:, loud[0] : loud[-1] + 1]
