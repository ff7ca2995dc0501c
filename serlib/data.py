"""Datasets and batches: from cached arrays to the dicts a model trains on.

Every batch is a dict of tensors, the same for every model:

- log-mel batches (``FeatureDataset`` + ``collate_features``):
  ``{"x": float32 [B, 1, n_mels, T], "mask": bool [B, T] (True = a real frame),
  "label": long [B] (-1 = unlabelled), "domain": long [B], "index": long [B]}``
- waveform batches for Wav2Vec2 (``WaveformDataset`` + ``collate_waves``):
  ``{"wave": float32 [B, L], "attention_mask": long [B, L] (1 = a real sample),
  "label", "domain", "index"}``
- frozen Wav2Vec2 features (``PooledStatesDataset``): ``{"x": float32 [B, S, D], "label",
  "domain", "index"}``, S hidden states of width D per clip

``index`` is the row of the item in its dataset, so predictions can be joined back to the table.

The random crops of epoch ``e`` (``FeatureDataset.set_epoch``) are a pure function of ``(seed, e)``
(``serlib.epochs.epoch_seed``), so a resumed run sees exactly the crops it would have seen. Which
clips share a batch, and in which order, is ``serlib.sampling``'s job.

Public API: ``encode_labels``, ``FeatureDataset``, ``collate_features``, ``WaveformDataset``,
``collate_waves``, ``PooledStatesDataset``, ``CROPS = ("random", "center", "start")``; helpers for
other datasets that follow the same batch layout: ``check_labels`` (labels or -1) and ``stack_ids``
(label/domain/index tensors).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from serlib.audio import clip_problem, load_audio
from serlib.config import NORMALISATIONS
from serlib.corpora.base import Skip
from serlib.epochs import epoch_seed
from serlib.features import MelStats, normalise_utterance

CROPS = ("random", "center", "start")


def encode_labels(labels: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Class ids (int64) for ``labels`` in the order of ``names``; unknown labels are an error."""
    lookup = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(label) for label in labels if label not in lookup})
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {list(names)}")
    return np.array([lookup[label] for label in labels], dtype=np.int64)


def check_labels(labels: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray:
    """Labels as int64 ``[n]``; None means unlabelled (-1 everywhere)."""
    if labels is None:
        return np.full(n, -1, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected {n} integer labels, got shape {labels.shape} ({labels.dtype})")
    return labels.astype(np.int64)


def crop_starts(lengths: np.ndarray, size: int, crop: str, rng: np.random.Generator) -> np.ndarray:
    """Where each clip's window of ``size`` starts: random, centred or at the start."""
    room = np.maximum(lengths - size, 0)
    if crop == "random":
        return np.floor(rng.random(len(lengths)) * (room + 1)).astype(np.int64)
    if crop == "center":
        return room // 2
    return np.zeros(len(lengths), dtype=np.int64)


def normalise(x: np.ndarray, normalisation: str, stats: MelStats | None) -> np.ndarray:
    """One clip ``[n_mels, T]`` as contiguous float32, normalised as ``FeatureDataset`` says."""
    if normalisation == "global":
        return np.ascontiguousarray(stats.apply(x), dtype=np.float32)
    if normalisation == "utterance":
        return np.ascontiguousarray(normalise_utterance(x), dtype=np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


class FeatureDataset(Dataset):
    """Log-mel clips in memory (e.g. ``load_features(...).arrays``), cropped and normalised.

    ``n_frames``: the window length (300, as the study); longer clips are cropped (``crop``:
    "random" for training, "center" or "start" for evaluation), shorter ones padded with
    ``pad_value`` when ``fixed_length`` (the study), else left short for a variable-length batch
    with a mask. ``n_frames=None`` keeps whole clips. ``normalisation``: "global" (per-band
    ``stats`` fitted on the training set), "utterance" (each clip's own per-band mean/std over all
    its frames), or "none". The clips are normalised once, here, into float32 arrays: an item is
    then a slice (a view into the set's arrays, as ``TensorDataset`` gives; batches are fresh
    copies), with no per-epoch arithmetic (numpy's float16 -> float32 cast alone cost more than
    the rest of an item).
    """

    def __init__(
        self,
        features: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        *,
        domain: int = 0,
        n_frames: int | None = 300,
        fixed_length: bool = True,
        crop: str = "random",
        normalisation: str = "global",
        stats: MelStats | None = None,
        pad_value: float = 0.0,
        seed: int = 0,
    ) -> None:
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}"
            )
        if normalisation == "global" and stats is None:
            raise ValueError(
                'normalisation="global" needs stats (MelStats.fit on the training set)'
            )
        if n_frames is not None and n_frames < 1:
            raise ValueError(f"n_frames must be >= 1 or None, got {n_frames}")
        if len(features) == 0:
            raise ValueError("FeatureDataset needs at least one clip")
        n_mels = {np.shape(x)[0] for x in features}
        if len(n_mels) != 1 or any(np.ndim(x) != 2 for x in features):
            raise ValueError("features must all be [n_mels, T] arrays with the same n_mels")
        self.labels = check_labels(labels, len(features))
        self.domain = domain
        self.n_frames = n_frames
        self.fixed_length = fixed_length
        self.crop = crop
        self.pad_value = pad_value
        self.seed = seed
        self.normalisation = normalisation
        self.features = [normalise(x, normalisation, stats) for x in features]
        self.lengths = np.array([x.shape[1] for x in self.features], dtype=np.int64)
        self.set_epoch(0)

    def set_epoch(self, epoch: int, cycle: int = 0) -> None:
        """Draw this epoch's crop positions (a pure function of seed, epoch and cycle)."""
        rng = np.random.default_rng(epoch_seed(self.seed, epoch, cycle, stream=1))
        size = self.n_frames if self.n_frames is not None else int(self.lengths.max())
        self.starts = crop_starts(self.lengths, size, self.crop, rng)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        x = self.features[index]
        start = int(self.starts[index])
        stop = x.shape[1] if self.n_frames is None else start + self.n_frames
        length = min(stop, x.shape[1]) - start
        if self.fixed_length and self.n_frames is not None and length < self.n_frames:
            window = np.full((x.shape[0], self.n_frames), self.pad_value, dtype=np.float32)
            window[:, :length] = x[:, start:stop]
        else:
            window = x[:, start:stop]  # a view, as TensorDataset gives; collate copies it
        return {
            "x": torch.from_numpy(window)[None],
            "length": length,
            "label": int(self.labels[index]),
            "domain": self.domain,
            "index": index,
        }

    def collate(self, items: list[dict]) -> dict:
        """``collate_features`` with this dataset's ``pad_value``."""
        return collate_features(items, self.pad_value)


def collate_features(items: list[dict], pad_value: float = 0.0) -> dict:
    """Stack log-mel items into a batch, padding to the longest with a frame mask.

    Built in numpy (one thread) and handed to torch without a copy: on a busy 2-core laptop,
    torch's multi-threaded fill and copy of a batch were measured 100x slower than this.
    """
    n_frames = max(item["x"].shape[-1] for item in items)
    n_mels = items[0]["x"].shape[-2]
    x = np.full((len(items), 1, n_mels, n_frames), pad_value, dtype=np.float32)
    mask = np.zeros((len(items), n_frames), dtype=bool)
    for row, item in enumerate(items):
        x[row, :, :, : item["x"].shape[-1]] = item["x"].numpy()
        mask[row, : item["length"]] = True
    return {"x": torch.from_numpy(x), "mask": torch.from_numpy(mask), **stack_ids(items)}


def stack_ids(items: list[dict]) -> dict:
    """The label/domain/index fields of a batch as long tensors."""
    return {
        name: torch.tensor([item[name] for item in items], dtype=torch.long)
        for name in ("label", "domain", "index")
    }


class WaveformDataset(Dataset):
    """Audio files decoded on access, for models that take raw waveforms (Wav2Vec2).

    Headers are checked up front: files that cannot be used are left out and listed in
    ``skipped`` (``kept`` holds the positions of the rest in ``paths``; ``labels`` are given for
    all ``paths``). Clips longer than ``max_seconds`` are cropped (random in training, else
    centred/start), and each clip is scaled to zero mean and unit variance when ``normalise``
    (what Wav2Vec2FeatureExtractor does).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int] | np.ndarray | None = None,
        *,
        domain: int = 0,
        sample_rate: int = 16000,
        max_seconds: float | None = None,
        crop: str = "random",
        normalise: bool = True,
        seed: int = 0,
    ) -> None:
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        all_labels = check_labels(labels, len(paths))
        self.skipped: list[Skip] = []
        self.kept: list[int] = []
        for i, path in enumerate(paths):  # decoded once now, so no clip fails mid-training
            problem = clip_problem(path)
            if problem is None:
                self.kept.append(i)
            else:
                self.skipped.append(Skip(str(path), problem))
        if not self.kept:
            raise ValueError(f"none of the {len(paths)} audio files is usable")
        self.paths = [str(paths[i]) for i in self.kept]
        self.labels = all_labels[self.kept]
        self.domain = domain
        self.sample_rate = sample_rate
        self.max_samples = None if max_seconds is None else int(round(max_seconds * sample_rate))
        self.crop = crop
        self.normalise = normalise
        self.seed = seed
        self.epoch, self.cycle = 0, 0

    def set_epoch(self, epoch: int, cycle: int = 0) -> None:
        self.epoch, self.cycle = epoch, cycle

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        wave = load_audio(self.paths[index], self.sample_rate)
        if self.max_samples is not None and len(wave) > self.max_samples:
            rng = np.random.default_rng(epoch_seed(self.seed, self.epoch, self.cycle, 2 + index))
            start = int(crop_starts(np.array([len(wave)]), self.max_samples, self.crop, rng)[0])
            wave = wave[start : start + self.max_samples]
        if self.normalise:
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        return {
            "wave": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
            "label": int(self.labels[index]),
            "domain": self.domain,
            "index": index,
        }

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return collate_waves(items)


def collate_waves(items: list[dict]) -> dict:
    """Pad waveforms with zeros to the longest; ``attention_mask`` marks the real samples."""
    longest = max(len(item["wave"]) for item in items)
    wave = np.zeros((len(items), longest), dtype=np.float32)
    attention_mask = np.zeros((len(items), longest), dtype=np.int64)
    for row, item in enumerate(items):
        wave[row, : len(item["wave"])] = item["wave"].numpy()
        attention_mask[row, : len(item["wave"])] = 1
    return {
        "wave": torch.from_numpy(wave),
        "attention_mask": torch.from_numpy(attention_mask),
        **stack_ids(items),
    }


class PooledStatesDataset(Dataset):
    """Cached Wav2Vec2 pooled states [S, D] per clip, with labels: what frozen-mode heads train on.

    ``S`` is the number of hidden states (layers + 1), ``D`` the encoder's width; see
    ``serlib.cache.load_pooled_states``. Items and batches follow the layout above:
    ``{"x", "label", "domain", "index"}`` with ``x`` float32 [S, D] (batched [B, S, D]).
    """

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        domain: int = 0,
    ) -> None:
        if len(arrays) == 0:
            raise ValueError("PooledStatesDataset needs at least one clip")
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"expected pooled states of one shape [S, D], got shapes {shapes}")
        self.arrays = list(arrays)
        self.labels = check_labels(labels, len(self.arrays))
        self.domain = domain

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> dict:
        return {
            "x": torch.from_numpy(np.asarray(self.arrays[index], dtype=np.float32)),
            "label": int(self.labels[index]),
            "domain": self.domain,
            "index": index,
        }

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return {"x": torch.stack([item["x"] for item in items]), **stack_ids(items)}
