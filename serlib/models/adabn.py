"""AdaBN (Li et al. 2016): batch-norm statistics re-estimated on unlabelled target audio.

A CRNN's batch-norm layers remember the mean and variance of the *source* features they saw in
training, and standardise every test clip with them. Target clips arrive shifted (quieter, brighter,
another room), so their features are standardised wrongly. Re-estimating those statistics on the
target's own unlabelled audio, with no weight changed and no label read, removes part of the shift:
on the synthetic corpora it recovered half of the gap to a target-trained oracle at no cost on the
source (``benchmarks/RESULTS_dann_variants.md``). It is also the control that DANN must beat: DANN
sends target batches through the same batch norm.

The source statistics stay in the model; the target ones are kept beside them as a small state
dict (layer name -> running mean / var / count) and swapped in only while target clips are scored.

A DANN can go one step further (domain-specific batch norm, after Chang et al. 2019, with shared
scale and shift): in training each domain's half of a batch is normalised with its own statistics
(``SplitBatchNorm2d``), so the encoder learns on inputs normalised the way it will see them at test.
Models are built with plain ``nn.BatchNorm2d``; ``SplitBatchNorm2d.convert(model)`` swaps the split
kind in for the runs that ask for it (``build_model(..., split_batchnorm=True)``), the way
``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` swaps in synchronised batch norm.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from serlib.models.heads import encoder_inputs

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class SplitBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that can normalise the two domains of a DANN batch each with its own statistics.

    With ``split = n`` (set by ``split_domains``), a training batch ``[source n; target rest]`` is
    normalised half by half: the source rows with their batch statistics, which also update the
    running (source) statistics; the target rows with theirs, which update nothing (AdaBN estimates
    the target's after training). Without ``split`` it is exactly ``nn.BatchNorm2d``, and its state
    dict is the same, so runs saved before it existed load unchanged.
    """

    split: int | None = None

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with every ``nn.BatchNorm2d`` in it replaced by a ``SplitBatchNorm2d``.

        The new layers take over the old ones' weights and statistics (the same tensors, so their
        devices and any optimizer holding them stay valid), their settings and their train/eval
        mode; each keeps its place and name, so the state dict's keys do not change.
        """
        if isinstance(module, nn.BatchNorm2d) and not isinstance(module, cls):
            split = cls(
                module.num_features,
                eps=module.eps,
                momentum=module.momentum,
                affine=module.affine,
                track_running_stats=module.track_running_stats,
            )
            for name in ("weight", "bias", *BUFFERS):
                setattr(split, name, getattr(module, name))
            return split.train(module.training)
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert(child))
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.split):
            return super().forward(x)
        source = super().forward(x[: self.split])
        target = nn.functional.batch_norm(
            x[self.split :], None, None, self.weight, self.bias, training=True, eps=self.eps
        )
        return torch.cat([source, target])


@contextmanager
def split_domains(model: nn.Module, n_source: int | None) -> Iterator[None]:
    """Inside the block, ``SplitBatchNorm2d`` layers treat the first ``n_source`` rows as source."""
    if n_source is None:  # nothing to split: no walk over the modules on every training step
        yield
        return
    layers = [m for m in model.modules() if isinstance(m, SplitBatchNorm2d)]
    if not layers:
        raise ValueError(
            "the model has no SplitBatchNorm2d layers to split by domain; build it with "
            "build_model(..., split_batchnorm=True) or convert it with SplitBatchNorm2d.convert"
        )
    for layer in layers:
        layer.split = n_source
    try:
        yield
    finally:
        for layer in layers:
            layer.split = None


def batchnorm_layers(model: nn.Module) -> dict[str, _BatchNorm]:
    """Every batch-norm layer of ``model`` by its module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _BatchNorm)}


def batchnorm_statistics(model: nn.Module) -> dict[str, torch.Tensor]:
    """The running statistics of every batch-norm layer, as ``"<layer>.<buffer>"`` -> tensor."""
    return {
        f"{name}.{buffer}": getattr(layer, buffer).detach().clone()
        for name, layer in batchnorm_layers(model).items()
        for buffer in BUFFERS
    }


def load_batchnorm_statistics(model: nn.Module, statistics: dict[str, torch.Tensor]) -> None:
    """Copy statistics from ``batchnorm_statistics`` (of a model of the same shape) into ``model``."""
    layers = batchnorm_layers(model)
    expected = {f"{name}.{buffer}" for name in layers for buffer in BUFFERS}
    if set(statistics) != expected:
        raise ValueError("the batch-norm statistics do not match this model's batch-norm layers")
    for key, value in statistics.items():
        name, buffer = key.rsplit(".", 1)
        getattr(layers[name], buffer).copy_(value)


@torch.no_grad()
def estimate_batchnorm_statistics(
    model: nn.Module, batches: Iterable[dict], input_keys: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Batch-norm statistics of ``batches`` (exact averages over them), the model left as it was.

    Only the batch-norm layers run in training mode, with ``momentum=None`` (a cumulative average,
    not an exponential one, so every batch counts the same); weights are never touched.
    """
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("the model has no batch-norm layers to adapt")
    kept = batchnorm_statistics(model)
    was_training = model.training
    momenta = {name: layer.momentum for name, layer in layers.items()}
    device = next(model.parameters()).device
    model.eval()
    for layer in layers.values():
        layer.reset_running_stats()
        layer.momentum = None
        layer.train()
    seen = 0
    try:
        for batch in batches:
            model(*(tensor.to(device) for tensor in encoder_inputs(batch, input_keys)))
            seen += 1
        if seen == 0:
            raise ValueError("no batches to estimate batch-norm statistics from")
        estimated = batchnorm_statistics(model)
    finally:
        load_batchnorm_statistics(model, kept)
        for name, layer in layers.items():
            layer.momentum = momenta[name]
        model.train(was_training)
    return estimated


@contextmanager
def using_batchnorm_statistics(
    model: nn.Module, statistics: dict[str, torch.Tensor] | None
) -> Iterator[nn.Module]:
    """Score with other batch-norm statistics inside the block; the model's own come back after.

    ``None`` leaves the model as it is (runs without target statistics).
    """
    if statistics is None:
        yield model
        return
    kept = batchnorm_statistics(model)
    load_batchnorm_statistics(model, statistics)
    try:
        yield model
    finally:
        load_batchnorm_statistics(model, kept)
