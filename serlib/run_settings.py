"""The settings of a run: what it is asked to do, the checks that refuse what does not fit, and
its config.json.

``serlib train`` and ``train_run`` take many options, and some only make sense together (DANN needs
a target corpus; target statistics need log-mels). ``make_settings`` fills in the defaults (profile,
training settings, encoder, frozen or fine-tuned) and refuses a request that does not fit, with a
message that names the option, before any corpus is scanned. ``RunSettings`` holds the result;
``run_config`` writes it, with what the run turned out to hold (inputs, model size, the speakers of
every set), as the run folder's config.json: the one place that file is built. ``check_resumable``
compares a saved config.json with a new request, so ``--resume`` never continues other settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from serlib.cache import POOLED_CACHE_KIND
from serlib.config import (
    InputConfig,
    Profile,
    TrainConfig,
    check_training_profile,
    profile_from_env,
    profile_settings,
)
from serlib.errors import UserError
from serlib.hardware import check_precision_device
from serlib.inputs import Prepared
from serlib.labels import scheme_labels
from serlib.models import (
    check_model_kind,
    count_parameters,
    encoder_family,
    is_adversarial_kind,
    pretrained,
)
from serlib.models.wav2vec import describe_speech_encoder
from serlib.protocol import CorpusRef, Protocol, speakers_of
from serlib.splits import SPLIT_SEED
from serlib.train import MIXUP_DANN

RUN_FORMAT = 2
"""Version of the run-folder layout written in config.json (2: input settings apart from ``train``)."""

READABLE_FORMATS = (1, 2)
"""Run folders this version loads: format 1 differs only in keeping input settings in ``train``."""

RESUME_KEYS = (
    "model",
    "scheme",
    "profile",
    "seed",
    "source",
    "target",
    "oracle",
    "transductive",
    "encoder",
    "w2v2_mode",
    "fold",
)
"""config.json entries a resumed run must share with the command that resumes it."""


@dataclass(frozen=True)
class RunSettings:
    """What a run is asked to do: the part of config.json that ``--resume`` checks again."""

    model: str
    scheme: str
    labels: list[str]
    profile: str
    seed: int
    source: CorpusRef
    target: CorpusRef | None
    train: TrainConfig
    inputs: InputConfig
    transductive: bool = False
    encoder: str | None = None  # Wav2Vec2 models: the checkpoint's name or folder
    w2v2_mode: str | None = None  # Wav2Vec2 models: "frozen" or "finetune"
    fold: str | None = None  # cross-validation: the fold's name

    @property
    def oracle(self) -> bool:
        """Source and target are one corpus: trained on target labels, an upper bound."""
        return self.target is not None and self.target == self.source

    @property
    def encoder_label(self) -> str:
        """What the run's encoder is, in words that say when it is not pretrained."""
        if encoder_family(self.model) == "crnn":
            return "CRNN (trained from scratch)"
        return pretrained.encoder_label(self.encoder)

    def to_dict(self) -> dict:
        return {
            "format": RUN_FORMAT,
            "model": self.model,
            "scheme": self.scheme,
            "labels": self.labels,
            "profile": self.profile,
            "seed": self.seed,
            "source": self.source.to_dict(),
            "target": self.target.to_dict() if self.target else None,
            "oracle": self.oracle,
            "transductive": self.transductive,
            "fold": self.fold,
            "encoder": self.encoder,
            "encoder_label": self.encoder_label,
            "w2v2_mode": self.w2v2_mode,
            "train": self.train.to_dict(),
            "input_settings": self.inputs.to_dict(),
        }


def make_settings(
    model: str,
    source: str | CorpusRef,
    *,
    target: str | CorpusRef | None = None,
    scheme: str = "4class",
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    encoder: str | None = None,
    transductive: bool = False,
    w2v2_mode: str | None = None,
    **overrides,
) -> RunSettings:
    """Check a request and fill in its defaults: profile, training settings, encoder, mode.

    Whatever can be refused without reading a corpus is refused here, so a mistake costs nothing:
    unknown names, options that do not fit the model, a checkpoint that is not available.
    """
    kind = check_model_kind(model)
    family = encoder_family(kind)
    profile = check_training_profile(profile) if profile else profile_from_env()
    source_ref = CorpusRef.parse(source)
    target_ref = CorpusRef.parse(target) if target is not None else None
    check_options(kind, source_ref, target_ref, transductive, overrides)
    w2v2_mode = pretrained.choose_mode(w2v2_mode, profile) if family == "w2v2" else None
    row = "w2v2-frozen" if w2v2_mode == "frozen" else family  # the row of the profile table
    chosen = profile_settings(profile, row, epochs=epochs, seed=seed, **overrides)
    check_precision_device(chosen.train)
    check_target_options(kind, chosen, source_ref, target_ref)
    check_augmentation_options(kind, chosen)
    if family == "w2v2":
        encoder = pretrained.choose_encoder(encoder, profile)
        pretrained.resolve_encoder(encoder)  # an unavailable checkpoint fails now, not mid-run
    return RunSettings(
        model=kind,
        scheme=scheme,
        labels=scheme_labels(scheme, source_ref.name),
        profile=profile,
        seed=seed,
        source=source_ref,
        target=target_ref,
        train=chosen.train,
        inputs=chosen.inputs,
        transductive=transductive,
        encoder=encoder if family == "w2v2" else None,
        w2v2_mode=w2v2_mode,
    )


def run_config(
    settings: RunSettings, protocol: Protocol, prepared: Prepared, net: nn.Module
) -> dict:
    """config.json: the settings, then what the run holds (inputs, model size, speakers per set)."""
    return settings.to_dict() | {
        "parameters": count_parameters(net),
        "inputs": prepared.inputs.to_dict(),
        "encoder_config": encoder_config(net),
        "split_seed": SPLIT_SEED,
        "splits": {name: speakers_of(t) for name, t in prepared.tables.items()},
        "counts": {name: int(len(t)) for name, t in prepared.tables.items()},
        "protocol": protocol.descriptions,
        "skipped": [{"path": s.path, "reason": s.reason} for s in prepared.skipped],
    }


def encoder_config(net: nn.Module) -> dict | None:
    """A fine-tuned Wav2Vec2 encoder's transformers config and settings (to rebuild it without
    downloading), else None."""
    if getattr(net.encoder, "backbone", None) is None:
        return None
    return describe_speech_encoder(net.encoder)


def uses_split_batchnorm(kind: str, target_batchnorm: bool) -> bool:
    """A DANN with target batch norm normalises each domain with its own statistics in training
    (swapping statistics into a DANN trained on mixed batches afterwards was erratic,
    benchmarks/RESULTS_dann_variants.md)."""
    return kind == "dann" and target_batchnorm


SCORING_OPTIONS = ("target_statistics", "target_batchnorm")
"""Options that, for a model that is not adversarial, change only how target clips are scored:
its training reads no target clip (target statistics standardise the target's log-mels; AdaBN
swaps in batch-norm statistics of the target's audio after training), so two such runs that
differ in nothing else train the very same weights."""


def comparable(config: dict) -> dict:
    """A saved config.json read as this version asks for settings: training and input settings
    through ``TrainConfig`` / ``InputConfig``, so a setting added since reads as its default, and a
    format-1 run's input settings (kept inside ``train``) in their own part."""
    config = dict(config)
    if isinstance(config.get("train"), dict):
        inputs = config.get("input_settings", config["train"])
        config["input_settings"] = InputConfig.from_dict(inputs).to_dict()
        config["train"] = TrainConfig.from_dict(config["train"]).to_dict()
    return config


def differing_settings(saved: dict, asked: dict) -> list[tuple[str, object, object]]:
    """What makes a saved run another run than the one asked for, as (option, saved, asked).

    Compared: the entries ``--resume`` checks, then every training and input setting. A run
    folder whose frozen features were made before the projection existed differs as well.
    """
    saved = comparable(saved)
    found = [(key, saved.get(key), asked.get(key)) for key in RESUME_KEYS]
    for group in ("train", "input_settings"):
        old, new = saved.get(group) or {}, asked.get(group) or {}
        found += [(key, old.get(key), new.get(key)) for key in sorted(set(old) | set(new))]
    found = [(key, old, new) for key, old, new in found if old != new]
    saved_inputs = saved.get("inputs") or {}
    if saved_inputs.get("kind") == POOLED_CACHE_KIND and not saved_inputs.get("projection", False):
        found.append(("frozen-feature projection (made before it existed)", False, True))
    return found


def trains_the_same(saved: dict, asked: dict) -> bool:
    """Whether a saved run trained the weights a request would train: the settings differ at
    most in ``SCORING_OPTIONS``, and the model is not adversarial (a DANN reads target clips)."""
    if is_adversarial_kind(str(asked.get("model"))):
        return False
    return all(key in SCORING_OPTIONS for key, _, _ in differing_settings(saved, asked))


def check_resumable(run_dir: Path, settings: RunSettings, resume: bool) -> None:
    """Refuse to overwrite another run, and to resume a run with different settings."""
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        return
    if not resume:
        raise UserError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    saved = json.loads(saved_path.read_text(encoding="utf-8"))
    for key, old, new in differing_settings(saved, settings.to_dict()):
        if key.startswith("frozen-feature projection"):
            raise UserError(
                f"cannot resume {run_dir}: it was made before frozen features had a "
                "projection; train it again in another --out"
            )
        raise UserError(
            f"cannot resume {run_dir}: its {key} is {old!r}, this command asks for {new!r}"
        )


def check_options(
    kind: str, source: CorpusRef, target: CorpusRef | None, transductive: bool, overrides: dict
) -> None:
    """Options that do not fit the model or the corpora, refused before any scanning."""
    adversarial = is_adversarial_kind(kind)
    if adversarial and target is None:
        raise UserError(f"--model {kind} adapts to a target corpus: give --target NAME:DIR")
    if adversarial and target == source:
        raise UserError("DANN needs a target corpus different from the source")
    if transductive and not adversarial:
        raise UserError("transductive applies to DANN models only")
    if overrides.get("adversary", "reversal") != "reversal" and not adversarial:
        raise UserError("adversary applies to DANN models only")
    if overrides.get("domain_weight") is not None and not adversarial:
        raise UserError("domain weight applies to DANN models only")


def check_target_options(
    kind: str, settings: Profile, source: CorpusRef, target: CorpusRef | None
) -> None:
    """Target statistics need CRNN log-mels standardised globally; target batch norm needs
    batch-norm layers (the CRNN family); trimming needs log-mels; both of the first two need a
    target corpus other than the source."""
    family, separate_target = encoder_family(kind), target is not None and target != source
    inputs, train = settings.inputs, settings.train
    if inputs.target_statistics:
        if family != "crnn" or inputs.normalisation != "global":
            raise UserError("target statistics apply to CRNN models with global normalisation only")
        if not separate_target:
            raise UserError("target statistics need a --target corpus different from the source")
    if train.target_batchnorm:
        if family != "crnn":
            raise UserError("target batch norm applies to the crnn and dann models only")
        if not separate_target:
            raise UserError("target batch norm needs a --target corpus different from the source")
    if inputs.trim_db is not None and family != "crnn":
        raise UserError("trimming silence applies to CRNN models (log-mel inputs) only")


def check_augmentation_options(kind: str, settings: Profile) -> None:
    """Mixup needs a label on every row it mixes (a DANN's target rows have none); speed
    perturbation is read into the log-mel cache, and dropout and band pooling sit in the CRNN (CRNN
    models)."""
    if settings.train.mixup > 0 and is_adversarial_kind(kind):
        raise UserError(MIXUP_DANN)
    if settings.inputs.speed_perturb and encoder_family(kind) != "crnn":
        raise UserError("speed perturbation applies to CRNN models (log-mel inputs) only")
    if settings.train.dropout and encoder_family(kind) != "crnn":
        raise UserError("dropout applies to CRNN models (crnn, dann) only; leave --dropout out")
    if settings.train.pool_bands and encoder_family(kind) != "crnn":
        raise UserError(
            "band pooling applies to CRNN models (crnn, dann) only; leave --pool-bands out"
        )


def target_statistics_used(settings: RunSettings) -> str | None:
    """What the run estimates from the unlabelled target adaptation audio, in words (or None)."""
    used = [
        words
        for words, asked in (
            ("input statistics", settings.inputs.target_statistics),
            ("batch-norm statistics", settings.train.target_batchnorm),
        )
        if asked
    ]
    return " and ".join(used) or None
