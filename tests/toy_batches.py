"""Tiny in-memory log-mel batches for training-loop tests (no audio, no feature cache)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class ToyMels(Dataset):
    """Random log-mels where class c lights up its own band of mels; ``shift`` fakes a new domain.

    Class c's band is mels ``w*c .. w*c + w - 1`` with ``w = n_mels // (classes + 1)``.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        shift: float = 0.0,
        *,
        n_mels: int = 16,
        frames: int = 24,
        classes: int = 3,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        width = n_mels // (classes + 1)
        self.frames = frames
        self.labels = torch.arange(n) % classes
        self.x = torch.randn(n, 1, n_mels, frames, generator=generator) + shift
        for c in range(classes):
            self.x[self.labels == c, :, width * c : width * (c + 1)] += 1.5

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {
            "x": self.x[i],
            "mask": torch.ones(self.frames, dtype=torch.bool),
            "label": self.labels[i],
            "domain": torch.tensor(0),
            "index": torch.tensor(i),
        }


class FailingLoader:
    """A loader that dies after ``fail_after`` batches in total: a crash in mid-epoch."""

    def __init__(self, loader: DataLoader, fail_after: int) -> None:
        self.loader, self.left = loader, fail_after

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if self.left == 0:
                raise RuntimeError("simulated crash")
            self.left -= 1
            yield batch
