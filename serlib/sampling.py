"""The order of the batches: which clips go together, in which order, epoch after epoch.

A loader is a dataset (``serlib.data``) plus an order. Two orders are used:

- ``EpochSampler`` (log-mels, pooled features): a seeded shuffle, or class-balanced draws, that is
  a pure function of (seed, epoch), so a resumed run sees the same batches
  (``serlib.epochs.epoch_seed``);
- ``LengthGroupedSampler`` (Wav2Vec2 waveforms): clips of similar length share a batch, so little of
  a batch is padding, while the batches themselves still come in a seeded random order.

``make_loader`` and ``waveform_loader`` build the loaders the runs use. Training loaders should use
``drop_last=True`` when the set is larger than a batch: a last batch of one clip breaks batch norm in
training mode.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from serlib.audio import probe_audio
from serlib.data import WaveformDataset, check_labels, collate_features
from serlib.epochs import epoch_seed


class EpochSampler(Sampler[int]):
    """Indices for one epoch, a pure function of ``(seed, epoch, cycle)``.

    ``shuffle=False`` gives 0..n-1. With ``labels`` it is class-balanced: ``num_samples``
    (default n) draws with replacement, each class equally likely.
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        labels: Sequence[int] | np.ndarray | None = None,
        num_samples: int | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"EpochSampler needs at least one item, got n={n}")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.num_samples = n if num_samples is None else num_samples
        self.weights = None
        if labels is not None:
            labels = check_labels(labels, n)
            if (labels < 0).any():
                raise ValueError("class-balanced sampling needs every item labelled")
            counts = np.bincount(labels)
            self.weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.float64)
        self.epoch, self.cycle = 0, 0

    def set_epoch(self, epoch: int, cycle: int = 0) -> None:
        self.epoch, self.cycle = epoch, cycle

    def __len__(self) -> int:
        return self.num_samples if self.weights is not None else self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, self.cycle))
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.num_samples, True, generator=generator)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        return iter(order.tolist())


def group_by_length(
    order: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    window: int = 50,
) -> list[list[int]]:
    """Cut ``order`` into batches of clips of similar length, in shuffled batch order.

    Each window of ``window * batch_size`` consecutive indices is sorted by length and cut into
    batches, so the randomness of ``order`` (and its class balance) survives at window scale;
    then the full batches are shuffled and a short remainder goes last.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    span = window * batch_size
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    # Only the very last batch may be short: a short one in the middle would shift every later
    # batch of the DataLoader, which cuts the flat order into batch_size pieces.
    short = batches[-1:] if batches and len(batches[-1]) < batch_size else []
    full = batches[: len(batches) - len(short)]
    rng.shuffle(full)
    return full + short


class LengthGroupedSampler(Sampler[int]):
    """Another sampler's epoch, reordered so each run of ``batch_size`` indices has similar lengths.

    Group-norm encoders (wav2vec2-base) take no attention mask and see zero padding as signal, so
    their batches should pad little; it also saves compute for every encoder. It wraps an
    ``EpochSampler``: the same indices per epoch (shuffled or class-balanced), the same
    ``set_epoch(epoch, cycle)``, so a resumed run still sees exactly the same batches. Without
    shuffling (evaluation) it simply goes longest first.
    """

    def __init__(
        self, sampler: EpochSampler, lengths: Sequence[int], batch_size: int, window: int = 50
    ) -> None:
        self.sampler = sampler
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.window = window
        self.epoch, self.cycle = 0, 0

    def set_epoch(self, epoch: int, cycle: int = 0) -> None:
        self.epoch, self.cycle = epoch, cycle
        self.sampler.set_epoch(epoch, cycle)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[int]:
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        random = self.sampler.shuffle or self.sampler.weights is not None
        if not random:
            return iter(order[np.argsort(-self.lengths[order], kind="stable")].tolist())
        seed = np.random.SeedSequence([self.sampler.seed, self.epoch, self.cycle, 3])
        batches = group_by_length(
            order, self.lengths, self.batch_size, np.random.default_rng(seed), self.window
        )
        return iter([index for batch in batches for index in batch])


def clip_lengths(dataset: WaveformDataset) -> np.ndarray:
    """Samples each clip of ``dataset`` will have (after its crop), read from the file headers
    without decoding."""
    lengths = []
    for path in dataset.paths:
        info = probe_audio(path)
        samples = int(info.frames * dataset.sample_rate / info.samplerate)
        lengths.append(
            samples if dataset.max_samples is None else min(samples, dataset.max_samples)
        )
    return np.asarray(lengths, dtype=np.int64)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    balanced: bool = False,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader with a deterministic ``EpochSampler`` and the dataset's own collate.

    ``num_workers=0`` is the fastest choice for cached log-mels on a laptop (no process start-up
    or copying); for ``WaveformDataset`` on a machine with spare cores, workers decode in
    parallel. Workers are not persistent, so ``set_epoch`` reaches them. An evaluation loader
    (no shuffling) over a dataset that knows its clips' ``lengths`` goes longest first: each batch
    is padded to its longest clip, and in corpus order a 20 s clip would pad 31 short ones.
    Predictions carry each clip's ``index``, so the order changes no score.
    """
    labels = getattr(dataset, "labels", None) if balanced else None
    if balanced and labels is None:
        raise ValueError("balanced sampling needs a dataset with labels")
    sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle, labels=labels)
    lengths = getattr(dataset, "lengths", None)
    if not shuffle and not balanced and lengths is not None:
        sampler = LengthGroupedSampler(sampler, lengths, batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=getattr(dataset, "collate", None) or collate_features,
        persistent_workers=False,
    )


def waveform_loader(
    dataset: WaveformDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    balanced: bool = False,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """``make_loader`` for waveforms, with batches grouped by clip length (less padding)."""
    plain = make_loader(
        dataset, batch_size, shuffle=shuffle, seed=seed, balanced=balanced, drop_last=drop_last
    )
    sampler = LengthGroupedSampler(plain.sampler, clip_lengths(dataset), batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=plain.collate_fn,
        persistent_workers=False,
    )
