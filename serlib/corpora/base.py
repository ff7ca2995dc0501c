"""What every corpus loader returns, and the one scan they share.

A loader turns a folder into one table of utterances (one row per utterance) plus the files it could
not use, each with a reason. The walk, the header checks, the skips and the duplicates are the same for
every corpus and live here (``scan_names``, ``parse_folder``, ``finish_scan``); a loader supplies only
what is its own: how a file name (or a label file) gives a row, and which key names an utterance.

Loaders read names, label files and each file's first bytes, never the audio itself, so scanning a
10,000-file corpus takes about a second. ``check_clips`` is the optional pass that decodes every clip.

Duplicates: one utterance found in several files (a ``.wav`` and its ``.flac``, two unpacked copies of
a corpus under one root, SAVEE's ``AudioData/`` beside its ``ALL/``) is one row. The copy kept is
chosen by ``copy_preference``: a ``.wav`` before other formats, then the copy with the fewest folders
between it and the root, then the first path in sorted order. Every other copy is listed in
``CorpusScan.duplicates`` beside the kept one. A recording in a format serlib does not read (CREMA-D's
``AudioMP3/``) whose utterance is already in the table is an *alternative encoding*: listed in
``CorpusScan.alternatives``, not reported as a problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from serlib.audio import AUDIO_SUFFIXES, clip_problem, sniff_problem
from serlib.errors import UserError

BASE_COLUMNS = ["path", "corpus", "speaker", "gender", "group", "emotion"]
"""Columns every corpus table has; loaders add what their corpus knows (intensity, session, ...)."""

OTHER_AUDIO_SUFFIXES = (".mp3", ".ogg", ".m4a", ".aac", ".aif", ".aiff", ".opus", ".wma", ".mp4")
"""Files that look like recordings but that serlib does not read: reported, never silently ignored."""

ParseFn = Callable[[Path], "dict | str"]
"""A loader's reading of one file: its table row, or the reason the file cannot be used."""

KeyFn = Callable[[dict], str]
"""A loader's name for the utterance a row holds: two files with the same key are one utterance."""


class CorpusError(UserError):
    """A corpus folder cannot be scanned at all (missing, empty, wrong layout, nothing usable)."""


@dataclass(frozen=True)
class Skip:
    """A file left out of a corpus table, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """A second copy of an utterance: ``kept`` is in the table, ``duplicate`` is not."""

    kept: str
    duplicate: str


@dataclass
class CorpusScan:
    """A corpus as a table of utterances, plus every file that was left out and why."""

    corpus: str
    root: str
    table: pd.DataFrame
    skipped: list[Skip] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    alternatives: list[Duplicate] = field(default_factory=list)
    """Recordings in a format serlib does not read, of utterances the table already has."""

    def __len__(self) -> int:
        return len(self.table)


@dataclass
class Parsed:
    """What walking a folder found: rows of usable clips, and recordings in other formats."""

    rows: list[dict] = field(default_factory=list)
    other_formats: list[tuple[Path, dict | str]] = field(default_factory=list)
    """(path, row or reason) of each recording in a format serlib does not read."""
    seen: set[str] = field(default_factory=set)
    """The stems of every recording looked at, used or not (IEMOCAP checks its labels against it)."""


def check_root(root: str | Path) -> Path:
    """Resolve ``root`` and fail with a one-line message if it is not a folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus folder not found: {path} (check --root)")
    if not path.is_dir():
        raise CorpusError(f"corpus root is not a folder: {path} (give the folder that holds it)")
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
            yield Path(os.path.join(folder, name))  # one Path per file, not two


def parse_folder(folder: Path, parse: ParseFn, skipped: list[Skip]) -> Parsed:
    """Read every recording under ``folder`` with ``parse``; the unusable ones go to ``skipped``.

    Recognised audio with a bad header (empty, git-lfs pointer, not really WAV/FLAC), macOS ``._``
    resource forks and names ``parse`` rejects are skipped with a reason. Recordings in formats serlib
    does not read are kept aside: ``finish_scan`` decides whether they are alternative encodings.
    Files that are not recordings at all (README, CSV, label files) are passed over.
    """
    found = Parsed()
    for path in walk_files(folder, skipped):
        suffix = path.suffix.lower()
        if path.name.startswith("._"):
            if suffix in AUDIO_SUFFIXES:
                skipped.append(Skip(str(path), "macOS resource-fork file (._*), not audio"))
            continue
        if suffix in OTHER_AUDIO_SUFFIXES:
            found.seen.add(path.stem)
            found.other_formats.append((path, parse(path)))
            continue
        if suffix not in AUDIO_SUFFIXES:
            continue
        found.seen.add(path.stem)
        row = sniff_problem(path) or parse(path)
        if isinstance(row, str):
            skipped.append(Skip(str(path), row))
        else:
            found.rows.append(row)
    return found


def copy_preference(path: str) -> tuple[bool, int, str]:
    """Sort key of the copies of one utterance: the smallest is kept (see the module docstring)."""
    return (not path.lower().endswith(".wav"), path.count(os.sep), path)


def drop_duplicates(rows: list[dict], key: KeyFn) -> tuple[list[dict], list[Duplicate]]:
    """One row per utterance key, the preferred copy; every other copy becomes a ``Duplicate``."""
    copies: dict[str, list[dict]] = {}
    for row in rows:
        copies.setdefault(key(row), []).append(row)
    kept, duplicates = [], []
    for group in copies.values():
        if len(group) > 1:
            group = sorted(group, key=lambda row: copy_preference(row["path"]))
            duplicates += [Duplicate(group[0]["path"], row["path"]) for row in group[1:]]
        kept.append(group[0])
    return kept, sorted(duplicates, key=lambda d: d.duplicate)


def make_table(rows: list[dict], extra_columns: list[str]) -> pd.DataFrame:
    """Build a corpus table with the base columns first, even when ``rows`` is empty."""
    columns = BASE_COLUMNS + [c for c in extra_columns if c not in BASE_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("path", kind="stable").reset_index(drop=True)


def finish_scan(
    name: str,
    root: Path,
    found: Parsed,
    skipped: list[Skip],
    key: KeyFn,
    extra_columns: list[str],
) -> CorpusScan:
    """Drop duplicate copies, sort out the other-format recordings, and build the scan."""
    rows, duplicates = drop_duplicates(found.rows, key)
    used = {key(row): row["path"] for row in rows}
    alternatives = []
    for path, row in found.other_formats:
        if isinstance(row, dict) and key(row) in used:
            alternatives.append(Duplicate(used[key(row)], str(path)))
        else:
            reason = f"unsupported format {path.suffix.lower()} (use .wav or .flac)"
            skipped.append(Skip(str(path), reason))
    table = make_table(rows, extra_columns)
    return CorpusScan(name, str(root), table, skipped, duplicates, alternatives)


def file_stem(row: dict) -> str:
    """The utterance key of corpora whose file name is the utterance's id (RAVDESS, EmoDB, CREMA-D)."""
    return os.path.splitext(os.path.basename(row["path"]))[0]  # Path(...).stem, 5x cheaper


def scan_names(
    name: str,
    root: Path,
    parse: ParseFn,
    extra_columns: list[str],
    key: KeyFn = file_stem,
) -> CorpusScan:
    """The whole scan of a corpus whose file names carry the labels: walk, parse, skip, deduplicate."""
    skipped: list[Skip] = []
    found = parse_folder(root, parse, skipped)
    return finish_scan(name, root, found, skipped, key, extra_columns)


def check_clips(scan: CorpusScan, progress: bool = True) -> CorpusScan:
    """Decode every clip of ``scan`` and move the unusable ones (silent, clipped, ...) to skipped.

    The reasons are ``serlib.audio.clip_problem``'s, the same that training and prediction give
    when they meet such a clip. Returns a new scan; ``scan`` is left as it was.
    """
    paths = scan.table["path"].tolist()
    bar = tqdm(paths, desc=f"checking {scan.corpus} audio", unit="clip", disable=not progress)
    problems = {path: problem for path in bar if (problem := clip_problem(path))}
    if not problems:
        return scan
    table = scan.table[~scan.table["path"].isin(list(problems))].reset_index(drop=True)
    skipped = scan.skipped + [Skip(path, reason) for path, reason in problems.items()]
    return replace(scan, table=table, skipped=skipped)
