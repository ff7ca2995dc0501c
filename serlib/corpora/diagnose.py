"""Explaining a scan: its skips grouped by reason, and, when nothing was usable, why and where to look.

A corpus that yields no clip is almost always one of a few mistakes: a clone made without git-lfs, the
wrong ``--corpus`` for the folder, or a ``--root`` one level off (a Kaggle archive's doubled folder,
``AudioMP3/`` instead of ``AudioWAV/``). ``no_clip_error`` turns the scan into one line that says which,
with the counts of the commonest skip reasons, the corpus the file names look like, and a folder
nearby where usable clips are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from serlib.audio import AUDIO_SUFFIXES, sniff_problem
from serlib.corpora.base import CorpusError, CorpusScan, ParseFn, Skip

NEAR_LEVELS = 2
"""How far from ``--root`` to look, up and down: one or two levels covers a doubled archive folder,
a root one folder too deep, and a sibling folder (``AudioMP3/`` given, ``AudioWAV/`` meant)."""

MAX_FOLDERS = 2000
MAX_FILES = 5000
"""Bounds on the search, so that a root like ``/`` or a data disk costs seconds, not minutes."""

REASONS_IN_ERROR = 3
"""How many skip reasons (the commonest) the one-line error names."""

NAMES_TO_GUESS_FROM = 50
"""How many rejected file names are tried against the other corpora's name patterns."""


def skip_reasons(skipped: list[Skip]) -> list[tuple[str, list[str]]]:
    """(reason, paths) for each distinct reason, the commonest first (then alphabetical)."""
    groups: dict[str, list[str]] = {}
    for skip in skipped:
        groups.setdefault(skip.reason, []).append(skip.path)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def plural_files(count: int) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} file" if count == 1 else f"{count} files"


def subfolders(folder: Path) -> list[Path]:
    """The visible subfolders of ``folder``, sorted (none if it cannot be read)."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def folders_near(root: Path, levels: int = NEAR_LEVELS) -> Iterator[Path]:
    """The folders up to ``levels`` below ``root`` (nearest first), then its ancestors up to ``levels``."""
    level, count = [root], 0
    for _ in range(levels):
        level = [child for folder in level for child in subfolders(folder)]
        for folder in level:
            count += 1
            if count > MAX_FOLDERS:
                return
            yield folder
    yield from list(root.parents)[:levels]


def usable_clip(path: Path, parse: ParseFn) -> bool:
    """Whether ``path`` is a clip the corpus's loader would use (audio, named right, real header)."""
    if path.suffix.lower() not in AUDIO_SUFFIXES or path.name.startswith("._"):
        return False
    return isinstance(parse(path), dict) and sniff_problem(path) is None


def first_clip(folder: Path, parse: ParseFn, skip: Path | None = None) -> Path | None:
    """The first usable clip found walking ``folder`` (not entering ``skip``), within ``MAX_FILES``."""
    looked = 0
    for current, children, files in os.walk(folder):
        children[:] = sorted(
            c for c in children if not c.startswith(".") and Path(current, c) != skip
        )
        for name in sorted(files):
            looked += 1
            if looked > MAX_FILES:
                return None
            if usable_clip(Path(current, name), parse):
                return Path(current, name)
    return None


def clips_near(root: Path, parse: ParseFn, levels: int = NEAR_LEVELS) -> Path | None:
    """A folder beside or above ``root`` holding usable clips, to suggest as ``--root``.

    Below ``root`` needs no search: every loader walks all its subfolders. Up to ``levels`` above it,
    the ancestor's other subfolders are walked; the one holding a clip is suggested (or the ancestor
    itself when the clip lies directly in it).
    """
    below = root
    for ancestor in list(root.parents)[:levels]:
        clip = first_clip(ancestor, parse, skip=below)
        if clip is not None:
            inside = clip.relative_to(ancestor).parts
            return ancestor / inside[0] if len(inside) > 1 else ancestor
        below = ancestor
    return None


def guess_corpus(scan: CorpusScan, parsers: dict[str, ParseFn]) -> str | None:
    """The other corpus whose name pattern fits most of the misnamed audio files (half at least)."""
    own = parsers.get(scan.corpus)
    paths = [
        path
        for path in (Path(skip.path) for skip in scan.skipped)
        if path.suffix.lower() in AUDIO_SUFFIXES and (own is None or isinstance(own(path), str))
    ][:NAMES_TO_GUESS_FROM]
    if not paths:
        return None
    fits = {
        name: sum(isinstance(parse(path), dict) for path in paths)
        for name, parse in parsers.items()
        if name != scan.corpus
    }
    best = max(fits, key=lambda name: fits[name], default=None)
    return best if best is not None and 2 * fits[best] >= len(paths) else None


def no_clip_error(scan: CorpusScan, parsers: dict[str, ParseFn]) -> CorpusError:
    """The one-line error for a scan without a usable clip: the commonest reasons, and the fix.

    ``parsers`` are the name-based loaders' file-name readers, used to guess the corpus the names
    belong to and to find usable clips near the root.
    """
    groups = skip_reasons(scan.skipped)
    if groups:
        parts = [
            f"{plural_files(len(paths))}: {reason}" for reason, paths in groups[:REASONS_IN_ERROR]
        ]
        rest = sum(len(paths) for _, paths in groups[REASONS_IN_ERROR:])
        if rest:
            parts.append(f"{plural_files(rest)} for other reasons (serlib scan --json lists them)")
    else:
        parts = ["no .wav or .flac file there"]
    guess = guess_corpus(scan, parsers)
    if guess:
        parts.append(f"the file names look like {guess}: use --corpus {guess}")
    elif scan.corpus in parsers:
        near = clips_near(Path(scan.root), parsers[scan.corpus])
        if near is not None:
            parts.append(f"found {scan.corpus} clips under {near}: use that as --root")
    return CorpusError(f"no usable {scan.corpus} clip under {scan.root}: " + "; ".join(parts))
