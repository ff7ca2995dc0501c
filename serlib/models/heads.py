"""What every encoder gets on top: a small MLP head, and the plain emotion classifier.

An *encoder* is any ``nn.Module`` with

- ``embedding_dim``: the size D of the embedding it returns;
- ``input_keys``: the names of the batch entries its ``forward`` takes, in order, e.g.
  ``("x", "mask")`` for the CRNN or ``("wave", "attention_mask")`` for Wav2Vec2;
- ``forward(*tensors) -> [B, D]``.

That is the whole contract: the classifier, the DANN wrapper and the training loop only ever talk
to an encoder through it, which is how the CRNN and Wav2Vec2 share one loop.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def check_encoder(encoder: nn.Module) -> nn.Module:
    """Return ``encoder`` if it follows the encoder contract, else raise a TypeError saying why."""
    missing = [name for name in ("embedding_dim", "input_keys") if not hasattr(encoder, name)]
    if missing:
        raise TypeError(
            f"{type(encoder).__name__} is not an encoder: it has no {', '.join(missing)}"
        )
    return encoder


def encoder_inputs(batch: Mapping[str, torch.Tensor], keys: tuple[str, ...]) -> tuple:
    """The tensors a model takes, picked from a batch dict in the order of ``keys``."""
    missing = [key for key in keys if key not in batch]
    if missing:
        raise KeyError(f"batch has no {', '.join(missing)} (it has {', '.join(batch)})")
    return tuple(batch[key] for key in keys)


class MLPHead(nn.Sequential):
    """Linear, ReLU, dropout, linear: embedding [B, D] -> scores [B, out]."""

    def __init__(self, in_features: int, hidden: int, out_features: int, dropout: float = 0.3):
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_features),
        )


class EmotionClassifier(nn.Module):
    """An encoder and an emotion head; ``forward`` returns ``embedding`` and ``logits``."""

    adversarial = False

    def __init__(
        self, encoder: nn.Module, num_classes: int, hidden: int = 128, dropout: float = 0.3
    ):
        super().__init__()
        self.encoder = check_encoder(encoder)
        self.input_keys = tuple(encoder.input_keys)
        self.head = MLPHead(encoder.embedding_dim, hidden, num_classes, dropout)
        self.num_classes = num_classes

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        embedding = self.encoder(*inputs)
        return {"embedding": embedding, "logits": self.head(embedding)}
