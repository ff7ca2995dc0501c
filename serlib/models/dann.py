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

One training step sends a joint batch through the model (``concat_inputs``: source rows first,
then target rows), and ``DomainAdversarialLoss`` turns the model's outputs on it into the number the
training loop minimises: the emotion loss on the source rows plus the weighted domain loss on all
rows, and, for the "confusion" adversary, the term that pushes the encoder towards a 50/50 domain
guess. The loop around it only adds hardware details (autocast, gradient accumulation, clipping);
see ``serlib.train.train_one_epoch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from serlib.config import ADVERSARIES
from serlib.errors import UserError
from serlib.models.heads import MLPHead, check_encoder

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


def pad_last_dim(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """Right-pad the last (time) axis with zeros (False for masks) up to ``length``."""
    missing = length - tensor.shape[-1]
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor.new_zeros(*tensor.shape[:-1], missing)], dim=-1)


def concat_inputs(source: tuple, target: tuple) -> tuple:
    """One joint batch from a source and a target batch's inputs: source rows first.

    DANN sends both domains through the model in one forward pass, padding time axes to the longer
    of the two: one pass keeps batch-norm statistics shared between the domains and is what
    distributed data parallel expects.
    """
    joined = []
    for a, b in zip(source, target, strict=True):
        length = max(a.shape[-1], b.shape[-1])
        joined.append(torch.cat([pad_last_dim(a, length), pad_last_dim(b, length)], dim=0))
    return tuple(joined)


def domain_labels(n_source: int, n_rows: int, device: torch.device | None = None) -> torch.Tensor:
    """The domain of each row of a joint batch: 0 for the first ``n_source`` rows, 1 after."""
    labels = torch.ones(n_rows, dtype=torch.long, device=device)
    labels[:n_source] = 0
    return labels


@dataclass
class LossParts:
    """What one DANN step minimised, part by part (tensors, so nothing waits for the GPU)."""

    total: torch.Tensor  # what backward() gets
    emotion: torch.Tensor  # emotion cross-entropy on the source rows (class-weighted)
    domain: torch.Tensor  # domain cross-entropy on all rows: trains the domain head
    fooling: torch.Tensor | None  # confusion adversary only: distance from a 50/50 domain guess
    domain_correct: torch.Tensor  # rows whose domain the head guessed right
    domain_seen: int  # rows in the joint batch

    @property
    def domain_accuracy(self) -> float:
        return self.domain_correct.item() / self.domain_seen


@dataclass(frozen=True)
class DomainAdversarialLoss:
    """The DANN training loss, for a model's outputs on one joint batch ``[source rows; target rows]``.

    Shapes, for ``n`` labelled source rows and ``m`` unlabelled target rows::

        outputs["logits"]         [n + m, C]   only the first n rows have emotion labels
        outputs["domain_logits"]  [n + m, 2]   domain labels: 0 for source rows, 1 for target rows
        outputs["embedding"]      [n + m, D]   used by the confusion adversary
        labels                    [n]          emotion classes of the source rows

    ``adversary="reversal"`` (Ganin et al.): the model was run with the gradient-reversal
    coefficient, so the domain cross-entropy trains the domain head and, reversed, the encoder::

        total = emotion + weight * domain

    ``adversary="confusion"`` (Tzeng et al.): the model was run with the reversal switched off
    (coefficient 0, see ``reversal_coefficient``), so the domain cross-entropy trains the head
    alone, and the encoder gets the bounded confusion loss, ramped like the reversal::

        total = emotion + weight * domain + weight * coefficient * fooling
    """

    adversary: str = "reversal"
    weight: float = 0.5
    label_smoothing: float = 0.0  # of the emotion loss (``TrainConfig.label_smoothing``)

    def __post_init__(self) -> None:
        if self.adversary not in ADVERSARIES:
            raise UserError(
                f"adversary must be one of {', '.join(ADVERSARIES)}, got {self.adversary!r}"
            )
        if not self.weight >= 0:
            raise UserError(f"weight (the domain_weight) must be >= 0, got {self.weight}")

    def reversal_coefficient(self, coefficient: float) -> float:
        """The coefficient to run the model's gradient reversal with (0 for confusion)."""
        return 0.0 if self.adversary == "confusion" else coefficient

    def __call__(
        self,
        outputs: dict[str, torch.Tensor],
        labels: torch.Tensor,
        coefficient: float,
        *,
        domain_head: nn.Module,
        class_weights: torch.Tensor | None = None,
    ) -> LossParts:
        """The total loss and its parts; ``domain_head`` is the model's (the confusion term's)."""
        n_source = labels.shape[0]
        logits = outputs["logits"][:n_source].float()  # [n, C]: source rows only
        domain_logits = outputs["domain_logits"].float()  # [n + m, 2]
        domains = domain_labels(n_source, domain_logits.shape[0], labels.device)  # [n + m]
        emotion = F.cross_entropy(
            logits, labels, weight=class_weights, label_smoothing=self.label_smoothing
        )
        domain = F.cross_entropy(domain_logits, domains)
        total = emotion + self.weight * domain
        fooling = None
        if self.adversary == "confusion":
            fooling = confusion_loss(domain_head, outputs["embedding"])
            total = total + self.weight * coefficient * fooling
        return LossParts(
            total=total,
            emotion=emotion,
            domain=domain,
            fooling=fooling,
            domain_correct=(domain_logits.argmax(dim=1) == domains).sum(),
            domain_seen=len(domains),
        )


__all__ = [
    "DANN",
    "DOMAIN_CLASSES",
    "DomainAdversarialLoss",
    "GradientReversal",
    "LossParts",
    "concat_inputs",
    "confusion_loss",
    "domain_labels",
    "grl_coefficient",
]
