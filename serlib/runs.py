"""Run folders: train a model on corpora from disk, then evaluate it and predict with it.

``train_run`` does the whole study protocol in one call (``serlib train`` is a thin wrapper):

1. scan the corpora and map their labels with the scheme;
2. split the **source** by speaker (IEMOCAP: sessions 1-3 train, 4 validation, 5 test; any other
   corpus: ``serlib.splits.speaker_split``) and the **target** into *adaptation* speakers and *test*
   speakers, disjoint (half and half, gender-balanced, seeded);
3. compute (or read from the cache) the log-mels, and fit the normalisation on the source training
   speakers only;
4. train with ``serlib.train.fit``: DANN adapts on the adaptation speakers' audio (never their
   labels); the best epoch is chosen on source validation UA;
5. evaluate on every set and write ``metrics.json`` and ``predictions/<set>.csv``.

Two special protocols, both labelled as such in ``metrics.json``:

- **oracle**: source and target are the same corpus (``--source ravdess:DIR --target
  ravdess:DIR``): the model trains on the *labelled* target adaptation speakers and is tested on the
  same target test speakers as the other runs. An upper bound, not a method: it uses target labels.
- **transductive** (``transductive=True``): DANN adapts on *all* target speakers, test speakers
  included, as the study did; its target numbers are marked transductive.

A run folder holds ``config.json`` (everything needed to rebuild the model and its inputs),
``model.safetensors`` (the best epoch's weights), ``history.csv``, ``metrics.json``,
``predictions/<set>.csv`` and ``checkpoint/`` (the last complete epoch, for ``--resume``). Every
file is written atomically (see ``serlib.checkpoints``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader

from serlib.audio import AudioError, load_audio
from serlib.augment import SpecAugment
from serlib.cache import load_features
from serlib.checkpoints import load_weights, save_weights, write_json_atomic, write_text_atomic
from serlib.config import check_profile, profile_from_env
from serlib.corpora import check_corpus_name, load_corpus
from serlib.corpora.base import Skip
from serlib.data import FeatureDataset, WaveformDataset, encode_labels, make_loader
from serlib.features import FrontendConfig, MelStats, log_mel, trim_silence
from serlib.labels import apply_scheme, scheme_labels
from serlib.metrics import proxy_a_distance
from serlib.models import (
    build_model,
    check_model_kind,
    count_parameters,
    encoder_family,
    is_adversarial_kind,
)
from serlib.models.adabn import estimate_batchnorm_statistics, using_batchnorm_statistics
from serlib.splits import (
    assert_speaker_disjoint,
    gender_balanced_order,
    seed_split,
    speaker_folds,
    speaker_split,
)
from serlib.train import (
    Predictions,
    TrainConfig,
    check_precision_device,
    fit,
    make_accelerator,
    predict,
    profile_config,
)

TARGET_BATCHNORM_FILE = "target_batchnorm.safetensors"
"""AdaBN runs: the batch-norm statistics of the target adaptation speakers, used for target clips."""

RUN_FORMAT = 1
"""Version of the run-folder layout written in config.json."""

SPLIT_SEED = 0
"""Speaker splits do not change with the training seed: seeds then measure training variance only."""

TARGET_TEST_FRACTION = 0.5
"""Share of the target speakers held out for testing; the rest are the adaptation speakers."""

SOURCE_TEST_FRACTION, SOURCE_VAL_FRACTION = 0.2, 0.15
"""Speaker shares of test and validation for sources without IEMOCAP sessions."""

RESUME_KEYS = ("model", "scheme", "profile", "seed", "source", "target", "oracle", "transductive")
"""config.json entries a resumed run must share with the command that resumes it."""


# ----- corpora and splits ------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusRef:
    """A corpus on disk: its loader name and its root folder."""

    name: str
    root: str

    @classmethod
    def parse(cls, spec: str | Sequence[str] | CorpusRef) -> CorpusRef:
        """Read ``NAME:DIR`` (or a (name, root) pair); the folder must exist."""
        if isinstance(spec, CorpusRef):
            return spec
        if isinstance(spec, str):
            name, sep, root = spec.partition(":")
            if not sep or not name or not root:
                raise ValueError(f"expected NAME:DIR (e.g. ravdess:/data/RAVDESS), got {spec!r}")
        else:
            name, root = spec
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {root_path}")
        return cls(check_corpus_name(name), str(root_path.resolve()))

    def to_dict(self) -> dict:
        return {"name": self.name, "root": self.root}

    @classmethod
    def from_dict(cls, values: dict | None) -> CorpusRef | None:
        return None if values is None else cls(values["name"], values["root"])


def labelled_table(ref: CorpusRef, scheme: str, labels: Sequence[str]) -> tuple[pd.DataFrame, list]:
    """The corpus's utterances whose scheme label is one of ``labels``, and what was skipped."""
    scan = load_corpus(ref.name, ref.root)
    table = apply_scheme(scan.table, scheme)
    table = table[table["label"].isin(list(labels))].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{ref.name} at {ref.root}: no utterance with a label in {list(labels)}")
    return table, list(scan.skipped)


def split_source(table: pd.DataFrame, corpus: str) -> dict[str, pd.DataFrame]:
    """Speaker-independent train/val/test: the seed split for IEMOCAP, speaker shares otherwise."""
    if corpus == "iemocap":
        return seed_split(table)
    return speaker_split(table, SOURCE_TEST_FRACTION, SOURCE_VAL_FRACTION, seed=SPLIT_SEED)


def split_target(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Target speakers cut into adaptation and test speakers (disjoint, gender-balanced)."""
    speakers = gender_balanced_order(table, SPLIT_SEED)
    if len(speakers) < 2:
        raise ValueError(
            "the target corpus needs at least 2 speakers (adaptation and test speakers differ)"
        )
    n_test = min(max(1, round(len(speakers) * TARGET_TEST_FRACTION)), len(speakers) - 1)
    test = set(speakers[:n_test])
    parts = {
        "adapt": table[~table["speaker"].isin(test)].reset_index(drop=True),
        "test": table[table["speaker"].isin(test)].reset_index(drop=True),
    }
    assert_speaker_disjoint(parts["adapt"], parts["test"])
    return parts


def speakers_of(table: pd.DataFrame) -> list[str]:
    return sorted(table["speaker"].unique().tolist())


@dataclass
class Protocol:
    """The labelled tables of one run and what each set means."""

    tables: dict[str, pd.DataFrame]  # source_train, source_val, source_test, target_*
    descriptions: dict[str, str]
    skipped: list[Skip] = field(default_factory=list)


def make_protocol(
    source: CorpusRef,
    target: CorpusRef | None,
    scheme: str,
    labels: list[str],
    *,
    adversarial: bool,
    transductive: bool,
    target_statistics: str | None = None,
) -> Protocol:
    """Every table the run trains, adapts or is tested on, each with a one-line protocol.

    ``target_statistics`` names what a non-adversarial run estimates from the unlabelled target
    adaptation speakers ("input statistics", "batch-norm statistics", ...), or None.
    """
    oracle = target is not None and target == source
    source_table, skipped = labelled_table(source, scheme, labels)
    if oracle:
        parts = split_target(source_table)
        inner = speaker_split(parts["adapt"], 0.0, 0.2, seed=SPLIT_SEED)
        tables = {
            "source_train": inner["train"],
            "source_val": inner["val"],
            "target_test": parts["test"],
        }
        descriptions = {
            "source_val": "validation speakers taken from the target adaptation speakers",
            "target_test": "target test speakers; ORACLE: trained on labelled target adaptation "
            "speakers, an upper bound that uses target labels",
        }
        return Protocol(tables, descriptions, skipped)
    tables = {f"source_{k}": v for k, v in split_source(source_table, source.name).items()}
    descriptions = {
        "source_val": "source validation speakers (model selection)",
        "source_test": "source test speakers, never seen in training",
    }
    if target is not None:
        target_table, target_skipped = labelled_table(target, scheme, labels)
        skipped += target_skipped
        parts = split_target(target_table)
        tables["target_test"] = parts["test"]
        tables["target_all"] = target_table
        if not adversarial and target_statistics:
            tables["target_adapt"] = parts["adapt"]
            descriptions["target_test"] = (
                "target test speakers, disjoint from the adaptation speakers whose unlabelled "
                f"audio gave the target {target_statistics}"
            )
            descriptions["target_all"] = (
                "all target speakers; PARTLY TRANSDUCTIVE: includes the adaptation speakers "
                f"whose audio gave the target {target_statistics}"
            )
        elif not adversarial:
            descriptions["target_test"] = "target test speakers (no target data used in training)"
            descriptions["target_all"] = (
                "all target speakers (no target data used in training; the study's protocol)"
            )
        elif transductive:
            tables["target_adapt"] = target_table
            descriptions["target_test"] = (
                "target test speakers; TRANSDUCTIVE: their unlabelled audio was used for adaptation"
            )
            descriptions["target_all"] = (
                "all target speakers; TRANSDUCTIVE: adapted on all of them (the study's protocol)"
            )
        else:
            tables["target_adapt"] = parts["adapt"]
            descriptions["target_test"] = (
                "target test speakers, disjoint from the unlabelled adaptation speakers"
            )
            descriptions["target_all"] = (
                "all target speakers; PARTLY TRANSDUCTIVE: includes the adaptation speakers "
                "whose unlabelled audio was used in training"
            )
    return Protocol(tables, descriptions, skipped)


# ----- inputs ----------------------------------------------------------------------------------


@dataclass
class MelInputs:
    """Log-mel inputs of a run: the frontend, the normalisation, and the training crop."""

    frontend: FrontendConfig
    stats: MelStats | None
    normalisation: str
    crop_frames: int
    target_stats: MelStats | None = None
    """The target adaptation speakers' own statistics, for runs trained with them."""
    trim_db: float | None = None
    """Leading and trailing frames this far below a clip's loudest are dropped (None: kept)."""

    def trim(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The clips without their leading and trailing silence, if the run trims."""
        if self.trim_db is None:
            return list(arrays)
        return [trim_silence(x, self.trim_db) for x in arrays]

    def dataset(
        self,
        arrays,
        labels,
        *,
        train: bool,
        domain: int = 0,
        seed: int = 0,
        target: bool = False,
    ):
        """Training sets are cropped at random to ``crop_frames``; the others are read whole.

        ``target`` clips are standardised with ``target_stats`` when the run has them.
        """
        stats = self.target_stats if target and self.target_stats is not None else self.stats
        return FeatureDataset(
            self.trim(arrays),
            labels,
            domain=domain,
            n_frames=self.crop_frames if train else None,
            fixed_length=train,
            crop="random" if train else "start",
            normalisation=self.normalisation,
            stats=stats,
            seed=seed,
        )

    def to_dict(self) -> dict:
        return {
            "kind": "logmel",
            "frontend": self.frontend.to_dict(),
            "normalisation": self.normalisation,
            "stats": self.stats.to_dict() if self.stats is not None else None,
            "crop_frames": self.crop_frames,
            "target_stats": self.target_stats.to_dict() if self.target_stats is not None else None,
            "trim_db": self.trim_db,
        }

    @classmethod
    def from_dict(cls, values: dict) -> MelInputs:
        stats, target_stats = values.get("stats"), values.get("target_stats")
        return cls(
            FrontendConfig.from_dict(values["frontend"]),
            MelStats.from_dict(stats) if stats is not None else None,
            values["normalisation"],
            int(values["crop_frames"]),
            MelStats.from_dict(target_stats) if target_stats is not None else None,
            values.get("trim_db"),  # runs older than trimming have none
        )


def log_mels(
    table: pd.DataFrame, frontend: FrontendConfig, progress: bool
) -> tuple[pd.DataFrame, list[np.ndarray], list[Skip]]:
    """The table's log-mels (cached), shortest first, and the rows that could be read."""
    cached = load_features(table["path"].tolist(), frontend, progress=progress)
    kept = table.iloc[cached.kept].reset_index(drop=True)
    order = np.argsort([a.shape[1] for a in cached.arrays], kind="stable")
    return (
        kept.iloc[order].reset_index(drop=True),
        [cached.arrays[i] for i in order],
        cached.skipped,
    )


@dataclass
class Prepared:
    """Tables (rows that survived reading) and datasets per set name."""

    tables: dict[str, pd.DataFrame]
    datasets: dict[str, object]
    inputs: MelInputs | None
    skipped: list[Skip]


def prepare_mel_sets(
    protocol: Protocol, labels: list[str], config: TrainConfig, progress: bool
) -> Prepared:
    """Log-mel datasets for every set; normalisation fitted on the source training speakers."""
    frontend = FrontendConfig()
    tables, arrays, skipped = {}, {}, list(protocol.skipped)
    for name, table in protocol.tables.items():
        tables[name], arrays[name], bad = log_mels(table, frontend, progress)
        skipped += bad
        if tables[name].empty:
            raise ValueError(f"no readable audio in the {name.replace('_', ' ')} set")
    inputs = MelInputs(  # statistics, if any, are fitted below on the clips as the run reads them
        frontend, None, config.normalisation, config.crop_frames, trim_db=config.trim_db
    )
    if config.normalisation == "global":
        inputs.stats = MelStats.fit(inputs.trim(arrays["source_train"]))
        if config.target_statistics and "target_adapt" in arrays:  # audio only: no label is read
            inputs.target_stats = MelStats.fit(inputs.trim(arrays["target_adapt"]))
    datasets = {}
    for name, table in tables.items():
        target = name.startswith("target_")
        if name == "target_adapt":  # unlabelled on purpose: DANN never sees target labels
            datasets[name] = inputs.dataset(
                arrays[name], None, train=True, domain=1, seed=config.seed + 1, target=target
            )
        else:
            ids = encode_labels(table["label"].tolist(), labels)
            datasets[name] = inputs.dataset(
                arrays[name], ids, train=name == "source_train", seed=config.seed, target=target
            )
    return Prepared(tables, datasets, inputs, skipped)


def prepare_wave_sets(protocol: Protocol, labels: list[str], config: TrainConfig) -> Prepared:
    """Waveform datasets for the Wav2Vec2 models (decoded on access, cropped in training)."""
    tables, datasets, skipped = {}, {}, list(protocol.skipped)
    for name, table in protocol.tables.items():
        train = name in ("source_train", "target_adapt")
        ids = None if name == "target_adapt" else encode_labels(table["label"].tolist(), labels)
        dataset = WaveformDataset(
            table["path"].tolist(),
            ids,
            domain=1 if name == "target_adapt" else 0,
            max_seconds=config.crop_seconds if train else None,
            crop="random" if train else "start",
            seed=config.seed + (name == "target_adapt"),
        )
        skipped += dataset.skipped
        tables[name] = table.iloc[dataset.kept].reset_index(drop=True)
        datasets[name] = dataset
    return Prepared(tables, datasets, None, skipped)


def prepare_pooled_sets(
    protocol: Protocol, labels: list[str], encoder_name: str, progress: bool
) -> Prepared:
    """Frozen Wav2Vec2: every file's per-layer pooled hidden states, extracted once into the cache."""
    from serlib.models.wav2vec import FrozenInputs, build_wav2vec_encoder

    inputs = FrozenInputs.from_encoder(build_wav2vec_encoder(encoder_name))
    tables, datasets, skipped = {}, {}, list(protocol.skipped)
    for name, table in protocol.tables.items():
        tables[name], arrays, bad = inputs.features(table, progress)
        skipped += bad
        if tables[name].empty:
            raise ValueError(f"no readable audio in the {name.replace('_', ' ')} set")
        unlabelled = name == "target_adapt"  # DANN never sees target labels
        ids = None if unlabelled else encode_labels(tables[name]["label"].tolist(), labels)
        datasets[name] = inputs.dataset(arrays, ids, domain=int(unlabelled))
    return Prepared(tables, datasets, inputs, skipped)


# ----- training --------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What ``train_run`` hands back to a notebook."""

    run_dir: Path
    metrics: dict
    history: list[dict]
    model: nn.Module


def describe_model(kind: str, encoder_name: str | None) -> dict:
    """The encoder entries of config.json (a label that says when the encoder is not pretrained)."""
    if encoder_family(kind) == "crnn":
        return {"encoder": None, "encoder_label": "CRNN (trained from scratch)"}
    from serlib.models.wav2vec import encoder_label

    return {"encoder": encoder_name, "encoder_label": encoder_label(encoder_name)}


def check_resumable(run_dir: Path, config: dict, resume: bool) -> None:
    """Refuse to overwrite another run, and to resume a run with different settings."""
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        return
    if not resume:
        raise ValueError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    saved = json.loads(saved_path.read_text(encoding="utf-8"))
    if isinstance(saved.get("train"), dict):  # settings added since the run read as their defaults
        saved["train"] = TrainConfig.from_dict(saved["train"]).to_dict()
    for key in (*RESUME_KEYS, "train"):
        if saved.get(key) != config.get(key):
            raise ValueError(
                f"cannot resume {run_dir}: its {key} is {saved.get(key)!r}, "
                f"this command asks for {config.get(key)!r}"
            )


def target_statistics_used(config: TrainConfig) -> str | None:
    """What the run estimates from the unlabelled target adaptation audio, in words (or None)."""
    used = [
        words
        for words, asked in (
            ("input statistics", config.target_statistics),
            ("batch-norm statistics", config.target_batchnorm),
        )
        if asked
    ]
    return " and ".join(used) or None


def check_target_batchnorm(kind: str, source: CorpusRef, target: CorpusRef | None) -> None:
    """Target batch norm needs batch-norm layers (the CRNN family) and a separate target corpus.

    A DANN with it also trains with domain-specific batch statistics: swapping statistics into a
    DANN trained on mixed batches afterwards was erratic (benchmarks/RESULTS_dann_variants.md).
    """
    if encoder_family(kind) != "crnn":
        raise ValueError("target batch norm applies to the crnn and dann models only")
    if target is None or target == source:
        raise ValueError("target batch norm needs a --target corpus different from the source")


def check_target_statistics(
    family: str, config: TrainConfig, source: CorpusRef, target: CorpusRef | None
) -> None:
    """Target input statistics need log-mels standardised globally and a separate target corpus."""
    if family != "crnn" or config.normalisation != "global":
        raise ValueError("target statistics apply to CRNN models with global normalisation only")
    if target is None or target == source:
        raise ValueError("target statistics need a --target corpus different from the source")


def train_run(
    model: str,
    source: str | CorpusRef,
    out: str | Path,
    *,
    target: str | CorpusRef | None = None,
    scheme: str = "4class",
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    resume: bool = False,
    encoder: str | None = None,
    transductive: bool = False,
    progress: bool = True,
    w2v2_mode: str | None = None,
    **overrides,
) -> RunResult:
    """Train ``model`` on ``source`` (adapting to ``target`` for DANN) into the run folder ``out``.

    ``overrides`` replace entries of the profile's ``TrainConfig`` (e.g. ``batch_size=16``).
    ``w2v2_mode`` (Wav2Vec2 models): ``frozen`` trains heads on cached hidden states, ``finetune``
    the whole encoder; default $SERLIB_W2V2_MODE, else finetune in the full profile, else frozen.
    """
    kind = check_model_kind(model)
    family = encoder_family(kind)
    adversarial = is_adversarial_kind(kind)
    profile = check_profile(profile) if profile else profile_from_env()
    source_ref = CorpusRef.parse(source)
    target_ref = CorpusRef.parse(target) if target is not None else None
    if adversarial and target_ref is None:
        raise ValueError(f"--model {kind} adapts to a target corpus: give --target NAME:DIR")
    if adversarial and target_ref == source_ref:
        raise ValueError("DANN needs a target corpus different from the source")
    if transductive and not adversarial:
        raise ValueError("transductive applies to DANN models only")
    if overrides.get("adversary", "reversal") != "reversal" and not adversarial:
        raise ValueError("adversary applies to DANN models only")
    if overrides.get("domain_weight") is not None and not adversarial:
        raise ValueError("domain weight applies to DANN models only")
    config = profile_config(profile, family, epochs=epochs, seed=seed, **overrides)
    check_precision_device(config)
    if config.target_statistics:
        check_target_statistics(family, config, source_ref, target_ref)
    if config.target_batchnorm:
        check_target_batchnorm(kind, source_ref, target_ref)
    if config.trim_db is not None and family != "crnn":
        raise ValueError("trimming silence applies to CRNN models (log-mel inputs) only")
    if family == "w2v2":
        from serlib.models.wav2vec import (
            choose_encoder,
            choose_mode,
            frozen_train_config,
            resolve_encoder,
        )

        encoder = choose_encoder(encoder, profile)
        resolve_encoder(encoder)  # an unavailable checkpoint fails now, before any scanning
        w2v2_mode = choose_mode(w2v2_mode, profile)
        if w2v2_mode == "frozen":
            config = frozen_train_config(profile, epochs=epochs, seed=seed, **overrides)
    else:
        w2v2_mode = None
    labels = scheme_labels(scheme, source_ref.name)
    run_dir = Path(out).expanduser()
    run_config = {
        "format": RUN_FORMAT,
        "model": kind,
        "scheme": scheme,
        "labels": labels,
        "profile": profile,
        "seed": seed,
        "source": source_ref.to_dict(),
        "target": target_ref.to_dict() if target_ref else None,
        "oracle": target_ref is not None and target_ref == source_ref,
        "transductive": transductive,
        **describe_model(kind, encoder),
        "w2v2_mode": w2v2_mode,
        "train": config.to_dict(),
    }
    check_resumable(run_dir, run_config, resume)

    protocol = make_protocol(
        source_ref,
        target_ref,
        scheme,
        labels,
        adversarial=adversarial,
        transductive=transductive,
        target_statistics=target_statistics_used(config),
    )
    return run_protocol(
        run_dir,
        run_config,
        protocol,
        config,
        encoder=encoder,
        w2v2_mode=w2v2_mode,
        resume=resume,
        progress=progress,
    )


def run_protocol(
    run_dir: Path,
    run_config: dict,
    protocol: Protocol,
    config: TrainConfig,
    *,
    encoder: str | None = None,
    w2v2_mode: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> RunResult:
    """Steps 3 to 5 for tables already split: inputs, model, training, evaluation, files.

    ``run_config`` holds at least model, labels and encoder_label; the inputs, splits and counts
    are added here before config.json is written.
    """
    kind, labels = run_config["model"], run_config["labels"]
    family, adversarial = encoder_family(kind), is_adversarial_kind(kind)
    if family == "crnn":
        prepared = prepare_mel_sets(protocol, labels, config, progress)
    elif w2v2_mode == "frozen":
        prepared = prepare_pooled_sets(protocol, labels, encoder, progress)
    else:
        prepared = prepare_wave_sets(protocol, labels, config)
    set_seed(config.seed)
    frozen = w2v2_mode == "frozen"
    net = build_model(
        kind,
        len(labels),
        encoder_name=encoder,
        encoder=prepared.inputs.head_encoder() if frozen else None,
    )
    run_config |= {
        "parameters": count_parameters(net),
        "inputs": prepared.inputs.to_dict() if prepared.inputs else {"kind": "waveform"},
        "encoder_config": encoder_config(net),
        "split_seed": SPLIT_SEED,
        "splits": {name: speakers_of(t) for name, t in prepared.tables.items()},
        "counts": {name: int(len(t)) for name, t in prepared.tables.items()},
        "protocol": protocol.descriptions,
        "skipped": [{"path": s.path, "reason": s.reason} for s in prepared.skipped],
    }
    accelerator = make_accelerator(config)
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", run_config)
    loaders = make_loaders(prepared, config, adversarial)
    result = fit(
        net,
        loaders["source_train"],
        loaders["source_val"],
        config,
        labels=labels,
        target_loader=loaders.get("target_adapt"),
        run_dir=run_dir,
        resume=resume,
        accelerator=accelerator,
        augment=spec_augment(config) if family == "crnn" else None,
        progress=progress,
    )
    target_batchnorm = None
    if config.target_batchnorm:  # AdaBN: the target adaptation speakers' audio, no label
        core = accelerator.unwrap_model(result.model)
        adapt = batch_loader(
            prepared.datasets["target_adapt"], config.batch_size, shuffle=True, seed=config.seed + 1
        )
        target_batchnorm = estimate_batchnorm_statistics(core, adapt, core.input_keys)
        if accelerator.is_main_process:
            save_weights(run_dir / TARGET_BATCHNORM_FILE, target_batchnorm)
    metrics = evaluate_sets(
        result.model, prepared, labels, protocol, config, accelerator, run_dir, target_batchnorm
    )
    metrics["model"] = {"kind": kind, "encoder_label": run_config["encoder_label"]}
    metrics["selection"] = {
        "rule": "best source-validation UA",
        "best_epoch": result.best_epoch + 1,
        "best_val_ua": result.best_val_ua,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
    }
    if accelerator.is_main_process:
        write_json_atomic(run_dir / "metrics.json", metrics)
    accelerator.wait_for_everyone()
    return RunResult(run_dir, metrics, result.history, result.model)


def spec_augment(config: TrainConfig) -> Callable[[dict], dict] | None:
    """SpecAugment on training log-mel batches when the config asks for it (within the real frames)."""
    if not config.spec_augment:
        return None
    masker = SpecAugment()

    def augment(batch: dict) -> dict:
        return {**batch, "x": masker(batch["x"], batch["mask"])}

    return augment


def cross_validate(
    corpus: str | CorpusRef,
    out: str | Path,
    *,
    scheme: str = "4class",
    n_folds: int = 4,
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    **overrides,
) -> dict:
    """Speaker-independent k-fold cross-validation of the CRNN on one corpus.

    Fold k tests on its own speakers, selects the epoch on a few other speakers and trains on the
    rest (``serlib.splits.speaker_folds``); every utterance is tested exactly once. Each fold is a
    run folder ``out/foldK``; ``out/summary.json`` holds every fold's test scores and their mean
    and standard deviation. Returns that summary.
    """
    profile = check_profile(profile) if profile else profile_from_env()
    ref = CorpusRef.parse(corpus)
    labels = scheme_labels(scheme, ref.name)
    config = profile_config(profile, "crnn", epochs=epochs, seed=seed, **overrides)
    table, skipped = labelled_table(ref, scheme, labels)
    out = Path(out).expanduser()
    folds = {}
    for fold in speaker_folds(table, n_folds, seed=SPLIT_SEED):
        protocol = Protocol(
            {f"source_{part}": rows for part, rows in fold.as_dict().items()},
            {
                "source_val": f"{fold.name}: validation speakers (model selection)",
                "source_test": f"{fold.name}: test speakers, never seen in training",
            },
            list(skipped),
        )
        run_config = {
            "format": RUN_FORMAT,
            "model": "crnn",
            "scheme": scheme,
            "labels": labels,
            "profile": profile,
            "seed": seed,
            "source": ref.to_dict(),
            "target": None,
            "oracle": False,
            "transductive": False,
            "fold": fold.name,
            **describe_model("crnn", None),
            "train": config.to_dict(),
        }
        check_resumable(out / fold.name, run_config, resume)
        result = run_protocol(
            out / fold.name, run_config, protocol, config, resume=resume, progress=progress
        )
        folds[fold.name] = result.metrics["source_test"]
    uas = np.array([scores["ua"] for scores in folds.values()])
    summary = {
        "corpus": ref.to_dict(),
        "scheme": scheme,
        "labels": labels,
        "protocol": f"{n_folds}-fold speaker-independent cross-validation (each speaker tested once)",
        "ua_mean": float(uas.mean()),
        "ua_std": float(uas.std(ddof=1)) if len(uas) > 1 else 0.0,
        "wa_mean": float(np.mean([scores["wa"] for scores in folds.values()])),
        "folds": folds,
    }
    write_json_atomic(out / "summary.json", summary)
    return summary


def encoder_config(net: nn.Module) -> dict | None:
    """A fine-tuned Wav2Vec2 encoder's transformers config and settings (to rebuild it without
    downloading), else None."""
    if getattr(net.encoder, "backbone", None) is None:
        return None
    from serlib.models.wav2vec import describe_speech_encoder

    return describe_speech_encoder(net.encoder)


def batch_loader(dataset, batch_size: int, **options) -> DataLoader:
    """``make_loader``, except that waveform batches are grouped by clip length: less padding,
    which group-norm Wav2Vec2 encoders (no attention mask) need (see serlib.models.wav2vec)."""
    if isinstance(dataset, WaveformDataset):
        from serlib.models.wav2vec import waveform_loader

        return waveform_loader(dataset, batch_size, **options)
    return make_loader(dataset, batch_size, **options)


def make_loaders(
    prepared: Prepared, config: TrainConfig, adversarial: bool
) -> dict[str, DataLoader]:
    """Class-balanced shuffled source batches; target adaptation batches for DANN; the rest in order."""
    loaders = {}
    for name, dataset in prepared.datasets.items():
        if name == "target_adapt" and not adversarial:
            continue
        train = name in ("source_train", "target_adapt")
        loaders[name] = batch_loader(
            dataset,
            config.batch_size,
            shuffle=train,
            seed=config.seed + (name == "target_adapt"),
            balanced=name == "source_train",
            drop_last=train and len(dataset) > config.batch_size,
            num_workers=config.num_workers,
        )
    return loaders


def predictions_table(
    table: pd.DataFrame, predictions: Predictions, labels: list[str]
) -> pd.DataFrame:
    """One row per utterance: path, speaker, true label, predicted label, a probability per class."""
    rows = table.iloc[predictions.index]
    frame = pd.DataFrame(
        {
            "path": rows["path"].to_numpy(),
            "speaker": rows["speaker"].to_numpy(),
            "label": rows["label"].to_numpy(),
            "pred": [labels[i] for i in predictions.pred],
        }
    )
    for column, name in enumerate(labels):
        frame[f"prob_{name}"] = np.round(predictions.probabilities[:, column], 5)
    return frame


def evaluate_sets(
    model: nn.Module,
    prepared: Prepared,
    labels: list[str],
    protocol: Protocol,
    config: TrainConfig,
    accelerator,
    run_dir: Path,
    target_batchnorm: dict[str, torch.Tensor] | None = None,
) -> dict:
    """Scores and predictions on every labelled set; the proxy A-distance source vs target test.

    ``target_batchnorm``: batch-norm statistics to score the target sets with (AdaBN runs).
    """
    metrics: dict = {}
    embeddings = {}
    for name in ("source_val", "source_test", "target_test", "target_all"):
        if name not in prepared.datasets:
            continue
        # prepared: each process scores its shard and gather_for_metrics drops the padding
        loader = accelerator.prepare(
            batch_loader(prepared.datasets[name], config.batch_size, shuffle=False)
        )
        statistics = target_batchnorm if name.startswith("target_") else None
        with using_batchnorm_statistics(accelerator.unwrap_model(model), statistics):
            found = predict(model, loader, accelerator, embeddings=True)
        embeddings[name] = found.embedding
        report = found.report(labels)
        metrics[name] = {
            "protocol": protocol.descriptions[name],
            "speakers": speakers_of(prepared.tables[name]),
            **report,
        }
        if accelerator.is_main_process:
            table = predictions_table(prepared.tables[name], found, labels)
            write_text_atomic(run_dir / "predictions" / f"{name}.csv", table.to_csv(index=False))
    if "source_test" in embeddings and "target_test" in embeddings:
        metrics["proxy_a_distance"] = {
            "value": proxy_a_distance(embeddings["source_test"], embeddings["target_test"]),
            "between": "embeddings of source_test and target_test (0 = indistinguishable, 2 = "
            "separable)",
        }
    return metrics


# ----- using a finished run --------------------------------------------------------------------


@dataclass
class LoadedRun:
    """A trained run read back from its folder: settings, labels, model and input pipeline."""

    run_dir: Path
    config: dict
    model: nn.Module
    inputs: MelInputs | None  # None for waveform models; FrozenInputs for frozen Wav2Vec2
    target_batchnorm: dict[str, torch.Tensor] | None = None  # AdaBN runs: for target clips

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])

    def dataset(self, table: pd.DataFrame, progress: bool = False, target: bool = False):
        """An evaluation dataset for labelled ``table`` (rows that cannot be read are dropped).

        ``target``: the clips come from the run's target corpus (its input statistics apply).
        Returns (dataset, the rows it holds, skipped files).
        """
        ids = encode_labels(table["label"].tolist(), self.labels)
        if self.inputs is None:
            dataset = WaveformDataset(table["path"].tolist(), ids, crop="start")
            return dataset, table.iloc[dataset.kept].reset_index(drop=True), dataset.skipped
        if isinstance(self.inputs, MelInputs):
            kept, arrays, skipped = log_mels(table, self.inputs.frontend, progress)
        else:  # frozen Wav2Vec2: pooled hidden states
            kept, arrays, skipped = self.inputs.features(table, progress)
        if kept.empty:
            raise ValueError("none of the audio files could be read")
        ids = encode_labels(kept["label"].tolist(), self.labels)
        return self.inputs.dataset(arrays, ids, train=False, target=target), kept, skipped


def rebuild_encoder(config: dict) -> nn.Module | None:
    """The saved run's Wav2Vec2 encoder, architecture only (its weights come from the run)."""
    if encoder_family(config["model"]) == "crnn":
        return None
    from serlib.models.wav2vec import rebuild_speech_encoder

    return rebuild_speech_encoder(config["encoder_config"])


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Read a run folder (config.json + model.safetensors) into a model in eval mode; no pickle."""
    run_dir = Path(run_dir).expanduser()
    config_path, weights_path = run_dir / "config.json", run_dir / "model.safetensors"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no config.json)")
    if not weights_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no model.safetensors yet (train or --resume the run)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") != RUN_FORMAT:
        raise ValueError(f"{run_dir}: run format {config.get('format')!r}, expected {RUN_FORMAT}")
    inputs = config["inputs"]
    mel_inputs = MelInputs.from_dict(inputs) if inputs["kind"] == "logmel" else None
    n_mels = mel_inputs.frontend.n_mels if mel_inputs else 128
    if inputs["kind"] == "w2v2-pooled":
        from serlib.models.wav2vec import FrozenInputs

        mel_inputs = FrozenInputs.from_dict(inputs)
        encoder = mel_inputs.head_encoder()
    else:
        encoder = rebuild_encoder(config)
    model = build_model(config["model"], len(config["labels"]), n_mels=n_mels, encoder=encoder)
    model.load_state_dict(load_weights(weights_path, device))
    adabn_path = run_dir / TARGET_BATCHNORM_FILE
    target_batchnorm = load_weights(adabn_path, device) if adabn_path.is_file() else None
    return LoadedRun(run_dir, config, model.to(device).eval(), mel_inputs, target_batchnorm)


def is_run_target(run: LoadedRun, ref: CorpusRef) -> bool:
    """Whether corpus ``ref`` is the target corpus the run was trained for."""
    return bool(run.config["target"]) and CorpusRef.from_dict(run.config["target"]) == ref


def split_speakers(run: LoadedRun, ref: CorpusRef) -> list[str]:
    """The test speakers the run recorded for corpus ``ref`` (its source or its target)."""
    splits = run.config["splits"]
    if is_run_target(run, ref):
        return splits["target_test"]
    if CorpusRef.from_dict(run.config["source"]) == ref and "source_test" in splits:
        return splits["source_test"]
    raise ValueError(
        f"the run has no test split for {ref.name} at {ref.root} (it is neither its source nor "
        "its target); use --split all"
    )


def evaluate_run(
    run: str | Path | LoadedRun, corpus: str | CorpusRef, split: str = "all", progress: bool = False
) -> dict:
    """Score a run on a corpus (all of it, or the run's test speakers of it): the evaluate JSON."""
    if split not in ("all", "test"):
        raise ValueError(f"split must be 'all' or 'test', got {split!r}")
    run = run if isinstance(run, LoadedRun) else load_run(run)
    ref = CorpusRef.parse(corpus)
    table, _ = labelled_table(ref, run.config["scheme"], run.labels)
    if split == "test":
        table = table[table["speaker"].isin(split_speakers(run, ref))].reset_index(drop=True)
        if table.empty:
            raise ValueError(f"{ref.name}: none of the run's test speakers is in {ref.root}")
    target = is_run_target(run, ref)
    dataset, _, skipped = run.dataset(table, progress, target=target)
    batch_size = int(run.config["train"]["batch_size"])
    loader = batch_loader(dataset, batch_size, shuffle=False)
    with using_batchnorm_statistics(run.model, run.target_batchnorm if target else None):
        report = predict(run.model, loader).report(run.labels)
    keys = ("ua", "wa", "macro_f1", "n", "labels", "confusion", "recall")
    extra = {"skipped": len(skipped), "encoder_label": run.config.get("encoder_label")}
    return {key: report[key] for key in keys} | extra


def predict_files(
    run: str | Path | LoadedRun, files: Sequence[str | Path], target: bool = False
) -> tuple[list[dict], list[Skip]]:
    """Label and class probabilities for each audio file (any rate, any channel count).

    ``target``: the files come from the run's target domain; a run trained with target input
    or batch-norm statistics uses those (otherwise the source's apply).

    Returns one ``{"path", "label", "probabilities": {class: p}}`` per readable file, in order,
    and a ``Skip`` with the reason for each file that cannot be used.
    """
    run = run if isinstance(run, LoadedRun) else load_run(run)
    good, features, skipped = [], [], []
    if run.inputs is not None and not isinstance(run.inputs, MelInputs):  # frozen Wav2Vec2
        kept, features, skipped = run.inputs.features(pd.DataFrame({"path": list(map(str, files))}))
        good, files = kept["path"].tolist(), []
    for path in files:
        try:
            if run.inputs is None:
                load_audio(path, 16000)  # only to check it is usable; the dataset decodes it
                features.append(None)
            else:
                wave = load_audio(path, run.inputs.frontend.sample_rate)
                features.append(log_mel(wave, run.inputs.frontend))
            good.append(str(path))
        except AudioError as error:
            skipped.append(Skip(str(path), error.reason))
    if not good:
        return [], skipped
    if run.inputs is None:
        dataset = WaveformDataset(good, None, crop="start")
    else:
        dataset = run.inputs.dataset(features, None, train=False, target=target)
    with using_batchnorm_statistics(run.model, run.target_batchnorm if target else None):
        found = predict(run.model, batch_loader(dataset, 8, shuffle=False))
    results: list[dict] = [{} for _ in good]
    for probabilities, index in zip(found.probabilities, found.index, strict=True):
        results[index] = {
            "path": good[index],
            "label": run.labels[int(probabilities.argmax())],
            "probabilities": {
                name: float(p) for name, p in zip(run.labels, probabilities, strict=True)
            },
        }
    return results, skipped


# ----- the command line (serlib/cli.py parses, these run) ---------------------------------------


def format_metrics(metrics: dict) -> str:
    """A short table of a run's scores, one line per evaluation set."""
    lines = [f"{'set':<12} {'UA':>6} {'WA':>6} {'F1':>6} {'n':>6}  protocol"]
    if "model" in metrics:  # e.g. "tiny random encoder (not pretrained)" must never go unsaid
        model = metrics["model"]
        lines.insert(0, f"model {model['kind']}, encoder: {model['encoder_label']}")
    for name, scores in metrics.items():
        if isinstance(scores, dict) and "ua" in scores:
            lines.append(
                f"{name:<12} {100 * scores['ua']:6.1f} {100 * scores['wa']:6.1f} "
                f"{100 * scores['macro_f1']:6.1f} {scores['n']:>6}  {scores['protocol']}"
            )
    if "proxy_a_distance" in metrics:
        lines.append(
            f"proxy A-distance (source vs target test): {metrics['proxy_a_distance']['value']:.2f}"
        )
    return "\n".join(lines)


OPTIONAL_FLAGS = ("adversary", "domain_weight", "mixed_precision", "normalisation", "trim_db")
"""``serlib train`` options that override the profile only when given."""


def train_command(args: argparse.Namespace) -> int:
    """``serlib train``: train into ``--out`` and print the scores."""
    result = train_run(
        args.model,
        args.source,
        args.out,
        target=args.target,
        scheme=args.scheme,
        profile=args.profile,
        epochs=args.epochs,
        seed=args.seed,
        resume=args.resume,
        encoder=args.encoder,
        transductive=getattr(args, "transductive", False),
        progress=sys.stderr.isatty(),
        target_statistics=getattr(args, "target_statistics", False),
        target_batchnorm=getattr(args, "target_batchnorm", False),
        **{
            name: getattr(args, name)
            for name in OPTIONAL_FLAGS
            if getattr(args, name, None) is not None
        },
    )
    print(format_metrics(result.metrics))
    print(f"run folder: {result.run_dir}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """``serlib evaluate``: score a run on a corpus; ``--json`` prints the contract's JSON."""
    report = evaluate_run(args.run, args.corpus, args.split, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(report))
        return 0
    if report.get("encoder_label"):
        print(f"encoder: {report['encoder_label']}")
    print(
        f"UA {100 * report['ua']:.1f}  WA {100 * report['wa']:.1f}  "
        f"macro-F1 {100 * report['macro_f1']:.1f}  n {report['n']}"
    )
    width = max(len(label) for label in report["labels"])
    print(
        " " * (width + 2)
        + " ".join(f"{label[:6]:>6}" for label in report["labels"])
        + "  (rows: true)"
    )
    for label, row in zip(report["labels"], report["confusion"], strict=True):
        print(f"{label:<{width}}  " + " ".join(f"{count:>6}" for count in row))
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """``serlib predict``: one line per file, label then class probabilities; exit 2 if any failed."""
    results, skipped = predict_files(args.run, args.files, target=getattr(args, "target", False))
    label = json.loads((Path(args.run) / "config.json").read_text()).get("encoder_label", "")
    if "not pretrained" in label:
        print(f"serlib predict: note: this run uses a {label}", file=sys.stderr)
    for result in results:
        scores = "  ".join(f"{name} {p:.3f}" for name, p in result["probabilities"].items())
        print(f"{result['path']}\t{result['label']}\t{scores}")
    for skip in skipped:
        print(f"serlib predict: error: {skip.path}: {skip.reason}", file=sys.stderr)
    return 2 if skipped else 0
