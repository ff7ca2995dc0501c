"""The from-scratch CRNN recipe on real RAVDESS (8 emotions): choose it, then measure it.

Two steps, both resumable (finished runs are read back, an unfinished one continues):

``select``: candidate settings trained on EmoBox's fold_2 (test actors 4, 10, 12, 14; the one
complete EmoBox fold of actors 1-16) and compared on that fold's *validation* actors only (two of
its training actors); the test actors' UA is printed beside it but chooses nothing.

``evaluate``: the first round's choice (``CHOSEN``, the ``recipe`` profile until the eighth round
made it refit) on EmoBox's folds that are complete on disk and on serlib's 4-fold
speaker-independent cross-validation of the actors on disk (the folds of the 45.8 % baseline), for
each seed; UA per fold, mean +- std, and UA per test actor. The ``recipe`` profile of today
(``serlib.config.RECIPE_SETTINGS``) is the candidate ``refit``: ``compare --candidates refit``.

    python benchmarks/run_recipe.py select --ravdess DIR --seeds 0
    python benchmarks/run_recipe.py evaluate --ravdess DIR --seeds 0 1 2 --threads 1
    python benchmarks/run_recipe.py compare --ravdess DIR --seeds 2 --candidates cosine regularised

``compare``: candidates on serlib's 4 folds, compared by the mean validation UA of the four folds
(eight validation actors); test UA of the kept and of the last epoch beside it, choosing nothing.

Runs go to ``$SERLIB_HOME/study/recipe/``. One torch thread per process (``--threads``); two
processes side by side use a 2-core machine better than one with two threads.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from serlib.checkpoints import load_checkpoint
from serlib.config import serlib_home
from serlib.emobox_runs import run_emobox_folds
from serlib.metrics import classification_report
from serlib.runs import cross_validate, evaluate_run, load_run

TRIMMED = {"trim_db": 40.0, "crop_frames": 160, "epochs": 40}
"""Silence trimmed (40 dB below each clip's loudest frame), so 160-frame crops (2.6 s) hold almost
every spoken frame of a RAVDESS sentence; 40 epochs."""
COSINE = {"schedule": "cosine", "warmup_epochs": 2}

FIRST_ROUND = {
    "full-trimmed": TRIMMED,
    "utterance": {**TRIMMED, "normalisation": "utterance"},
    "cosine": {**TRIMMED, **COSINE},
    "cosine-specaugment-smoothing": {
        **TRIMMED, **COSINE, "spec_augment": True, "label_smoothing": 0.1,
    },
    "cosine-specaugment-smoothing-mixup": {
        **TRIMMED, **COSINE, "spec_augment": True, "label_smoothing": 0.1, "mixup": 0.2,
        "patience": 20,
    },
}  # fmt: skip
"""What ``select`` compares on EmoBox's fold_2, each on top of the ``full`` CRNN profile (60
epochs of 300-frame crops, ReduceLROnPlateau, patience 12): trimmed clips, then one cheap change
at a time."""

SECOND_ROUND = {
    "regularised": {
        **TRIMMED, **COSINE, "spec_augment": True, "label_smoothing": 0.1,
        "epochs": 50, "patience": 50,
    },
    "regularised-mixup": {
        **TRIMMED, **COSINE, "spec_augment": True, "label_smoothing": 0.1, "mixup": 0.2,
        "epochs": 50, "patience": 50,
    },
    "speed-0.9-1.1": {
        **TRIMMED, **COSINE, "speed_perturb": (0.9, 1.1), "epochs": 16, "warmup_epochs": 1,
    },
    "speed-0.8-1.2": {
        **TRIMMED, **COSINE, "speed_perturb": (0.8, 0.9, 1.1, 1.2), "epochs": 10,
        "warmup_epochs": 1,
    },
}  # fmt: skip
"""``compare``'s candidates (2026-12-01), judged on the validation actors of all four of serlib's
folds: the regularisers given the epochs they need, every epoch run (no early stop); speed
perturbation (computed once into the cache) against speaker variation, each speed one more copy
of the training clips per epoch, so fewer epochs give about the recipe's number of optimiser
steps."""

THIRD_ROUND = {
    "cosine-40": {**TRIMMED, **COSINE, "patience": 40},
    "speed-0.9-1.1-all": {**SECOND_ROUND["speed-0.9-1.1"], "patience": 16},
}
"""The third round (2026-12-01, seeds 0 and 1): the recipe and the second round's validation pick
with every epoch of their schedules run, so that the epoch a fold keeps by validation can be set
against the last epoch of the schedule (a rule declared before these seeds ran)."""

FOURTH_ROUND = {"dropout-0.3": {**THIRD_ROUND["cosine-40"], "dropout": 0.3}}
"""The fourth round (2026-12-01, seeds 0 and 1): the recipe with every epoch run, plus dropout 0.3 on
the BiLSTM's input, where 2.2 M of the CRNN's 2.36 M weights are; set against ``cosine-40``'s runs
of the same folds and seeds by mean validation UA (a rule declared before it ran)."""

SIXTH_ROUND = {"pool-bands": {**THIRD_ROUND["cosine-40"], "pool_bands": True}}
"""The sixth round (2026-12-01, seeds 0 and 1): the recipe with every epoch run, its BiLSTM reading
the conv maps' mean over the mel bands (128 features a step, not 2048: 0.26 M weights, not 2.23 M);
set against ``cosine-40``'s runs of the same folds and seeds by mean validation UA (a rule
declared before it ran)."""

LEARNING_CURVE = {
    f"speakers-{n}": {**THIRD_ROUND["cosine-40"], "train_speakers": n} for n in (3, 6)
}
"""How much the number of training actors is worth (2026-12-01, seeds 0 and 1): the recipe with
every epoch run, each fold trained on only the first 3 or 6 of its 10 training actors (its test
and validation actors unchanged), set against ``cosine-40``'s runs on all 10. A measurement, not a
candidate: it chooses nothing. EmoBox's RAVDESS folds train on 20 actors."""

EIGHTH_ROUND = {"refit": {**FIRST_ROUND["cosine"], "keep": "last", "refit": True}}
"""The eighth round (2026-12-01, a rule declared before it on validation evidence only): the recipe
refit, each fold trained on its 10 training and 2 validation actors for the 40 epochs of the
cosine schedule, keeping the last; the ``recipe`` profile's settings since then. Measured on the
test actors against ``cosine``'s runs (the recipe before), choosing nothing."""

BASELINE = {"full": {}}
"""The ``full`` profile unchanged (the 45.8 % baseline's settings), run again with more seeds on the
same folds: the recipe's lead is judged against the baseline's own spread over seeds."""

CANDIDATES = (
    FIRST_ROUND
    | SECOND_ROUND
    | THIRD_ROUND
    | FOURTH_ROUND
    | SIXTH_ROUND
    | LEARNING_CURVE
    | EIGHTH_ROUND
    | BASELINE
)
"""Every candidate by name; ``compare`` runs any of them."""

CHOSEN = "cosine"
"""The candidate with the best validation UA in ``select`` (seed 0): what ``recipe`` was until the
eighth round refit it (``refit``; ``compare --candidates refit`` measures that one)."""


def per_speaker_ua(run_dir: Path, labels: list[str]) -> dict[str, float]:
    """UA of each test speaker, from the run's ``predictions/source_test.csv``."""
    table = pd.read_csv(run_dir / "predictions" / "source_test.csv", dtype=str)
    index = {name: i for i, name in enumerate(labels)}
    return {
        speaker: classification_report(
            part["label"].map(index).to_numpy(), part["pred"].map(index).to_numpy(), labels=labels
        )["ua"]
        for speaker, part in table.groupby("speaker")
    }


def select(args) -> list[str]:
    """Train each candidate on EmoBox fold_2; print validation UA (the choice) and test UA."""
    lines = [
        "| candidate | seed | validation UA | test UA | epoch kept / run |",
        "|---|---|---|---|---|",
    ]
    for name, options in FIRST_ROUND.items():
        for seed in args.seeds:
            out = serlib_home() / "study" / "recipe" / "select" / name / f"seed{seed}"
            run_emobox_folds(
                f"ravdess:{args.ravdess}", out, profile="full", seed=seed, resume=True,
                available_folds=True, progress=False, **options,
            )  # fmt: skip
            metrics = json.loads((out / "fold_2" / "metrics.json").read_text())
            chosen = metrics["selection"]
            lines.append(
                f"| {name} | {seed} | {100 * metrics['source_val']['ua']:.1f} | "
                f"{100 * metrics['source_test']['ua']:.1f} | {chosen['best_epoch']} / "
                f"{chosen['epochs_run']} |"
            )
    return lines


def evaluate(args) -> list[str]:
    """The recipe on EmoBox's complete folds and on 4-fold cross-validation, per seed."""
    lines = []
    for protocol in ("emobox", "4-fold"):
        lines += [
            f"\n### {protocol}\n",
            "| seed | UA per fold | mean +- std | UA per test actor |",
            "|---|---|---|---|",
        ]
        means = []
        for seed in args.seeds:
            if protocol == "emobox":  # the chosen candidate's select runs, more seeds
                out = serlib_home() / "study" / "recipe" / "select" / CHOSEN / f"seed{seed}"
                summary = run_emobox_folds(
                    f"ravdess:{args.ravdess}", out, profile="full", seed=seed, resume=True,
                    available_folds=True, progress=False, **CANDIDATES[CHOSEN],
                )  # fmt: skip
            else:
                out = serlib_home() / "study" / "recipe" / "4-fold" / f"seed{seed}"
                summary = cross_validate(
                    f"ravdess:{args.ravdess}", out, scheme="native", n_folds=4, profile="full",
                    seed=seed, resume=True, progress=False, **CANDIDATES[CHOSEN],
                )  # fmt: skip
            folds = {name: scores["ua"] for name, scores in summary["folds"].items()}
            labels = summary["labels"]
            speakers = {}
            for name in folds:
                speakers |= per_speaker_ua(out / name, labels)
            uas = np.array(list(folds.values()))
            means.append(uas.mean())
            spread = f" +- {100 * uas.std(ddof=1):.1f}" if len(uas) > 1 else ""
            lines.append(
                f"| {seed} | {', '.join(f'{n} {100 * u:.1f}' for n, u in folds.items())} | "
                f"{100 * uas.mean():.1f}{spread} | "
                f"{', '.join(f'{s} {100 * u:.0f}' for s, u in sorted(speakers.items()))} |"
            )
        if len(means) > 1:
            lines.append(
                f"| all seeds | | {100 * np.mean(means):.1f} +- {100 * np.std(means, ddof=1):.1f} "
                "(over seeds) | |"
            )
    return lines


def four_fold_dir(name: str, seed: int) -> Path:
    """Where a candidate's 4-fold runs live (the chosen one's are ``evaluate``'s own)."""
    if name == CHOSEN:
        return serlib_home() / "study" / "recipe" / "4-fold" / f"seed{seed}"
    return serlib_home() / "study" / "recipe" / "compare" / name / f"seed{seed}"


def last_epoch_ua(run_dir: Path, ravdess: str) -> float:
    """Test UA of the weights after the run's last epoch (the run itself keeps the best epoch's)."""
    run = load_run(run_dir)
    run.model.load_state_dict(load_checkpoint(run_dir / "checkpoint").weights)
    return evaluate_run(run, f"ravdess:{ravdess}", split="test")["ua"]


def mean_percent(values: list[float]) -> str:
    """A mean in percent, or "-" for none (a refit run's validation UA)."""
    return f"{100 * np.mean(values):.1f}" if values else "-"


def compare(args) -> list[str]:
    """Candidates on serlib's 4 folds, compared by the validation UA of all four folds.

    Each fold chooses its epoch on two of its training actors; the mean over the folds rests on
    eight validation actors instead of ``select``'s two. Test UA, of the kept epoch and of the
    last one, is printed beside it and chooses nothing.
    """
    lines = [
        "| candidate | seed | validation UA per fold | mean validation UA | mean validation UA "
        "(last epoch) | test UA (kept epoch) | test UA (last epoch) | epochs kept / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in args.candidates:
        for seed in args.seeds:
            out = four_fold_dir(name, seed)
            summary = cross_validate(
                f"ravdess:{args.ravdess}", out, scheme="native", n_folds=4, profile="full",
                seed=seed, resume=True, progress=False, **CANDIDATES[name],
            )  # fmt: skip
            metrics = {
                fold: json.loads((out / fold / "metrics.json").read_text())
                for fold in summary["folds"]
            }
            # a refit run has no validation speakers: its validation columns read "-"
            val = [m["source_val"]["ua"] for m in metrics.values() if "source_val" in m]
            val_last = [
                history["val_ua"].iloc[-1]
                for history in (pd.read_csv(out / fold / "history.csv") for fold in metrics)
                if "val_ua" in history
            ]
            test = [scores["ua"] for scores in summary["folds"].values()]
            last = [last_epoch_ua(out / fold, args.ravdess) for fold in summary["folds"]]
            kept = ", ".join(
                f"{m['selection']['best_epoch']}/{m['selection']['epochs_run']}"
                for m in metrics.values()
            )
            lines.append(
                f"| {name} | {seed} | {', '.join(f'{100 * u:.1f}' for u in val) or '-'} | "
                f"{mean_percent(val)} | {mean_percent(val_last)} | "
                f"{100 * np.mean(test):.1f} "
                f"({', '.join(f'{100 * u:.1f}' for u in test)}) | {100 * np.mean(last):.1f} "
                f"({', '.join(f'{100 * u:.1f}' for u in last)}) | {kept} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["select", "evaluate", "compare"])
    parser.add_argument("--ravdess", required=True, help="RAVDESS folder (Actor_NN/...)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--candidates", nargs="+", choices=list(CANDIDATES), default=[CHOSEN],
        help="compare: the candidates to run on serlib's 4 folds",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    steps = {"select": select, "evaluate": evaluate, "compare": compare}
    lines = steps[args.step](args)
    print("\n".join(lines))
    print(f"\n{time.perf_counter() - started:.0f} s (finished runs are only read back)")


if __name__ == "__main__":
    main()
