"""Saving and loading weights and training state, safely.

Two promises, both about surviving a crash or a kill at any moment:

- **No half-written file.** Every file is written to a temporary name in the same folder, flushed to
  disk, and renamed over the real name with ``os.replace`` (atomic on POSIX and Windows). A reader
  sees the old file or the new one, never a mix.
- **No unpickling of arbitrary objects.** Weights go to safetensors (a flat table of tensors).
  Optimizer, scheduler and loop state go through ``torch.save`` but hold only tensors, numbers,
  strings, lists and dicts, and are read back with ``torch.load(weights_only=True)``, which refuses
  anything else.

A training checkpoint is a set of files named by epoch (``epoch-0007.safetensors``,
``epoch-0007.state.pt`` and the best weights so far, ``best-0005.safetensors``) plus ``latest.json``
naming them. ``latest.json`` is replaced only after all of them are on disk, so a kill between any two
writes leaves the previous complete checkpoint in charge.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LATEST = "latest.json"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, move it onto ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: object) -> None:
    """Write pretty JSON atomically (NaN is refused: it is not JSON)."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], metadata=None) -> None:
    """Save a model's state dict to safetensors, atomically (tensors are made contiguous first)."""
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in state_dict.items()}
    with atomic_path(path) as temporary:
        save_file(
            tensors, str(temporary), metadata={k: str(v) for k, v in (metadata or {}).items()}
        )


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file into a state dict (no pickle involved)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    device = torch.device(device)
    # a multi-process CPU run's device is "cpu:0", which safetensors refuses; all CPUs are "cpu"
    return load_file(str(path), device="cpu" if device.type == "cpu" else str(device))


def save_state(path: str | Path, state: dict) -> None:
    """``torch.save`` a dict of plain values and tensors, atomically."""
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_state(path: str | Path) -> dict:
    """Read a state written by ``save_state``; refuses anything but tensors and plain values."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def checkpoint_names(epoch: int) -> tuple[str, str]:
    """The weight and state file names of the checkpoint after ``epoch`` (0-based)."""
    stem = f"epoch-{epoch:04d}"
    return f"{stem}.safetensors", f"{stem}.state.pt"


def best_name(epoch: int) -> str:
    """The file name of the best weights, chosen at ``epoch``, kept beside the checkpoint."""
    return f"best-{epoch:04d}.safetensors"


def save_checkpoint(
    folder: str | Path,
    epoch: int,
    weights: dict[str, torch.Tensor],
    state: dict,
    best_epoch: int,
) -> None:
    """Write the checkpoint after ``epoch``, point ``latest.json`` at it, delete older files.

    The best weights so far are part of the checkpoint (written when ``best_epoch == epoch``), so
    a resumed run restores the best model that belongs to its own history.
    """
    folder = Path(folder)
    weights_name, state_name = checkpoint_names(epoch)
    best = best_name(best_epoch)
    save_weights(folder / weights_name, weights, metadata={"epoch": epoch})
    if best_epoch == epoch or not (folder / best).is_file():
        save_weights(folder / best, weights, metadata={"epoch": epoch})
    save_state(folder / state_name, state)
    latest = {"epoch": epoch, "weights": weights_name, "state": state_name, "best": best}
    write_json_atomic(folder / LATEST, latest)
    for old in [*folder.glob("epoch-*"), *folder.glob("best-*")]:
        if old.name not in (weights_name, state_name, best):
            old.unlink(missing_ok=True)


@dataclass
class Checkpoint:
    """A complete checkpoint read back: the last epoch's weights and state, and the best weights."""

    weights: dict[str, torch.Tensor]
    state: dict
    best_weights: dict[str, torch.Tensor]


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> Checkpoint | None:
    """The last complete checkpoint in ``folder``, or None when there is none yet."""
    folder = Path(folder)
    if not (folder / LATEST).is_file():
        return None
    latest = json.loads((folder / LATEST).read_text(encoding="utf-8"))
    return Checkpoint(
        weights=load_weights(folder / latest["weights"], device),
        state=load_state(folder / latest["state"]),
        best_weights=load_weights(folder / latest["best"], device),
    )


def remove_temporaries(folder: str | Path) -> int:
    """Delete the temporaries (``.NAME.*.tmp``) a killed writer left in ``folder``; count them."""
    leftovers = list(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return len(leftovers)
