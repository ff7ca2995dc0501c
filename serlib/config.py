"""The one home of serlib's settings: where runtime data lives, the profiles, and every training
and input setting of a run.

Everything serlib writes at run time (synthetic corpora, feature caches, run folders) lives under one
folder, ``serlib_home()``, so that a course checkout stays clean and a user can move the heavy data
elsewhere with one environment variable.

A run's settings come in two parts, kept apart because different code reads them:

- ``TrainConfig``: the optimiser and the training loop (``serlib.train.fit`` reads only this);
- ``InputConfig``: what the model reads (crop, normalisation, trimming, target statistics,
  SpecAugment, speed perturbation; ``serlib.inputs`` reads only this).

``PROFILES`` is the profile table: for each profile name (tiny / workshop / full) and encoder row
(crnn, w2v2, w2v2-frozen) the two parts, plus the CRNN's training recipe (``recipe``, crnn row
only). ``profile_settings`` looks a row up and applies overrides.
This module imports nothing heavy, so the command line can read it before torch is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from serlib.errors import UserError

PROFILE_NAMES = ("tiny", "workshop", "full")
"""tiny: tests, seconds; workshop: a 2-core laptop, minutes; full: a GPU and the study's settings.
The course and the synthetic corpora know these three."""

RECIPE = "recipe"
"""The CRNN's from-scratch training recipe for real speech: ``full`` with trimmed silence, shorter
crops and a cosine schedule (``RECIPE_SETTINGS``). A way to train, not a corpus size: ``serlib train`` and ``serlib benchmark``
take it, the course and the synthetic corpora do not."""

TRAINING_PROFILES = (*PROFILE_NAMES, RECIPE)
"""The profiles a training command takes."""

TRIM_DB = 40.0
"""``serlib train --trim-silence`` without a value: frames this many dB below a clip's loudest are
silence (``serlib.features.trim_silence``)."""

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
"""``auto`` = bf16 on a GPU that has it, else fp16 on a GPU, else none on a CPU."""

SCHEDULES = ("plateau", "cosine")
"""How the learning rate moves: down by a factor when validation UA stops improving, or a fixed
linear warm-up then cosine decay (``serlib.train.build_optimizer``)."""

KEEP_RULES = {"best": "best source-validation UA", "last": "last epoch"}
"""Which weights a run keeps, and how ``metrics.json`` names the rule: the epoch with the best
source-validation UA (and early stopping after ``patience`` epochs without one), or those after the
last epoch of the schedule (every epoch runs; validation UA is still logged, and chooses nothing)."""
REFIT_RULE = "last epoch; the validation speakers trained too (refit)"
"""How ``metrics.json`` names the rule of a refit run (``TrainConfig.refit``): no validation set."""

ADVERSARIES = ("reversal", "confusion")
"""How a DANN's encoder is pushed to hide the domain (see ``serlib.models.dann``)."""

MIN_SPEED, MAX_SPEED = 0.5, 2.0
"""The speeds ``speed_perturb`` takes (``serlib.augment.WavePerturbation``'s range)."""

NORMALISATIONS = ("global", "utterance", "none")
"""How log-mels are standardised: with the source training statistics, per clip, or not at all."""

DATASET_ENV = {
    "iemocap": "SERLIB_IEMOCAP_DIR",
    "ravdess": "SERLIB_RAVDESS_DIR",
    "emodb": "SERLIB_EMODB_DIR",
    "cremad": "SERLIB_CREMAD_DIR",
    "tess": "SERLIB_TESS_DIR",
    "savee": "SERLIB_SAVEE_DIR",
}
"""The environment variable that points serlib at each real corpus."""


def serlib_home() -> Path:
    """The runtime-data folder: ``$SERLIB_HOME`` or ``./data`` (git-ignored)."""
    return Path(os.environ.get("SERLIB_HOME", "data")).expanduser()


def check_profile(name: str) -> str:
    """Return ``name`` if it is a profile of the course and the synthetic corpora, else raise a
    one-line UserError (the recipe profile is refused by name: it is for training commands)."""
    if name == RECIPE:
        raise UserError(
            f"the {RECIPE} profile is a CRNN training recipe for `serlib train` and `serlib "
            f"benchmark`; here choose one of {', '.join(PROFILE_NAMES)}"
        )
    if name not in PROFILE_NAMES:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return name


def check_training_profile(name: str) -> str:
    """Return ``name`` if a training command takes it (the recipe too), else a one-line UserError."""
    if name not in TRAINING_PROFILES:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(TRAINING_PROFILES)}")
    return name


def profile_from_env(default: str = "workshop") -> str:
    """The training profile named by ``$SERLIB_PROFILE``, or ``default``."""
    return check_training_profile(os.environ.get("SERLIB_PROFILE", default))


def dataset_root(corpus: str) -> Path | None:
    """The real corpus folder from its environment variable, or None (use the synthetic corpus)."""
    value = os.environ.get(DATASET_ENV[corpus], "").strip()
    return Path(value).expanduser() if value else None


def check_positive(settings: object, names: tuple[str, ...]) -> None:
    """Each named setting must be > 0; the message names the setting and the value given."""
    for name in names:
        if not getattr(settings, name) > 0:
            raise UserError(f"{name} must be > 0, got {getattr(settings, name)}")


class SavedSettings:
    """Settings that round-trip through config.json, as plain values."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> SavedSettings:
        """Rebuild from ``to_dict``'s output, ignoring keys this version does not know (config.json
        files written by older or newer versions)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class TrainConfig(SavedSettings):
    """The optimiser and the training loop of one run (config.json's ``train``)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3  # the heads' learning rate, and the encoder's unless encoder_lr is set
    encoder_lr: float | None = None
    weight_decay: float = 1e-4
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    patience: int = 10  # early stopping: epochs without a better validation UA
    plateau_patience: int = 5  # ReduceLROnPlateau on validation UA ...
    plateau_factor: float = 0.7  # ... multiplies the learning rates by this
    grl_cap: float = 0.7  # DANN: the largest gradient-reversal coefficient
    domain_weight: float = 0.5  # DANN: weight of the domain loss beside the emotion loss
    adversary: str = "reversal"  # DANN: "reversal" (the study's gradient reversal) or
    # "confusion" (the encoder pushes the domain head towards 50/50; bounded, see models.dann)
    target_batchnorm: bool = False  # CRNN/DANN: score target clips with batch-norm statistics of
    # the target adaptation speakers (AdaBN, after training); a DANN also normalises each domain's
    # half of a training batch with its own statistics (domain-specific batch norm)
    seed: int = 0
    mixed_precision: str = "auto"
    cpu: bool = False  # True forces the CPU even where a GPU is visible
    num_workers: int = 0
    grad_accumulation: int = 1  # optimizer step every N batches (a larger batch in little memory)
    label_smoothing: float = 0.0  # emotion loss: this much of each target spread over all classes
    mixup: float = 0.0  # supervised models: Beta(mixup, mixup) weight of a batch mixed with a
    # shuffled copy of itself (inputs and losses, see serlib.mixup); 0 turns it off
    schedule: str = "plateau"  # one of SCHEDULES: ReduceLROnPlateau (plateau_*), or cosine
    warmup_epochs: int = 0  # cosine: epochs of linear warm-up before the decay
    keep: str = "best"  # one of KEEP_RULES: the best-validation epoch's weights, or the last's
    dropout: float = 0.0  # CRNN models: dropout on the BiLSTM's input frames (0 = the study's)
    pool_bands: bool = False  # CRNN models: the BiLSTM reads the mean over mel bands
    refit: bool = False  # the validation speakers train too; every epoch runs, the last is kept

    def __post_init__(self) -> None:
        check_positive(self, ("epochs", "batch_size", "lr", "patience", "grad_accumulation"))
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.mixup >= 0:
            raise UserError(f"mixup must be >= 0 (0 turns it off), got {self.mixup}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must be in [0, 1) (0 turns it off), got {self.dropout}")
        if self.schedule not in SCHEDULES:
            raise UserError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.keep not in KEEP_RULES:
            raise UserError(f"keep must be one of {', '.join(KEEP_RULES)}, got {self.keep!r}")
        if self.refit:
            self.check_refit()
        if not self.warmup_epochs >= 0:
            raise UserError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.warmup_epochs and self.schedule != "cosine":
            raise UserError(
                f"warmup_epochs applies to the cosine schedule only: use schedule 'cosine', or "
                f"warmup_epochs 0 with schedule {self.schedule!r}"
            )
        if self.mixed_precision not in MIXED_PRECISION:
            raise UserError(
                f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}, "
                f"got {self.mixed_precision!r}"
            )
        if self.adversary not in ADVERSARIES:
            raise UserError(
                f"adversary must be one of {', '.join(ADVERSARIES)}, got {self.adversary!r}"
            )
        for name in ("domain_weight", "grl_cap"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.plateau_factor < 1:
            raise UserError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")

    def check_refit(self) -> None:
        """A refit run trains on its validation speakers, so nothing can be chosen by them: it keeps
        the last epoch, and its learning rate cannot wait for validation UA to stall."""
        if self.keep != "last":
            raise UserError(
                "refit trains on the validation speakers, so no epoch can be chosen by them: set "
                "keep 'last' (--keep last), or turn refit off (--no-refit)"
            )
        if self.schedule != "cosine":
            raise UserError(
                "refit has no validation speakers for the plateau schedule to watch: use schedule "
                "'cosine' (--schedule cosine), or turn refit off (--no-refit)"
            )


@dataclass(frozen=True)
class InputConfig(SavedSettings):
    """What the model reads and how it is prepared (config.json's ``input_settings``)."""

    crop_frames: int = 300  # CRNN: training crop, in log-mel frames (~4.8 s at hop 256)
    crop_seconds: float = 6.0  # Wav2Vec2: training crop, in seconds of audio
    normalisation: str = "global"  # CRNN log-mels: one of NORMALISATIONS
    trim_db: float | None = None  # CRNN: drop each clip's leading and trailing frames this many dB
    # below its loudest (corpora differ in the silence around a clip); None keeps every frame
    target_statistics: bool = False  # CRNN, global: standardise target log-mels with the target
    # adaptation speakers' own mean/std (unlabelled audio) instead of the source's
    spec_augment: bool = False  # CRNN: mask random mel bands and time spans of training batches
    speed_perturb: tuple[float, ...] = ()  # CRNN: the source training clips are also read at
    # these speeds (e.g. (0.9, 1.1)), one more copy of the training set per speed, cached once

    def __post_init__(self) -> None:
        check_positive(self, ("crop_frames", "crop_seconds"))
        # config.json keeps the tuple as a list: read it back as the tuple it was
        object.__setattr__(self, "speed_perturb", tuple(float(s) for s in self.speed_perturb))
        speeds = self.speed_perturb
        if any(not MIN_SPEED <= s <= MAX_SPEED or s == 1.0 for s in speeds):
            raise UserError(
                f"speed_perturb takes speeds in [{MIN_SPEED}, {MAX_SPEED}] other than 1 (the "
                f"clean clips are always there), got {list(speeds)}"
            )
        if len(set(speeds)) != len(speeds):
            raise UserError(f"speed_perturb lists a speed twice: {list(speeds)}")
        if self.normalisation not in NORMALISATIONS:
            raise UserError(
                f"normalisation must be one of {', '.join(NORMALISATIONS)}, "
                f"got {self.normalisation!r}"
            )
        if self.trim_db is not None and not self.trim_db > 0:
            raise UserError(f"trim_db must be > 0 or None, got {self.trim_db}")


@dataclass(frozen=True)
class Profile:
    """One row of the profile table: how to train, and what the model reads."""

    train: TrainConfig
    inputs: InputConfig


def row(epochs: int, batch_size: int, patience: int = 10, *, inputs: dict, **train) -> Profile:
    """A profile-table row, written the way the table reads best."""
    loop = TrainConfig(epochs=epochs, batch_size=batch_size, patience=patience, **train)
    return Profile(loop, InputConfig(**inputs))


W2V2_OPTIMISER = {"lr": 3e-4, "encoder_lr": 2e-5, "weight_decay": 0.01}
"""Fine-tuning a pretrained encoder: it moves slowly (2e-5) or forgets; the fresh heads move fast."""
FROZEN_OPTIMISER = {"lr": 3e-4, "weight_decay": 0.01}
"""Frozen features: everything that trains is new, so all of it takes the heads' rate."""

# The recipe is the full CRNN row (batch 32, ReduceLROnPlateau's patience 12 for early stopping)
# with these settings. They were chosen on the validation actors of EmoBox's RAVDESS fold_2 among
# six candidates (benchmarks/run_recipe.py select; docs/results.md, "A from-scratch recipe"):
# trimmed silence with 160-frame crops, 40 epochs and a cosine schedule had the best validation UA.
# SpecAugment, label smoothing, mixup and speed perturbation are options, not part of it: with
# them the validation UA was lower at 40 epochs, and on all four folds' validation actors (the
# second round, `run_recipe.py compare`) none led by more than 1.7 points nor moved test UA.
# The eighth round refits: a fixed number of epochs loses little on the validation actors (their
# mean UA per epoch over 8 runs: 45.3 at epoch 40, 46.6 at its best, 34), and more training actors
# raise it (the seventh round), so the validation actors train too and the last epoch is kept.
RECIPE_SETTINGS: dict[str, dict] = {
    "train": {
        "epochs": 40,
        "schedule": "cosine",
        "warmup_epochs": 2,
        "keep": "last",
        "refit": True,
    },
    "inputs": {
        "trim_db": TRIM_DB,  # RAVDESS clips open and close with about a second of silence
        "crop_frames": 160,  # 2.6 s: almost every spoken frame of a trimmed RAVDESS sentence
    },
}
"""The ``recipe`` profile's settings beside the full CRNN row's (one place to change them)."""


def with_recipe(full: Profile) -> Profile:
    """The full CRNN row with ``RECIPE_SETTINGS`` turned on: everything else stays the study's."""
    return Profile(
        replace(full.train, **RECIPE_SETTINGS["train"]),
        replace(full.inputs, **RECIPE_SETTINGS["inputs"]),
    )


FULL_CRNN = row(60, 32, 12, inputs={"crop_frames": 300})
"""The study's CRNN settings: the full profile's crnn row, and the recipe's starting point."""

# The profile table. Rows: "crnn" serves crnn and dann; "w2v2" serves w2v2 and w2v2-dann
# fine-tuned; "w2v2-frozen" serves them on cached frozen features (an epoch costs milliseconds, so it
# can afford many). workshop: a 2-core laptop trains the CRNN in a few minutes (shorter crops, fewer
# epochs; the course's CRNNs kept epochs 2-4 of 8, so 5 epochs with a patience of 2 lose little and
# let `make course` train its ten runs in minutes); full: the study's settings (300-frame crops,
# long training, early stopping on source UA); recipe (crnn row only): full plus RECIPE_SETTINGS.
PROFILES: dict[tuple[str, str], Profile] = {
    ("tiny", "crnn"): row(2, 8, 5, inputs={"crop_frames": 32}),
    ("workshop", "crnn"): row(5, 32, 2, inputs={"crop_frames": 128}),
    ("full", "crnn"): FULL_CRNN,
    (RECIPE, "crnn"): with_recipe(FULL_CRNN),
    ("tiny", "w2v2"): row(2, 4, inputs={"crop_seconds": 1.0}, **W2V2_OPTIMISER),
    ("workshop", "w2v2"): row(4, 8, inputs={"crop_seconds": 3.0}, **W2V2_OPTIMISER),
    ("full", "w2v2"): row(20, 8, inputs={"crop_seconds": 6.0}, **W2V2_OPTIMISER),
    ("tiny", "w2v2-frozen"): row(3, 16, 3, inputs={"crop_seconds": 1.0}, **FROZEN_OPTIMISER),
    ("workshop", "w2v2-frozen"): row(40, 32, 10, inputs={"crop_seconds": 3.0}, **FROZEN_OPTIMISER),
    ("full", "w2v2-frozen"): row(60, 32, 12, inputs={"crop_seconds": 6.0}, **FROZEN_OPTIMISER),
}


def profile_settings(profile: str, encoder_row: str = "crnn", **overrides) -> Profile:
    """The profile table's row for ``profile`` and an encoder row, with ``overrides`` applied.

    Each override goes to the part that has a setting of that name; None means "keep the
    profile's value" (so command-line options that were not given change nothing).
    """
    key = (profile, encoder_row)
    if profile == RECIPE and key not in PROFILES:
        raise UserError(
            f"the {RECIPE} profile is for the CRNN (crnn, dann); use --profile full for "
            "wav2vec2 models"
        )
    if key not in PROFILES:
        known = ", ".join(sorted({f"{p}/{r}" for p, r in PROFILES}))
        raise UserError(f"no profile {profile!r} for {encoder_row!r}; known: {known}")
    found = PROFILES[key]
    given = {k: v for k, v in overrides.items() if v is not None}
    train_names = {f.name for f in fields(TrainConfig)}
    input_names = {f.name for f in fields(InputConfig)}
    unknown = sorted(set(given) - train_names - input_names)
    if unknown:
        raise UserError(
            f"unknown setting {', '.join(unknown)}; training settings: "
            f"{', '.join(sorted(train_names))}; input settings: {', '.join(sorted(input_names))}"
        )
    return Profile(
        replace(found.train, **{k: v for k, v in given.items() if k in train_names}),
        replace(found.inputs, **{k: v for k, v in given.items() if k in input_names}),
    )
