"""Why a resumed run repeats itself exactly: every epoch is a pure function of (seed, epoch).

Nothing random in an epoch depends on what ran before it:

- the process-wide generators (Python, numpy, torch: dropout masks, SpecAugment's masks) are seeded
  at the start of epoch ``e`` with ``global_seed(seed, e)``;
- each loader pass draws its order and random crops from its own generator, seeded with
  ``epoch_seed`` (below) from the pass number that ``set_loader_epoch`` gives it;
- a DANN's target loader restarts whenever it runs out (``target_batches``), and each restart is a
  pass with its own number, so its order is fixed too.

So a run resumed at epoch ``e`` sees exactly the batches, crops and masks it would have seen, and no
random-generator state needs to be saved in a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

TARGET_PASSES_PER_EPOCH = 100_000
"""Target pass k of epoch e is numbered e * 100000 + k, so each pass gets its own fixed order."""


def global_seed(seed: int, epoch: int) -> int:
    """The seed of the process-wide generators at the start of ``epoch`` (< 2**31, any library)."""
    return (seed * 1_000_003 + epoch * 7919) % (2**31 - 1)


def set_loader_epoch(loader: Iterable, epoch: int) -> None:
    """Point a loader's sampler (order) and dataset (random crops) at ``epoch`` before a pass.

    Accelerate's prepared loaders re-apply their own pass counter to the sampler at the start of
    every pass; ``set_epoch`` sets that counter too, so the order stays a function of the epoch.
    """
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)
    if hasattr(getattr(loader, "dataset", None), "set_epoch"):
        loader.dataset.set_epoch(epoch)


def target_batches(loader: Iterable, epoch: int) -> Iterator:
    """Endless target batches for one epoch: the loader starts over when it runs out.

    Each pass has its own number (``TARGET_PASSES_PER_EPOCH``), hence its own seeded order and crops.
    """
    for k in range(TARGET_PASSES_PER_EPOCH):
        set_loader_epoch(loader, epoch * TARGET_PASSES_PER_EPOCH + k)
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the target loader yields no batches")
    raise RuntimeError("the target loader was restarted too often within one epoch")


def epoch_seed(seed: int, epoch: int, cycle: int = 0, stream: int = 0) -> int:
    """A 63-bit seed that depends only on its arguments (mixes them with numpy's SeedSequence)."""
    state = np.random.SeedSequence([seed, epoch, cycle, stream]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))
