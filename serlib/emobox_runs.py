"""Running EmoBox's protocols: every fold a run folder, resumable, and a table beside EmoBox's numbers.

Two protocols, each labelled as EmoBox's in every file and table it writes, apart from serlib's own:

- ``run_emobox_folds``: EmoBox's intra-corpus folds of RAVDESS (8 emotions, 6 folds of 4 actors) or
  IEMOCAP (4 classes, leave one session out). Fold k is the run folder ``out/fold_k``;
  ``out/summary.json`` holds each fold's test scores and their mean and standard deviation.
- ``run_emobox_cross``: EmoBox's cross-corpus track: train on the whole source corpus (less two
  validation speakers), score on EmoBox's balanced 4-class test set of the target. No target clip
  is used in training or to choose the epoch. The run folder is ``out/<source>_to_<target>``.

serlib's stricter protocols (``serlib train``: adaptation and test speakers disjoint;
``runs.cross_validate``) stay the defaults; these exist so that a number can stand beside EmoBox's
published tables, which ``format_summary`` prints with the protocol named.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from serlib.checkpoints import write_json_atomic
from serlib.config import TrainConfig
from serlib.emobox import (
    CROSS_SCHEME,
    VALIDATION_SPEAKERS,
    balanced_test_set,
    check_emobox_corpus,
    emobox_fold,
    fold_facts,
    missing_clips_error,
    published,
    select_folds,
    source_tables,
)
from serlib.errors import UserError
from serlib.models import check_model_kind, is_adversarial_kind
from serlib.protocol import CorpusRef, Protocol, labelled_table, speakers_of
from serlib.run_settings import RunSettings, check_resumable, make_settings
from serlib.runs import run_protocol
from serlib.splits import Fold

PROTOCOL_FOLDS = "EmoBox folds"
PROTOCOL_CROSS = "EmoBox cross-corpus track"
SUMMARY_FILE = "summary.json"
EMOBOX_SELECTION = "EmoBox chooses on a random 20 % of the training clips"


def selection(config: TrainConfig) -> str:
    """How serlib chose the weights under EmoBox's protocols, in words, for summaries and tables."""
    validation = f"{VALIDATION_SPEAKERS} validation speakers (one per gender)"
    if config.refit:
        return (
            f"serlib trains on every training speaker, {validation} included, and keeps the last "
            f"epoch (refit; {EMOBOX_SELECTION})"
        )
    if config.keep == "last":
        return (
            f"serlib keeps the last epoch; {validation} taken from the training speakers choose "
            f"nothing ({EMOBOX_SELECTION})"
        )
    return (
        f"serlib keeps the epoch with the best UA on {validation} taken from the training speakers "
        f"({EMOBOX_SELECTION})"
    )


def is_main_process() -> bool:
    """Under ``accelerate launch`` one process writes the summary; alone, this one."""
    return int(os.environ.get("RANK", "0")) == 0


def benchmark_settings(model: str, source: CorpusRef, scheme: str, **options) -> RunSettings:
    """A run's settings for an EmoBox protocol: a model that trains without target data."""
    if is_adversarial_kind(check_model_kind(model)):
        raise UserError(
            f"EmoBox's protocols use no target data in training: use --model crnn or w2v2, not {model}"
        )
    return make_settings(model, source, scheme=scheme, **options)


def check_same_speakers(run_dir: Path, protocol: Protocol) -> None:
    """A run folder is resumed only for the same speakers in every set (the corpus may have grown)."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        return
    saved = json.loads(config_path.read_text(encoding="utf-8")).get("splits", {})
    for name, table in protocol.tables.items():
        if name in saved and saved[name] != speakers_of(table):
            raise UserError(
                f"cannot resume {run_dir}: its {name.replace('_', ' ')} speakers were "
                f"{', '.join(saved[name])}, the corpus now gives {', '.join(speakers_of(table))}; "
                "run the protocol again in another --out"
            )


def run_or_reuse(
    run_dir: Path, settings: RunSettings, protocol: Protocol, resume: bool, progress: bool
) -> dict:
    """The run's metrics: a finished run's when resuming (no training), else train or continue it."""
    check_resumable(run_dir, settings, resume)
    check_same_speakers(run_dir, protocol)
    metrics_path = run_dir / "metrics.json"
    if resume and metrics_path.is_file():
        if progress:
            print(f"{run_dir}: finished, reusing its scores", file=sys.stderr)
        return json.loads(metrics_path.read_text(encoding="utf-8"))
    return run_protocol(run_dir, settings, protocol, resume=resume, progress=progress).metrics


def scores_of(metrics: dict, name: str, expected: int | None) -> dict:
    """The test scores of one run, and whether every clip of the test set was scored."""
    test = metrics[name]
    return {
        "speakers": test["speakers"],
        "n": int(test["n"]),
        "expected_n": expected,
        "ua": float(test["ua"]),
        "wa": float(test["wa"]),
        "macro_f1": float(test["macro_f1"]),
        "best_epoch": metrics.get("selection", {}).get("best_epoch"),
        "protocol": test["protocol"],
    }


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else None


# ----- EmoBox's folds ----------------------------------------------------------------------------


def emobox_fold_protocol(fold: Fold, skipped: list) -> Protocol:
    """One EmoBox fold as a run's protocol: EmoBox's test speakers, serlib's validation speakers."""
    speakers = fold.speakers()
    return Protocol(
        {f"source_{part}": rows for part, rows in fold.as_dict().items()},
        {
            "source_val": f"EmoBox {fold.name}: validation speakers {', '.join(speakers['val'])}, "
            "taken from EmoBox's training speakers (model selection)",
            "source_test": f"EmoBox {fold.name}: EmoBox's test speakers "
            f"{', '.join(speakers['test'])}, never seen in training",
        },
        list(skipped),
    )


def run_emobox_folds(
    corpus: str | CorpusRef,
    out: str | Path,
    *,
    model: str = "crnn",
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    resume: bool = False,
    available_folds: bool = False,
    progress: bool = True,
    **options,
) -> dict:
    """Train and score every EmoBox fold of ``corpus`` (RAVDESS or IEMOCAP) into ``out/fold_k``.

    ``resume`` skips finished folds and continues unfinished ones. A folder lacking part of
    EmoBox's test folds is refused unless ``available_folds``, which runs the complete folds and
    records the others as skipped. ``options`` go to ``make_settings`` (encoder, w2v2_mode and
    any training or input setting). Returns the summary written to ``out/summary.json``.
    """
    ref = CorpusRef.parse(corpus)
    facts = fold_facts(check_emobox_corpus(ref.name))
    settings = benchmark_settings(
        model, ref, facts["scheme"], profile=profile, epochs=epochs, seed=seed, **options
    )
    table, skipped_files = labelled_table(ref, facts["scheme"], settings.labels)
    folds, skipped, notes = select_folds(ref, table, facts, available_folds)
    out = Path(out).expanduser()
    scores = {}
    for fold in folds:
        name = fold["name"]
        if progress:
            print(
                f"EmoBox {name} of {ref.name}: test speakers {fold['test_speakers']}",
                file=sys.stderr,
            )
        protocol = emobox_fold_protocol(emobox_fold(table, fold), skipped_files)
        fold_settings = replace(settings, fold=f"EmoBox {name}")
        metrics = run_or_reuse(out / name, fold_settings, protocol, resume, progress)
        expected = sum(fold["test_counts"].values()) if fold["test_counts"] else None
        scores[name] = scores_of(metrics, "source_test", expected)
    summary = folds_summary(ref, settings, facts, scores, skipped, notes)
    if is_main_process():
        write_json_atomic(out / SUMMARY_FILE, summary)
    return summary


def folds_summary(
    ref: CorpusRef,
    settings: RunSettings,
    facts: dict,
    scores: dict[str, dict],
    skipped: dict[str, str],
    notes: dict[str, str],
) -> dict:
    """Every fold's scores, their mean and spread, what was skipped, and EmoBox's numbers."""
    unscored = {
        name: f"scored {s['n']} of the {s['expected_n']} test clips (unreadable clips skipped)"
        for name, s in scores.items()
        if s["expected_n"] is not None and s["n"] != s["expected_n"]
    }
    summary = {
        "protocol": PROTOCOL_FOLDS,
        "description": f"EmoBox's {len(facts['folds'])} speaker-independent folds of {ref.name} "
        f"(its test speakers, its classes); {selection(settings.train)}",
        "corpus": ref.to_dict(),
        "scheme": facts["scheme"],
        "labels": settings.labels,
        **run_description(settings),
        "folds": scores,
        "folds_total": len(facts["folds"]),
        "skipped": skipped,
        "notes": {**notes, **unscored},
        "published": published(ref.name),
    }
    for key in ("ua", "wa", "macro_f1"):
        summary[f"{key}_mean"], summary[f"{key}_std"] = mean_and_std(
            [s[key] for s in scores.values()]
        )
    summary["comparable"] = not skipped and not summary["notes"]
    return summary


def run_description(settings: RunSettings) -> dict:
    """What trained: model, encoder in words, profile, seed."""
    return {
        "model": settings.model,
        "encoder_label": settings.encoder_label,
        "profile": settings.profile,
        "seed": settings.seed,
    }


# ----- EmoBox's cross-corpus track ---------------------------------------------------------------


def run_emobox_cross(
    source: str | CorpusRef,
    target: str | CorpusRef,
    out: str | Path,
    *,
    model: str = "crnn",
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    resume: bool = False,
    available_clips: bool = False,
    progress: bool = True,
    **options,
) -> dict:
    """Train on all of ``source`` (4 classes) and score EmoBox's balanced test set of ``target``.

    The run folder is ``out/<source>_to_<target>``; the summary goes to ``out/summary.json``. A
    target folder lacking clips of EmoBox's set is refused unless ``available_clips``, which
    scores the clips present and marks the result partial.
    """
    source_ref, target_ref = CorpusRef.parse(source), CorpusRef.parse(target)
    check_emobox_corpus(target_ref.name)
    if source_ref.name == target_ref.name:
        raise UserError(
            f"the cross-corpus track trains on one corpus and tests on another: give a --source "
            f"other than {target_ref.name}"
        )
    settings = benchmark_settings(
        model, source_ref, CROSS_SCHEME, target=target_ref, profile=profile, epochs=epochs,
        seed=seed, **options,
    )  # fmt: skip
    test = balanced_test_set(target_ref)
    if test.table.empty or (test.missing and not available_clips):
        raise UserError(missing_clips_error(target_ref, test))
    split, skipped_files = source_tables(source_ref)
    protocol = Protocol(
        {"source_train": split.train, "source_val": split.val, "target_test": test.table},
        {
            "source_val": f"{source_ref.name} validation speakers "
            f"{', '.join(speakers_of(split.val))} (model selection; never the target)",
            "target_test": f"EmoBox's balanced test set of {target_ref.name} ({len(test.table)} of "
            f"its {test.expected} clips, EmoBox's labels); no target clip used in training",
        },
        skipped_files + test.skipped,
    )
    run_dir = Path(out).expanduser() / f"{source_ref.name}_to_{target_ref.name}"
    metrics = run_or_reuse(
        run_dir, replace(settings, fold=PROTOCOL_CROSS), protocol, resume, progress
    )
    scores = scores_of(metrics, "target_test", test.expected)
    pair = f"{source_ref.name}->{target_ref.name}"
    summary = {
        "protocol": PROTOCOL_CROSS,
        "description": f"trained on {source_ref.name} in 4 classes; UA on EmoBox's balanced "
        f"4-class test set of {target_ref.name}; {selection(settings.train)}",
        "source": source_ref.to_dict(),
        "target": target_ref.to_dict(),
        "pair": pair,
        "labels": settings.labels,
        **run_description(settings),
        "test": scores,
        "missing_clips": len(test.missing),
        "relabelled_clips": test.relabelled,
        "comparable": not test.missing and scores["n"] == test.expected,
        "published": published(pair),
    }
    if is_main_process():
        write_json_atomic(Path(out).expanduser() / SUMMARY_FILE, summary)
    return summary


# ----- the comparison table ----------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def spread(mean: float, std: float | None) -> str:
    """``mean ± std`` in percent; the mean alone for a single fold."""
    return percent(mean) if std is None else f"{percent(mean)} ± {percent(std)}"


def published_lines(found: dict, width: int) -> list[str]:
    """EmoBox's rows of the comparison table, and where they were published."""
    if not found["rows"]:
        return ["EmoBox: no published number recorded in serlib for this protocol"]
    lines = [
        f"{'EmoBox, ' + row['model']:<{width}} {row['ua_percent']:>13.1f} {'-':>13} {'-':>13}"
        for row in found["rows"]
    ]
    return lines + [f"EmoBox's numbers: {found['citation']}, {found['table']}; UA only"]


def format_summary(summary: dict) -> str:
    """The comparison table: serlib's result beside EmoBox's published numbers, protocol named."""
    ours = f"serlib {summary['model']}, {summary['encoder_label']}, {summary['profile']} profile"
    if summary["protocol"] == PROTOCOL_CROSS:
        lines = cross_head(summary)
        row = [percent(summary["test"][key]) for key in ("ua", "wa", "macro_f1")]
    else:
        lines = folds_head(summary)
        ours += f", {len(summary['folds'])} of {summary['folds_total']} folds"
        row = [spread(summary[f"{k}_mean"], summary[f"{k}_std"]) for k in ("ua", "wa", "macro_f1")]
    width = max(44, len(ours))
    lines += [
        "",
        f"{'result':<{width}} {'UA':>13} {'WA':>13} {'macro-F1':>13}",
        f"{ours:<{width}} " + " ".join(f"{value:>13}" for value in row),
        *published_lines(summary["published"], width),
    ]
    if not summary["comparable"]:
        lines.append(
            "NOT comparable with EmoBox's numbers: the test set or training data differ from "
            "EmoBox's (see the skipped folds, notes or missing clips above)"
        )
    return "\n".join(lines)


def folds_head(summary: dict) -> list[str]:
    """Protocol, classes, one line per fold, then the folds skipped and the notes."""
    lines = [
        f"{PROTOCOL_FOLDS}: {summary['corpus']['name']}, {len(summary['labels'])} classes "
        f"({' '.join(summary['labels'])})",
        f"  {summary['description']}",
        f"{'fold':<8} {'n':>5} {'UA':>6} {'WA':>6} {'F1':>6} {'epoch':>5}  test speakers",
    ]
    for name, s in summary["folds"].items():
        lines.append(
            f"{name:<8} {s['n']:>5} {percent(s['ua']):>6} {percent(s['wa']):>6} "
            f"{percent(s['macro_f1']):>6} {s['best_epoch'] or '-':>5}  {' '.join(s['speakers'])}"
        )
    lines += [f"skipped: {why}" for why in summary["skipped"].values()]
    lines += [f"note, {name}: {note}" for name, note in summary["notes"].items()]
    return lines


def cross_head(summary: dict) -> list[str]:
    """Protocol, classes, the test set as scored."""
    test = summary["test"]
    lines = [
        f"{PROTOCOL_CROSS}: {summary['source']['name']} -> {summary['target']['name']}, "
        f"{len(summary['labels'])} classes ({' '.join(summary['labels'])})",
        f"  {summary['description']}",
        f"  test clips scored: {test['n']} of EmoBox's {test['expected_n']}; best epoch "
        f"{test['best_epoch']}",
    ]
    if summary["relabelled_clips"]:
        lines.append(
            f"  {summary['relabelled_clips']} test clips carry another label in the corpus's own "
            "files; scored with EmoBox's label"
        )
    return lines
