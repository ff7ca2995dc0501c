"""Domain-adversarial training (DANN, Ganin et al. 2016) around any encoder.

An encoder maps a batch to embeddings [B, D]. Two heads read the embedding: the emotion head learns
the task on labelled source data; the domain head learns to tell source from target. Between the
embedding and the domain head sits a gradient-reversal layer: identity going forward, gradient times
``-coefficient`` going back. The domain head therefore gets better at spotting the domain while the
encoder is pushed, by the reversed gradient, to make the domains indistinguishable, which is what
lets an emotion head trained on the source also work on the target.

The coefficient starts at 0 (the domain head's early, random gradients would only add noise) and
ramps up with training progress p in [0, 1] as 2 / (1 + exp(-10 p)) - 1, capped (the study used 0.7)
so the adversary never overwhelms the emotion loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from serlib.models.heads import MLPHead, check_encoder, encoder_inputs

DOMAIN_CLASSES = 2
"""Domain labels: 0 = source, 1 = target."""


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by -coefficient backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.coefficient, None


class GradientReversal(nn.Module):
    """The gradient-reversal layer as a module; the coefficient is given per call."""

    def forward(self, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        return _ReverseGradient.apply(x, float(coefficient))


def grl_coefficient(progress: float, cap: float = 0.7, gamma: float = 10.0) -> float:
    """The reversal strength at training progress ``progress`` in [0, 1]: the DANN ramp, capped."""
    if not 0.0 <= cap:
        raise ValueError(f"cap must be >= 0, got {cap}")
    progress = min(max(float(progress), 0.0), 1.0)
    return min(cap, 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def confusion_loss(domain_head: nn.Module, embedding: torch.Tensor) -> torch.Tensor:
    """How far the domain head's guess on ``embedding`` is from 50/50, for the encoder to lower.

    The bounded alternative to gradient reversal (domain confusion, Tzeng et al. 2015): the
    reversed cross-entropy has no upper bound, so an encoder can "win" by making the domain head
    confidently *wrong*, and the two chase each other (domain accuracy swinging 0.03-0.88 on the
    synthetic corpora). Cross-entropy against the uniform distribution is smallest when the head
    cannot tell, and no smaller when it is fooled. The head's weights are detached here, so this
    loss moves only the encoder; the head keeps learning from its own cross-entropy.
    """
    frozen = {name: weight.detach() for name, weight in domain_head.named_parameters()}
    logits = torch.func.functional_call(domain_head, frozen, (embedding,))
    return -F.log_softmax(logits.float(), dim=1).mean()


class DANN(nn.Module):
    """An encoder with an emotion head and, behind a gradient reversal, a domain head.

    ``forward(*inputs, grl_coefficient=c)`` returns a dict with ``embedding`` [B, D], ``logits``
    [B, C] (emotion) and ``domain_logits`` [B, 2]. At test time only ``logits`` matter, so a DANN
    model evaluates, predicts and saves exactly like an ``EmotionClassifier``.
    """

    adversarial = True
    """The training loop feeds target batches and a coefficient to models that say this."""

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        emotion_hidden: int = 128,
        domain_hidden: int = 128,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.encoder = check_encoder(encoder)
        self.input_keys = tuple(encoder.input_keys)
        self.head = MLPHead(encoder.embedding_dim, emotion_hidden, num_classes, dropout)
        self.reverse = GradientReversal()
        self.domain_head = MLPHead(encoder.embedding_dim, domain_hidden, DOMAIN_CLASSES, dropout)
        self.num_classes = num_classes

    def forward(
        self, *inputs: torch.Tensor, grl_coefficient: float = 0.0
    ) -> dict[str, torch.Tensor]:
        embedding = self.encoder(*inputs)
        return {
            "embedding": embedding,
            "logits": self.head(embedding),
            "domain_logits": self.domain_head(self.reverse(embedding, grl_coefficient)),
        }


__all__ = [
    "DANN",
    "DOMAIN_CLASSES",
    "GradientReversal",
    "confusion_loss",
    "encoder_inputs",
    "grl_coefficient",
]
