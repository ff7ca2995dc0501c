"""Run a model over a loader and keep what it says: probabilities, labels, embeddings, the loss.

``predict(model, loader)`` puts the model in eval mode, runs every batch and returns
``Predictions``: one row per utterance in the order of its table (``index``), whatever order the
loader batched them in (evaluation loaders go longest clip first, to pad little). The training
loop calls it on the validation speakers after every epoch; evaluation, the notebooks' figures and
``serlib predict`` call it on a trained model. With a training run's ``accelerator`` it runs in that
run's precision and gathers the rows of every process.

Under ``accelerate launch`` with N processes the loader must be one that ``accelerator.prepare``
returned: each process then scores its own shard of the batches, Accelerate repeats a few clips to
give every process a last batch of the same size, and ``gather_for_metrics`` collects the shards in
the loader's order and drops those repeats, so every clip is counted exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.data_loader import DataLoaderStateMixin
from torch import nn
from tqdm.auto import tqdm

from serlib.hardware import reusing_freed_memory
from serlib.metrics import classification_report
from serlib.models.heads import encoder_inputs


@dataclass
class Predictions:
    """A model's outputs on a loader, one row per utterance, in the order of its ``index``."""

    index: np.ndarray  # the batch's "index": the row of the utterance in its table
    label: np.ndarray  # true class, or -1 where there is none
    probabilities: np.ndarray  # [N, C]
    embedding: np.ndarray | None = None  # [N, D] when asked for
    loss: float = float("nan")  # mean cross-entropy where labels exist

    @property
    def pred(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def report(self, labels: list[str]) -> dict:
        """UA, WA, macro-F1, confusion... over the utterances that have a label."""
        known = self.label >= 0
        return classification_report(self.label[known], self.pred[known], labels=labels)

    def rows(self, positions: np.ndarray) -> Predictions:
        """The predictions of some utterances, re-indexed 0..n-1 in the order of ``positions``.

        A set scored inside a bigger one (the target test speakers inside all target speakers)
        is read from the bigger set's predictions instead of being run through the model again.
        """
        positions = np.asarray(positions, dtype=np.int64)
        label = self.label[positions]
        probabilities = self.probabilities[positions]
        return Predictions(
            index=np.arange(len(positions), dtype=np.int64),
            label=label,
            probabilities=probabilities,
            embedding=self.embedding[positions] if self.embedding is not None else None,
            loss=mean_cross_entropy(probabilities, label),
        )


def mean_cross_entropy(probabilities: np.ndarray, label: np.ndarray) -> float:
    """The mean cross-entropy over the rows that have a label (-1: none); NaN when none has."""
    labelled = label >= 0
    if not labelled.any():
        return float("nan")
    chosen = probabilities[labelled, label[labelled]]
    return float(-np.log(np.clip(chosen, 1e-12, None)).mean())


def check_sharded(loader: Iterable, accelerator: Accelerator) -> None:
    """Refuse an unprepared loader in a multi-process run: every process would score every clip,
    and the gather would count each clip once per process."""
    if accelerator.num_processes > 1 and not isinstance(loader, DataLoaderStateMixin):
        raise ValueError(
            f"with {accelerator.num_processes} processes, predict needs a loader returned by "
            "accelerator.prepare (each process scores its own shard)"
        )


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    accelerator: Accelerator | None = None,
    *,
    embeddings: bool = False,
    progress: bool = False,
) -> Predictions:
    """Run a model over a loader in eval mode; the rows come back sorted by ``index``.

    With the ``accelerator`` of a training run it uses that run's precision and gathers the
    outputs of every process; without one it simply runs on the model's own device. On a CPU the
    freed activation memory is reused from batch to batch (``reusing_freed_memory``).
    """
    if accelerator is not None:
        check_sharded(loader, accelerator)
    core = accelerator.unwrap_model(model) if accelerator is not None else model
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"index": [], "label": [], "probabilities": []}
    if embeddings:
        parts["embedding"] = []
    with reusing_freed_memory(device):
        for batch in tqdm(loader, desc="predict", leave=False, disable=not progress):
            for key, value in predict_batch(model, core, batch, device, accelerator, embeddings):
                parts[key].append(value)
    model.train(was_training)
    if not parts["index"]:
        raise ValueError("cannot predict on an empty loader")
    arrays = {key: torch.cat(values).numpy() for key, values in parts.items()}
    order = np.argsort(arrays["index"], kind="stable")  # the table's order, not the batches'
    arrays = {key: value[order] for key, value in arrays.items()}
    label = arrays["label"].astype(np.int64)
    return Predictions(
        index=arrays["index"].astype(np.int64),
        label=label,
        probabilities=arrays["probabilities"],
        embedding=arrays.get("embedding"),
        loss=mean_cross_entropy(arrays["probabilities"], label),
    )


def predict_batch(
    model: nn.Module,
    core: nn.Module,
    batch: dict,
    device: torch.device,
    accelerator: Accelerator | None,
    embeddings: bool,
) -> Iterable[tuple[str, torch.Tensor]]:
    """One batch's outputs (gathered from every process under an accelerator), on the CPU."""
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    inputs = encoder_inputs(batch, core.input_keys)
    if accelerator is not None:
        with accelerator.autocast():
            outputs = model(*inputs)
    else:
        outputs = model(*inputs)
    logits = outputs["logits"].float()
    size = logits.shape[0]
    found = {
        "index": batch.get("index", torch.full((size,), -1, device=device)),
        "label": batch.get("label", torch.full((size,), -1, device=device)),
        "probabilities": logits.softmax(dim=1),
    }
    if embeddings:
        found["embedding"] = outputs["embedding"].float()
    if accelerator is not None:
        found = accelerator.gather_for_metrics(found)
    return [(key, value.cpu()) for key, value in found.items()]
