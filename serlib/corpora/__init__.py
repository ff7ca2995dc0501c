"""The corpus loaders: one module per corpus, each turning a folder into the same table.

>>> scan = load_corpus("ravdess", "path/to/RAVDESS")   # doctest: +SKIP
>>> scan.table.groupby("emotion").size()                # doctest: +SKIP

``load_corpus`` is the entry point the command line, the training runs and the notebooks share: it
refuses (with a ``CorpusError``, a ``UserError``) a corpus with no usable clip, saying why. The
loaders in ``LOADERS`` return a scan as it is, empty or not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from serlib.corpora import cremad, emodb, iemocap, ravdess, savee, tess
from serlib.corpora.base import (
    BASE_COLUMNS,
    CorpusError,
    CorpusScan,
    Duplicate,
    ParseFn,
    Skip,
    check_clips,
)
from serlib.corpora.diagnose import no_clip_error, skip_reasons

LOADERS: dict[str, Callable[[str | Path], CorpusScan]] = {
    "iemocap": iemocap.scan,
    "ravdess": ravdess.scan,
    "emodb": emodb.scan,
    "cremad": cremad.scan,
    "tess": tess.scan,
    "savee": savee.scan,
}
CORPORA = tuple(LOADERS)

NAME_PARSERS: dict[str, ParseFn] = {
    "ravdess": ravdess.parse_name,
    "emodb": emodb.parse_name,
    "cremad": cremad.parse_name,
    "tess": tess.parse_name,
    "savee": savee.parse_name,
}
"""The file-name readers of the corpora whose names carry the labels (IEMOCAP's are in label files)."""


def check_corpus_name(name: str) -> str:
    """Return ``name`` lower-cased if serlib has a loader for it, else raise a one-line CorpusError."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in LOADERS:
        raise CorpusError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    return key


def load_corpus(
    name: str, root: str | Path, *, check_audio: bool = False, progress: bool = True
) -> CorpusScan:
    """Scan the corpus ``name`` stored under ``root`` into a table of utterances plus skipped files.

    With ``check_audio`` every clip is decoded and the unusable ones (silent, clipped, NaN, too short)
    are skipped, as training would skip them (``progress`` shows a bar). Raises a CorpusError naming
    the commonest skip reasons and the likely fix when no clip is usable.
    """
    scan = LOADERS[check_corpus_name(name)](root)
    if check_audio:
        scan = check_clips(scan, progress)
    if len(scan) == 0:
        raise no_clip_error(scan, NAME_PARSERS)
    return scan


__all__ = [
    "BASE_COLUMNS",
    "CORPORA",
    "CorpusError",
    "CorpusScan",
    "Duplicate",
    "LOADERS",
    "NAME_PARSERS",
    "Skip",
    "check_corpus_name",
    "load_corpus",
    "skip_reasons",
]
