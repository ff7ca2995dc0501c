"""Scoring a trained run: every labelled set once, its predictions file, the proxy A-distance.

``evaluate_sets`` is the last step of ``serlib.runs.train_run``. It runs each clip through the
model once: the validation speakers' predictions come from the epoch training kept (the same
weights and batches), and the target test speakers, a part of all target speakers, are read from
the predictions on all of them. ``metrics.json`` gets one entry per set (its protocol in words,
its speakers, UA, WA, macro-F1, confusion...), ``predictions/<set>.csv`` one row per clip and
``embeddings/<set>.npy`` that clip's utterance embedding, so pictures of the embedding space need
not run the model again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from serlib.checkpoints import atomic_path, write_text_atomic
from serlib.config import TrainConfig
from serlib.inputs import Prepared
from serlib.metrics import proxy_a_distance
from serlib.models.adabn import using_batchnorm_statistics
from serlib.predict import Predictions, predict
from serlib.protocol import Protocol, speakers_of

EVALUATED_SETS = ("source_val", "source_test", "target_test", "target_all")
"""The labelled sets a run is scored on, when its protocol has them."""


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
    source_val: Predictions | None = None,
) -> dict:
    """Scores and predictions on every labelled set; the proxy A-distance source vs target test.

    ``target_batchnorm``: batch-norm statistics to score the target sets with (AdaBN runs).
    ``source_val``: the kept epoch's validation predictions from training (the same weights, the
    same batches), so the validation speakers are not run through the model a second time.
    The target test speakers are a part of all target speakers: their predictions are read from
    those of ``target_all`` (``sets_inside``), each target clip is run through the model once.
    """
    found: dict[str, Predictions] = {} if source_val is None else {"source_val": source_val}
    inside = sets_inside(prepared.tables)
    for name in EVALUATED_SETS:
        if name not in prepared.datasets or name in found or name in inside:
            continue
        # prepared: each process scores its shard; predict gathers them, each clip counted once
        loader = accelerator.prepare(
            prepared.inputs.loader(prepared.datasets[name], config.batch_size, shuffle=False)
        )
        statistics = target_batchnorm if name.startswith("target_") else None
        with using_batchnorm_statistics(accelerator.unwrap_model(model), statistics):
            found[name] = predict(model, loader, accelerator, embeddings=True)
    for name, (whole, positions) in inside.items():
        found[name] = found[whole].rows(positions)
    metrics: dict = {}
    for name in EVALUATED_SETS:
        if name not in found:
            continue
        metrics[name] = {
            "protocol": protocol.descriptions[name],
            "speakers": speakers_of(prepared.tables[name]),
            **found[name].report(labels),
        }
        if accelerator.is_main_process:
            table = predictions_table(prepared.tables[name], found[name], labels)
            write_text_atomic(run_dir / "predictions" / f"{name}.csv", table.to_csv(index=False))
            if found[name].embedding is not None:
                save_embeddings(run_dir, name, found[name].embedding)
    embedded = {name: p.embedding for name, p in found.items() if p.embedding is not None}
    if "source_test" in embedded and "target_test" in embedded:
        metrics["proxy_a_distance"] = {
            "value": proxy_a_distance(embedded["source_test"], embedded["target_test"]),
            "between": "embeddings of source_test and target_test (0 = indistinguishable, 2 = "
            "separable)",
        }
    return metrics


def embeddings_path(run_dir: str | Path, set_name: str) -> Path:
    """``embeddings/<set>.npy``: the utterance embedding [N, D] of each row of the set's
    predictions file, in the same order (what the notebooks' t-SNE pictures are drawn from)."""
    return Path(run_dir) / "embeddings" / f"{set_name}.npy"


def save_embeddings(run_dir: Path, set_name: str, embedding: np.ndarray) -> None:
    """Write a set's embeddings beside its predictions, atomically, as float32."""
    with atomic_path(embeddings_path(run_dir, set_name)) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, np.asarray(embedding, dtype=np.float32))


def sets_inside(tables: Mapping[str, pd.DataFrame]) -> dict[str, tuple[str, np.ndarray]]:
    """Sets whose every clip is also in a bigger evaluated set: name -> (that set, their rows in it).

    Today that is ``target_test`` inside ``target_all`` (every protocol with a target has both).
    Clips are matched by path; a set with a clip the bigger one lacks is scored on its own.
    """
    inside = {}
    if "target_test" in tables and "target_all" in tables:
        rows = pd.Index(tables["target_all"]["path"])
        if rows.is_unique:
            positions = rows.get_indexer(tables["target_test"]["path"])
            if (positions >= 0).all():
                inside["target_test"] = ("target_all", positions)
    return inside
