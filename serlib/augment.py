"""Augmentation that costs little: masking on batches, perturbed waveforms computed once.

Two kinds, placed where they are cheapest:

- ``SpecAugment``: masks random mel bands and time spans of a whole batch of log-mels in a few
  tensor operations on the batch's device (no Python loop over clips). Training mode only; in
  ``eval()`` mode it returns its input unchanged.
- ``WavePerturbation``: speed (resampling, as Kaldi's speed perturbation: tempo and pitch move
  together) and additive white noise at a given SNR, applied to the waveform *once*, when the
  feature cache is filled. Its ``key()`` is part of the cache key, so a perturbed copy of a corpus
  is cached beside the clean one and reused every epoch, instead of running librosa's
  time-stretch on every item of every epoch.

Public API:

- ``SpecAugment(freq_masks=2, freq_width=16, time_masks=2, time_width=40, mask_value=0.0)``;
  ``forward(x[B, C, n_mels, T], mask[B, T] | None, generator=None) -> x``.
- ``WavePerturbation(speed=1.0, noise_snr_db=None, seed=0)``; ``apply(wave, sample_rate,
  clip_id) -> wave``; ``key() -> str``; ``is_identity``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import soxr
import torch
from torch import nn


class SpecAugment(nn.Module):
    """SpecAugment-style frequency and time masking of a batch ``[B, C, n_mels, T]``.

    Each clip gets ``freq_masks`` bands of 0..``freq_width`` mels and ``time_masks`` spans of
    0..``time_width`` frames set to ``mask_value`` (0 is the mean of normalised features). Time
    spans fall inside each clip's valid frames when a ``mask`` ``[B, T]`` is given. Random numbers
    are drawn on the CPU from ``generator``, so a seeded run masks the same way on any device.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 16,
        time_masks: int = 2,
        time_width: int = 40,
        mask_value: float = 0.0,
    ) -> None:
        super().__init__()
        if min(freq_masks, freq_width, time_masks, time_width) < 0:
            raise ValueError("SpecAugment mask counts and widths must be >= 0")
        self.freq_masks = freq_masks
        self.freq_width = freq_width
        self.time_masks = time_masks
        self.time_width = time_width
        self.mask_value = mask_value

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, "
            f"time_masks={self.time_masks}, time_width={self.time_width}"
        )

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if not self.training:
            return x
        if x.ndim != 4:
            raise ValueError(f"expected a batch [B, C, n_mels, T], got shape {tuple(x.shape)}")
        batch, _, n_mels, n_frames = x.shape
        if mask is None:
            lengths = torch.full((batch,), n_frames)
        else:
            lengths = mask.sum(dim=1).cpu()
        hidden_bands = random_spans(
            batch, self.freq_masks, self.freq_width, torch.full((batch,), n_mels), n_mels, generator
        )
        hidden_frames = random_spans(
            batch, self.time_masks, self.time_width, lengths, n_frames, generator
        )
        hidden = hidden_bands[:, None, :, None] | hidden_frames[:, None, None, :]
        return x.masked_fill(hidden.to(x.device), self.mask_value)


def random_spans(
    batch: int,
    count: int,
    max_width: int,
    lengths: torch.Tensor,
    size: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``[batch, size]`` booleans: ``count`` spans of 0..``max_width`` inside each row's length."""
    positions = torch.arange(size)
    if count == 0 or max_width == 0:
        return torch.zeros(batch, size, dtype=torch.bool)
    lengths = lengths.to(torch.long)[:, None]
    widths = (torch.rand(batch, count, generator=generator) * (max_width + 1)).long()
    widths = torch.minimum(widths, lengths)
    starts = (torch.rand(batch, count, generator=generator) * (lengths - widths + 1)).long()
    inside = (positions >= starts[..., None]) & (positions < (starts + widths)[..., None])
    return inside.any(dim=1)


@dataclass(frozen=True)
class WavePerturbation:
    """A deterministic change of a waveform, computed once into the feature cache.

    ``speed`` > 1 makes the clip shorter and higher (resampled by soxr); ``noise_snr_db`` adds
    white Gaussian noise that far below the clip's mean power. The noise for a clip depends only
    on ``seed`` and the clip's id, so recomputing a cache entry gives the same array.
    """

    speed: float = 1.0
    noise_snr_db: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.speed <= 2.0:
            raise ValueError(f"speed must be within [0.5, 2.0], got {self.speed}")

    @property
    def is_identity(self) -> bool:
        return self.speed == 1.0 and self.noise_snr_db is None

    def key(self) -> str:
        """Short stable hash, part of the cache key ("clean" for the identity)."""
        if self.is_identity:
            return "clean"
        text = json.dumps({"perturbation": asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def apply(self, wave: np.ndarray, sample_rate: int, clip_id: str) -> np.ndarray:
        """The perturbed copy of ``wave`` (float32); ``clip_id`` seeds the noise (e.g. the path)."""
        wave = np.asarray(wave, dtype=np.float32)
        if self.speed != 1.0:
            wave = soxr.resample(wave, sample_rate * self.speed, sample_rate, quality="HQ")
        if self.noise_snr_db is not None and len(wave):
            digest = hashlib.sha256(f"{self.seed}|{clip_id}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            signal_power = float(np.mean(np.square(wave, dtype=np.float64)))
            noise_power = signal_power / 10.0 ** (self.noise_snr_db / 10.0)
            noise = rng.standard_normal(len(wave)) * np.sqrt(noise_power)
            wave = wave + noise.astype(np.float32)
        return np.ascontiguousarray(wave, dtype=np.float32)
