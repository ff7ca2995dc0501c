"""Mixup (Zhang et al., 2018): train on convex mixtures of pairs of clips and of their labels.

Each training batch is mixed with a shuffled copy of itself: clip i becomes
``lam * x[i] + (1 - lam) * x[perm[i]]`` and its loss ``lam * CE(y[i]) + (1 - lam) * CE(y[perm[i]])``,
one ``lam`` per batch drawn from Beta(alpha, alpha). A model that must answer "70 % angry, 30 % sad"
for a blend cannot memorise single clips, which is what a from-scratch CRNN does with a few
thousand of them. It costs one permutation and one weighted sum per batch.

Random numbers come from torch's global generator, which ``serlib.train.fit`` seeds at every epoch,
so a resumed run mixes exactly as an uninterrupted one did. Only supervised steps mix: a DANN's
target rows have no labels to mix (``fit`` refuses mixup for it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Mixup:
    """One batch's draw: the weight ``lam`` of the batch itself and the partner of each row."""

    lam: float
    perm: torch.Tensor  # [B]: row i is mixed with row perm[i]

    @classmethod
    def draw(cls, batch_size: int, alpha: float) -> Mixup:
        """``lam`` ~ Beta(alpha, alpha) and a random permutation, from torch's global generator."""
        if not alpha > 0:
            raise ValueError(f"mixup alpha must be > 0, got {alpha}")
        beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
        return cls(float(beta.sample()), torch.randperm(batch_size))

    def mix(self, tensor: torch.Tensor) -> torch.Tensor:
        """Real-valued inputs (log-mels, waveforms) are blended; masks (bool or 0/1 integers) are
        OR-ed: a frame is real if it is real in either clip of the pair."""
        partner = tensor[self.perm.to(tensor.device)]
        if tensor.is_floating_point():
            return self.lam * tensor + (1 - self.lam) * partner
        return torch.maximum(tensor, partner)

    def inputs(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Every tensor a model takes, mixed with the same pairs."""
        return tuple(self.mix(tensor) for tensor in inputs)

    def loss(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """The cross-entropy against both labels of each mixed row, weighted as the inputs were."""
        partner = labels[self.perm.to(labels.device)]
        options = {"weight": class_weights, "label_smoothing": label_smoothing}
        return self.lam * F.cross_entropy(logits, labels, **options) + (
            1 - self.lam
        ) * F.cross_entropy(logits, partner, **options)
