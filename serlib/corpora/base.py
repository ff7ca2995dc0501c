"""What every corpus loader returns, and the file walking they share.

A loader turns a folder into one table of utterances (one row per audio file) plus the list of files it
could not use, each with a reason. Loaders read names, label files and each file's first bytes, never
the audio itself, so scanning a 10,000-file corpus takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serlib.audio import AUDIO_SUFFIXES, sniff_problem

BASE_COLUMNS = ["path", "corpus", "speaker", "gender", "group", "emotion"]
"""Columns every corpus table has; loaders add what their corpus knows (intensity, session, ...)."""

OTHER_AUDIO_SUFFIXES = (".mp3", ".ogg", ".m4a", ".aac", ".aif", ".aiff", ".opus", ".wma", ".mp4")
"""Files that look like recordings but that serlib does not read: reported, never silently ignored."""


class CorpusError(ValueError):
    """A corpus folder cannot be scanned at all (missing, empty, wrong layout)."""


@dataclass(frozen=True)
class Skip:
    """A file left out of a corpus table, and why."""

    path: str
    reason: str


@dataclass
class CorpusScan:
    """A corpus as a table of utterances, plus every file that was left out and why."""

    corpus: str
    root: str
    table: pd.DataFrame
    skipped: list[Skip] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.table)


def check_root(root: str | Path) -> Path:
    """Resolve ``root`` and fail with a one-line message if it is not a folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus folder not found: {path}")
    if not path.is_dir():
        raise CorpusError(f"corpus root is not a folder: {path}")
    return path.resolve()


def walk_files(root: Path, skipped: list[Skip] | None = None) -> Iterator[Path]:
    """Every file under ``root`` in a stable (sorted) order.

    Symlinked folders are followed (corpora are often linked in from a data disk), each real folder
    once; hidden folders are not entered; an unreadable folder is reported in ``skipped``.
    """
    visited: set[str] = set()

    def report(error: OSError) -> None:
        if skipped is not None:
            skipped.append(Skip(str(error.filename), f"cannot read folder ({error.strerror})"))

    for folder, subfolders, files in os.walk(root, onerror=report, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link loop or a second link to the same folder
            subfolders[:] = []
            continue
        visited.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            yield Path(folder) / name


def audio_candidates(root: Path, skipped: list[Skip]) -> Iterator[Path]:
    """The usable-looking audio files under ``root``; the rest of the recordings go to ``skipped``.

    Recognised audio with a bad header (empty, git-lfs pointer, not really WAV/FLAC), macOS ``._``
    resource forks and recordings in formats serlib does not read are reported with a reason. Files
    that are not recordings at all (README, CSV, label files) are not part of any corpus table and are
    passed over.
    """
    for path in walk_files(root, skipped):
        suffix = path.suffix.lower()
        if path.name.startswith("._"):
            if suffix in AUDIO_SUFFIXES:
                skipped.append(Skip(str(path), "macOS resource-fork file (._*), not audio"))
            continue
        if suffix in OTHER_AUDIO_SUFFIXES:
            skipped.append(Skip(str(path), f"unsupported format {suffix} (use .wav or .flac)"))
            continue
        if suffix not in AUDIO_SUFFIXES:
            continue
        problem = sniff_problem(path)
        if problem:
            skipped.append(Skip(str(path), problem))
            continue
        yield path


def make_table(rows: list[dict], extra_columns: list[str]) -> pd.DataFrame:
    """Build a corpus table with the base columns first, even when ``rows`` is empty."""
    columns = BASE_COLUMNS + [c for c in extra_columns if c not in BASE_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("path", kind="stable").reset_index(drop=True)
