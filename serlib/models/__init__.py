"""The models: encoders (CRNN, Wav2Vec2), the emotion head, the DANN wrapper, and a builder by name.

Every model here returns a dict from ``forward``: ``embedding`` [B, D] and ``logits`` [B, C], plus
``domain_logits`` [B, 2] for DANN models. ``build_model("crnn" | "dann" | "w2v2" | "w2v2-dann", ...)``
is what the command line and the notebooks call.
"""

from __future__ import annotations

from torch import nn

from serlib.errors import UserError
from serlib.models.adabn import SplitBatchNorm2d
from serlib.models.crnn import CRNNEncoder
from serlib.models.dann import DANN, GradientReversal, confusion_loss, grl_coefficient
from serlib.models.heads import EmotionClassifier, MLPHead, check_encoder, encoder_inputs
from serlib.models.wav2vec import build_wav2vec_encoder

MODEL_KINDS = ("crnn", "dann", "w2v2", "w2v2-dann")
"""The ``--model`` names: an encoder family, optionally with ``dann`` adaptation."""

HEAD_SIZES = {"crnn": (128, 128), "w2v2": (256, 64)}
"""Hidden widths of the (emotion, domain) heads per encoder family, as in the study."""


def encoder_family(kind: str) -> str:
    """``"crnn"`` for crnn/dann, ``"w2v2"`` for w2v2/w2v2-dann."""
    check_model_kind(kind)
    return "w2v2" if kind.startswith("w2v2") else "crnn"


def is_adversarial_kind(kind: str) -> bool:
    """Whether a ``--model`` name means domain-adversarial training (needs a target corpus)."""
    check_model_kind(kind)
    return kind in ("dann", "w2v2-dann")


def check_model_kind(kind: str) -> str:
    """Return ``kind`` if it names a model, else raise a one-line UserError."""
    if kind not in MODEL_KINDS:
        raise UserError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    return kind


def build_encoder(
    kind: str,
    *,
    n_mels: int = 128,
    encoder_name: str | None = None,
    seed: int = 0,
    dropout: float = 0.0,
    pool_bands: bool = False,
) -> nn.Module:
    """A fresh encoder for a ``--model`` name (Wav2Vec2 loads ``encoder_name``'s weights).

    ``dropout`` (CRNN only) drops features of the BiLSTM's input frames while training;
    ``pool_bands`` (CRNN only) averages the mel axis away before the BiLSTM.
    """
    if encoder_family(kind) == "crnn":
        return CRNNEncoder(n_mels=n_mels, dropout=dropout, pool_bands=pool_bands)
    if dropout:
        raise UserError(f"dropout applies to CRNN models (crnn, dann) only, got {kind!r}")
    if pool_bands:
        raise UserError(f"pool_bands applies to CRNN models (crnn, dann) only, got {kind!r}")
    return build_wav2vec_encoder(encoder_name, seed=seed)


def build_model(
    kind: str,
    num_classes: int,
    *,
    n_mels: int = 128,
    encoder_name: str | None = None,
    encoder: nn.Module | None = None,
    split_batchnorm: bool = False,
    dropout: float = 0.0,
    pool_bands: bool = False,
) -> nn.Module:
    """The model a ``--model`` name means: encoder + emotion head, plus a domain head for DANN.

    Pass ``encoder`` to reuse one already built (e.g. to load a checkpoint into the same shapes).
    ``split_batchnorm`` (a ``dann`` trained with ``target_batchnorm``) swaps in batch norm that
    normalises each domain's half of a training batch alone; the weights' names stay the same.
    ``dropout`` goes to a new CRNN encoder (``CRNNEncoder``); it holds no weights, so a run trained
    with it loads into a model built without it. ``pool_bands`` also goes to a new CRNN encoder; it
    changes the BiLSTM's weights, so a run trained with it must be built with it to load.
    """
    if num_classes < 2:
        raise UserError(f"need at least 2 classes, got {num_classes}; use a label scheme with more")
    if split_batchnorm and kind != "dann":
        raise UserError(
            f"split_batchnorm needs the dann model (a CRNN with batch norm), got {kind!r}"
        )
    encoder = (
        encoder
        if encoder is not None
        else build_encoder(
            kind,
            n_mels=n_mels,
            encoder_name=encoder_name,
            dropout=dropout,
            pool_bands=pool_bands,
        )
    )
    emotion_hidden, domain_hidden = HEAD_SIZES[encoder_family(kind)]
    if not is_adversarial_kind(kind):
        return EmotionClassifier(encoder, num_classes, hidden=emotion_hidden)
    model = DANN(encoder, num_classes, emotion_hidden=emotion_hidden, domain_hidden=domain_hidden)
    return SplitBatchNorm2d.convert(model) if split_batchnorm else model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of weights in ``model`` (all of them, or only those that get gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "CRNNEncoder",
    "DANN",
    "EmotionClassifier",
    "GradientReversal",
    "MLPHead",
    "MODEL_KINDS",
    "build_encoder",
    "build_model",
    "check_encoder",
    "check_model_kind",
    "confusion_loss",
    "count_parameters",
    "encoder_family",
    "encoder_inputs",
    "grl_coefficient",
    "is_adversarial_kind",
]
