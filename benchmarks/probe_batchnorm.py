"""What batch-norm statistics do to finished runs: re-estimate them per domain and score again.

Why: a DANN run with its domain loss switched off (``run_study.py --controls``) still recovers half
of the synthetic gap, so the target batches that DANN sends through the encoder must help through
batch norm, not through the adversary. This probe tests that reading directly on saved runs, with no
training: it re-estimates the CRNN's batch-norm statistics (``serlib.models.adabn``: exact averages over
one pass of training-style crops, no gradient, no label) on

- the target *adaptation* speakers, then scores the target *test* speakers (AdaBN, Li et al. 2016);
- the source *training* speakers, then scores the source test speakers,

and prints them beside the scores saved in each run's metrics.json.

    .venv/bin/python benchmarks/probe_batchnorm.py $SERLIB_HOME/study/synthetic0_workshop/seed*/crnn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from serlib.inputs import MelInputs, log_mels
from serlib.models.adabn import estimate_batchnorm_statistics, load_batchnorm_statistics
from serlib.predict import predict
from serlib.protocol import CorpusRef, labelled_table
from serlib.runs import LoadedRun, load_run


def speakers_table(run: LoadedRun, corpus: str, speakers: list[str]) -> pd.DataFrame:
    """The run's labelled table of ``corpus`` ("source" or "target"), cut to ``speakers``."""
    table, _ = labelled_table(
        CorpusRef.from_dict(run.config[corpus]), run.config["scheme"], run.labels
    )
    return table[table["speaker"].isin(speakers)].reset_index(drop=True)


def reestimate_batchnorm(run: LoadedRun, table: pd.DataFrame, target: bool, seed: int) -> None:
    """Put the batch-norm statistics of ``table``'s training-style crops into the run's model."""
    _, arrays, _ = log_mels(table, run.inputs.frontend, progress=False)
    unlabelled = np.zeros(len(arrays), dtype=np.int64)  # the labels are never read
    dataset = run.inputs.dataset(arrays, unlabelled, train=True, seed=seed, target=target)
    batches = run.inputs.loader(dataset, int(run.config["train"]["batch_size"]), shuffle=True)
    statistics = estimate_batchnorm_statistics(run.model, batches, run.model.input_keys)
    load_batchnorm_statistics(run.model, statistics)


def score_ua(run: LoadedRun, table: pd.DataFrame, target: bool) -> float:
    dataset, _, _ = run.dataset(table, target=target)
    loader = run.inputs.loader(dataset, int(run.config["train"]["batch_size"]), shuffle=False)
    return predict(run.model, loader).report(run.labels)["ua"]


def probe(run_dir: Path, seed: int) -> str:
    run = load_run(run_dir)
    splits = run.config["splits"]
    if not run.config.get("target") or not isinstance(run.inputs, MelInputs):
        return f"{run_dir}: skipped (needs a log-mel run with a target corpus)"
    adapt = sorted(set(splits["target_all"]) - set(splits["target_test"]))
    saved = json.loads((run_dir / "metrics.json").read_text())
    target_test = speakers_table(run, "target", splits["target_test"])
    reestimate_batchnorm(run, speakers_table(run, "target", adapt), target=True, seed=seed)
    adabn = score_ua(run, target_test, target=True)
    run = load_run(run_dir)
    reestimate_batchnorm(
        run, speakers_table(run, "source", splits["source_train"]), target=False, seed=seed
    )
    source = score_ua(run, speakers_table(run, "source", splits["source_test"]), target=False)
    return (
        f"| {'/'.join(run_dir.parts[-3:])} | {100 * saved['source_test']['ua']:.1f} | "
        f"{100 * source:.1f} | {100 * saved['target_test']['ua']:.1f} | {100 * adabn:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders with a target")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training-style crops")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    print(
        "| run | source test UA, saved | with source-training BN statistics | "
        "target test UA, saved | with target-adaptation BN statistics (AdaBN) |"
    )
    print("|---|---|---|---|---|")
    for run_dir in args.runs:
        print(probe(run_dir, args.seed), flush=True)


if __name__ == "__main__":
    main()
