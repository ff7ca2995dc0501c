"""Run folders: train a model on corpora from disk, then evaluate it and predict with it.

``train_run`` does the whole study protocol in one call (``serlib train`` is a thin wrapper):

1. the protocol (``serlib.protocol``): scan the corpora, map their labels with the scheme, split the
   source by speaker and the target into adaptation and test speakers;
2. the inputs (``serlib.inputs``): log-mels, pooled Wav2Vec2 states or waveforms, with any
   normalisation fitted on the source training speakers only;
3. training with ``serlib.train.fit``: DANN adapts on the adaptation speakers' audio (never their
   labels); the best epoch is chosen on source validation UA;
4. evaluation on every set (``serlib.scoring``), written to ``metrics.json`` and
   ``predictions/<set>.csv``.

A run folder holds ``config.json`` (everything needed to rebuild the model and its inputs, made by
``run_config``), ``model.safetensors`` (the kept epoch's weights), ``history.csv``, ``metrics.json``,
``predictions/<set>.csv`` and ``checkpoint/`` (the last complete epoch, for ``--resume``). Every
file is written atomically (see ``serlib.checkpoints``).

``load_run`` reads a folder back; ``evaluate_run`` and ``predict_files`` score a corpus or loose
files with it; ``cross_validate`` runs k speaker-independent folds on one corpus.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader

from serlib.augment import SpecAugment
from serlib.checkpoints import load_weights, save_weights, write_json_atomic
from serlib.config import KEEP_RULES, REFIT_RULE, InputConfig, TrainConfig
from serlib.corpora.base import Skip
from serlib.data import encode_labels
from serlib.errors import UserError
from serlib.hardware import make_accelerator
from serlib.inputs import (
    Inputs,
    Prepared,
    inputs_from_dict,
    prepare_mel_sets,
    prepare_pooled_sets,
    prepare_wave_sets,
)
from serlib.models import (
    build_model,
    encoder_family,
    is_adversarial_kind,
)
from serlib.models.adabn import estimate_batchnorm_statistics, using_batchnorm_statistics
from serlib.predict import predict
from serlib.protocol import (
    CorpusRef,
    Protocol,
    fold_protocol,
    labelled_table,
    make_protocol,
    refit_protocol,
)
from serlib.run_settings import (
    READABLE_FORMATS,
    RUN_FORMAT,
    RunSettings,
    check_resumable,
    make_settings,
    run_config,
    target_statistics_used,
    uses_split_batchnorm,
)
from serlib.scoring import evaluate_sets
from serlib.splits import SPLIT_SEED, speaker_folds
from serlib.train import fit

TARGET_BATCHNORM_FILE = "target_batchnorm.safetensors"
"""AdaBN runs: the batch-norm statistics of the target adaptation speakers, used for target clips."""


# ----- training --------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What ``train_run`` hands back to a notebook."""

    run_dir: Path
    metrics: dict
    history: list[dict]
    model: nn.Module
    main_process: bool = True  # False in the other processes of ``accelerate launch``


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

    ``overrides`` replace entries of the profile's ``TrainConfig`` or ``InputConfig`` (e.g.
    ``batch_size=16``, ``crop_frames=200``).
    ``w2v2_mode`` (Wav2Vec2 models): ``frozen`` trains heads on cached hidden states, ``finetune``
    the whole encoder; default ``serlib.models.pretrained.choose_mode``'s rule.
    """
    settings = make_settings(
        model,
        source,
        target=target,
        scheme=scheme,
        profile=profile,
        epochs=epochs,
        seed=seed,
        encoder=encoder,
        transductive=transductive,
        w2v2_mode=w2v2_mode,
        **overrides,
    )
    run_dir = Path(out).expanduser()
    check_resumable(run_dir, settings, resume)
    protocol = make_protocol(
        settings.source,
        settings.target,
        scheme,
        settings.labels,
        adversarial=is_adversarial_kind(settings.model),
        transductive=transductive,
        target_statistics=target_statistics_used(settings),
    )
    return run_protocol(run_dir, settings, protocol, resume=resume, progress=progress)


def prepare_inputs(settings: RunSettings, protocol: Protocol, progress: bool) -> Prepared:
    """The inputs the model reads: log-mels (CRNN), pooled states (frozen) or waveforms."""
    labels, inputs = settings.labels, settings.inputs
    if encoder_family(settings.model) == "crnn":
        return prepare_mel_sets(protocol, labels, inputs, settings.seed, progress)
    if settings.w2v2_mode == "frozen":
        return prepare_pooled_sets(protocol, labels, settings.encoder, progress)
    return prepare_wave_sets(protocol, labels, inputs, settings.seed)


def run_protocol(
    run_dir: Path,
    settings: RunSettings,
    protocol: Protocol,
    *,
    resume: bool = False,
    progress: bool = True,
) -> RunResult:
    """Steps 2 to 4 for tables already split: inputs, model, training, evaluation, files."""
    kind, labels, config = settings.model, settings.labels, settings.train
    if config.refit:  # the validation speakers train too; nothing is chosen by them
        protocol = refit_protocol(protocol)
    accelerator = make_accelerator(config)
    with accelerator.main_process_first():  # one process fills the feature cache, the rest read it
        prepared = prepare_inputs(settings, protocol, progress and accelerator.is_main_process)
    set_seed(config.seed)
    net = build_model(
        kind,
        len(labels),
        encoder_name=settings.encoder,
        split_batchnorm=uses_split_batchnorm(kind, config.target_batchnorm),
        dropout=config.dropout,
        pool_bands=config.pool_bands,
        **prepared.inputs.model_options(),
    )
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", run_config(settings, protocol, prepared, net))
    loaders = make_loaders(prepared, config, is_adversarial_kind(kind), accelerator.num_processes)
    result = fit(
        net,
        loaders["source_train"],
        loaders.get("source_val"),
        config,
        labels=labels,
        target_loader=loaders.get("target_adapt"),
        run_dir=run_dir,
        resume=resume,
        accelerator=accelerator,
        augment=spec_augment(settings.inputs) if encoder_family(kind) == "crnn" else None,
        progress=progress,
    )
    target_batchnorm = None
    if config.target_batchnorm:  # AdaBN: the target adaptation speakers' audio, no label
        core = accelerator.unwrap_model(result.model)
        adapt = prepared.inputs.loader(
            prepared.datasets["target_adapt"], config.batch_size, shuffle=True, seed=config.seed + 1
        )
        target_batchnorm = estimate_batchnorm_statistics(core, adapt, core.input_keys)
        if accelerator.is_main_process:
            save_weights(run_dir / TARGET_BATCHNORM_FILE, target_batchnorm)
    metrics = evaluate_sets(
        result.model,
        prepared,
        labels,
        protocol,
        config,
        accelerator,
        run_dir,
        target_batchnorm,
        source_val=result.best_val,
    )
    metrics["model"] = {"kind": kind, "encoder_label": settings.encoder_label}
    metrics["selection"] = {
        "rule": REFIT_RULE if config.refit else KEEP_RULES[config.keep],
        "best_epoch": result.best_epoch + 1,
        "best_val_ua": None if math.isnan(result.best_val_ua) else result.best_val_ua,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
    }
    if accelerator.is_main_process:
        write_json_atomic(run_dir / "metrics.json", metrics)
    accelerator.wait_for_everyone()
    return RunResult(run_dir, metrics, result.history, result.model, accelerator.is_main_process)


def spec_augment(inputs: InputConfig) -> Callable[[dict], dict] | None:
    """SpecAugment on training log-mel batches when the settings ask for it (in the real frames)."""
    if not inputs.spec_augment:
        return None
    masker = SpecAugment()

    def augment(batch: dict) -> dict:
        return {**batch, "x": masker(batch["x"], batch["mask"])}

    return augment


def make_loaders(
    prepared: Prepared, config: TrainConfig, adversarial: bool, processes: int = 1
) -> dict[str, DataLoader]:
    """Class-balanced shuffled source batches; target adaptation batches for DANN; the rest in order."""
    loaders = {}
    for name, dataset in prepared.datasets.items():
        if name == "target_adapt" and not adversarial:
            continue
        train = name in ("source_train", "target_adapt")
        loaders[name] = prepared.inputs.loader(
            dataset,
            config.batch_size,
            shuffle=train,
            seed=config.seed + (name == "target_adapt"),
            balanced=name == "source_train",
            drop_last=train and len(dataset) > config.batch_size * processes,  # 1 batch/process
            num_workers=config.num_workers,
        )
    return loaders


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
    train_speakers: int | None = None,
    **overrides,
) -> dict:
    """Speaker-independent k-fold cross-validation of the CRNN on one corpus.

    Fold k tests on its own speakers, selects the epoch on a few other speakers and trains on the
    rest (``serlib.splits.speaker_folds``); every utterance is tested exactly once. Each fold is a
    run folder ``out/foldK``; ``out/summary.json`` holds every fold's test scores and their mean
    and standard deviation. Returns that summary. ``train_speakers`` trains each fold on only N
    of the rest (a learning curve; its run folders say so, and refuse to resume with another N).
    """
    base = make_settings(
        "crnn", corpus, scheme=scheme, profile=profile, epochs=epochs, seed=seed, **overrides
    )
    table, skipped = labelled_table(base.source, scheme, base.labels, every_class=True)
    out = Path(out).expanduser()
    folds = {}
    trained_on = "" if train_speakers is None else f", trained on {train_speakers} speakers"
    for fold in speaker_folds(table, n_folds, seed=SPLIT_SEED, train_speakers=train_speakers):
        settings = replace(base, fold=fold.name + trained_on)
        check_resumable(out / fold.name, settings, resume)
        protocol = fold_protocol(fold, skipped)
        result = run_protocol(out / fold.name, settings, protocol, resume=resume, progress=progress)
        folds[fold.name] = result.metrics["source_test"]
    uas = np.array([scores["ua"] for scores in folds.values()])
    summary = {
        "corpus": base.source.to_dict(),
        "scheme": scheme,
        "labels": base.labels,
        "protocol": f"{n_folds}-fold speaker-independent cross-validation (each speaker tested "
        f"once{trained_on})",
        "ua_mean": float(uas.mean()),
        "ua_std": float(uas.std(ddof=1)) if len(uas) > 1 else 0.0,
        "wa_mean": float(np.mean([scores["wa"] for scores in folds.values()])),
        "folds": folds,
    }
    if result.main_process:  # the folds' processes: one writes
        write_json_atomic(out / "summary.json", summary)
    return summary


# ----- evaluation ------------------------------------------------------------------------------


# ----- using a finished run --------------------------------------------------------------------


@dataclass
class LoadedRun:
    """A trained run read back from its folder: settings, labels, model and input pipeline."""

    run_dir: Path
    config: dict
    model: nn.Module
    inputs: Inputs
    target_batchnorm: dict[str, torch.Tensor] | None = None  # AdaBN runs: for target clips

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])

    def dataset(self, table: pd.DataFrame, progress: bool = False, target: bool = False):
        """An evaluation dataset for labelled ``table`` (rows that cannot be read are dropped).

        ``target``: the clips come from the run's target corpus (its input statistics apply).
        Returns (dataset, the rows it holds, skipped files).
        """
        kept, items, skipped = self.inputs.read(table, progress)
        if kept.empty:
            raise UserError("none of the audio files could be read; `serlib scan` lists why")
        ids = encode_labels(kept["label"].tolist(), self.labels)
        return self.inputs.dataset(items, ids, train=False, target=target), kept, skipped


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Read a run folder (config.json + model.safetensors) into a model in eval mode; no pickle."""
    run_dir = Path(run_dir).expanduser()
    config_path, weights_path = run_dir / "config.json", run_dir / "model.safetensors"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no config.json)")
    if not weights_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no model.safetensors yet (train or --resume the run)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") not in READABLE_FORMATS:
        raise UserError(
            f"{run_dir}: run format {config.get('format')!r}, expected {RUN_FORMAT}; "
            "train the run again with this version of serlib"
        )
    inputs = inputs_from_dict(config["inputs"])
    target_batchnorm = bool(config["train"].get("target_batchnorm"))
    model = build_model(
        config["model"],
        len(config["labels"]),
        split_batchnorm=uses_split_batchnorm(config["model"], target_batchnorm),
        pool_bands=bool(config["train"].get("pool_bands")),  # runs from before it: False
        **inputs.model_options(config.get("encoder_config")),
    )
    model.load_state_dict(load_weights(weights_path, device))
    adabn_path = run_dir / TARGET_BATCHNORM_FILE
    statistics = load_weights(adabn_path, device) if adabn_path.is_file() else None
    return LoadedRun(run_dir, config, model.to(device).eval(), inputs, statistics)


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
    raise UserError(
        f"the run has no test split for {ref.name} at {ref.root} (it is neither its source nor "
        "its target); use --split all"
    )


def evaluate_run(
    run: str | Path | LoadedRun, corpus: str | CorpusRef, split: str = "all", progress: bool = False
) -> dict:
    """Score a run on a corpus (all of it, or the run's test speakers of it): the evaluate JSON."""
    if split not in ("all", "test"):
        raise UserError(f"split must be 'all' or 'test', got {split!r}")
    run = run if isinstance(run, LoadedRun) else load_run(run)
    ref = CorpusRef.parse(corpus)
    table, _ = labelled_table(ref, run.config["scheme"], run.labels)
    if split == "test":
        table = table[table["speaker"].isin(split_speakers(run, ref))].reset_index(drop=True)
        if table.empty:
            raise UserError(f"{ref.name}: none of the run's test speakers is in {ref.root}")
    target = is_run_target(run, ref)
    dataset, _, skipped = run.dataset(table, progress, target=target)
    batch_size = int(run.config["train"]["batch_size"])
    loader = run.inputs.loader(dataset, batch_size, shuffle=False)
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
    good, items, skipped = run.inputs.read_files(files)
    if not good:
        return [], skipped
    dataset = run.inputs.dataset(items, None, train=False, target=target)
    with using_batchnorm_statistics(run.model, run.target_batchnorm if target else None):
        found = predict(run.model, run.inputs.loader(dataset, 8, shuffle=False))
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
