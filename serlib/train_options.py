"""``serlib train``'s options that change one training or input setting of the profile.

Each option is None unless given, so a profile's own value stays unless the command line asks for
another (``serlib.config.profile_settings`` skips None); ``OPTIONAL_FLAGS`` names them for
``serlib.cli.train_command``, and ``SUPERVISED_FLAGS`` (all but the DANN's) for ``serlib
benchmark``. Kept apart from ``serlib.cli`` so that the command's long table of
settings does not crowd out the commands themselves.
"""

from __future__ import annotations

import argparse

from serlib.config import (
    ADVERSARIES,
    KEEP_RULES,
    MIXED_PRECISION,
    NORMALISATIONS,
    SCHEDULES,
    TRIM_DB,
)

OPTIONAL_FLAGS = (
    "adversary",
    "domain_weight",
    "mixed_precision",
    "normalisation",
    "trim_db",
    "label_smoothing",
    "mixup",
    "schedule",
    "warmup_epochs",
    "keep",
    "speed_perturb",
    "dropout",
    "pool_bands",
    "refit",
)
"""``serlib train`` options that override the profile only when given."""

ADAPTATION_FLAGS = ("adversary", "domain_weight")
"""The ``OPTIONAL_FLAGS`` of DANN runs only; ``serlib benchmark`` (crnn, w2v2) has no use for them."""

SUPERVISED_FLAGS = tuple(name for name in OPTIONAL_FLAGS if name not in ADAPTATION_FLAGS)
"""The ``OPTIONAL_FLAGS`` that ``serlib benchmark`` takes too."""


def add_setting_options(train: argparse.ArgumentParser, adaptation: bool = True) -> None:
    """The options of ``OPTIONAL_FLAGS`` (without ``adaptation``, those of ``SUPERVISED_FLAGS``),
    with what each does and its default."""
    if adaptation:
        add_adaptation_options(train)
    add_supervised_options(train)


def add_adaptation_options(train: argparse.ArgumentParser) -> None:
    """``ADAPTATION_FLAGS``: how a DANN hides the domain."""
    train.add_argument(
        "--adversary",
        choices=ADVERSARIES,
        help="DANN: gradient reversal (the study's, default) or the bounded domain-confusion loss",
    )
    train.add_argument(
        "--domain-weight",
        type=float,
        metavar="W",
        help="DANN: weight of the domain loss beside the emotion loss (default 0.5); 0 is the "
        "control: target batches pass through batch norm, no domain loss reaches the encoder",
    )


def add_supervised_options(train: argparse.ArgumentParser) -> None:
    """``SUPERVISED_FLAGS``: inputs, optimisation and regularisation of any run."""
    train.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        help="CRNN log-mels: global (default; per-band statistics of the source training "
        "speakers), utterance (each clip's own per-band mean and std) or none",
    )
    train.add_argument(
        "--trim-silence",
        dest="trim_db",
        type=float,
        nargs="?",
        const=TRIM_DB,
        metavar="DB",
        help="CRNN models: drop each clip's leading and trailing frames more than DB (default "
        f"{TRIM_DB:g}) below its loudest frame",
    )
    train.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION,
        help="auto (default): bf16 or fp16 on a GPU, float32 on the CPU; bf16 also speeds up "
        "CPUs with AVX512-BF16 or AMX",
    )
    train.add_argument(
        "--label-smoothing",
        type=float,
        metavar="E",
        help="spread E of each emotion target over all classes (default 0)",
    )
    train.add_argument(
        "--mixup",
        type=float,
        metavar="ALPHA",
        help="supervised models: train on blends of pairs of clips and of their labels, weights "
        "from Beta(ALPHA, ALPHA) (default 0 = off; dann runs need 0)",
    )
    train.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning rate: plateau (default; cut when validation UA stalls) or cosine "
        "(linear warm-up, then cosine decay to 1%% in the last epoch; the recipe's)",
    )
    train.add_argument(
        "--warmup-epochs",
        type=int,
        metavar="N",
        help="cosine schedule: N epochs of linear warm-up (default 0; the recipe's 2)",
    )
    train.add_argument(
        "--keep",
        choices=KEEP_RULES,
        help="the weights a run keeps: best (default; the epoch with the best source-validation "
        "UA, with early stopping) or last (every epoch runs; the weights after the last one; the "
        "recipe's)",
    )
    train.add_argument(
        "--speed-perturb",
        type=float,
        nargs="*",
        metavar="SPEED",
        help="CRNN models: also train on the source training clips played at these speeds "
        "(e.g. 0.9 1.1; computed once into the feature cache); no SPEED: none",
    )
    train.add_argument(
        "--dropout",
        type=float,
        metavar="P",
        help="CRNN models: while training, zero a share P of the BiLSTM's input features "
        "(default 0, as the study's CRNN)",
    )
    train.add_argument(
        "--pool-bands",
        action="store_true",
        default=None,
        help="CRNN models: average the conv maps over the mel axis before the BiLSTM (128 "
        "features a step instead of 2048; not the study's CRNN)",
    )
    train.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train on the validation speakers too, run every epoch and keep the last (needs "
        "--keep last and --schedule cosine; the recipe's); --no-refit keeps them for validation",
    )
