"""The corpus loaders: one module per corpus, each turning a folder into the same table.

>>> scan = load_corpus("ravdess", "path/to/RAVDESS")   # doctest: +SKIP
>>> scan.table.groupby("emotion").size()                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from serlib.corpora import cremad, emodb, iemocap, ravdess, savee, tess
from serlib.corpora.base import BASE_COLUMNS, CorpusError, CorpusScan, Skip

LOADERS: dict[str, Callable[[str | Path], CorpusScan]] = {
    "iemocap": iemocap.scan,
    "ravdess": ravdess.scan,
    "emodb": emodb.scan,
    "cremad": cremad.scan,
    "tess": tess.scan,
    "savee": savee.scan,
}
CORPORA = tuple(LOADERS)


def check_corpus_name(name: str) -> str:
    """Return ``name`` lower-cased if serlib has a loader for it, else raise a one-line CorpusError."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in LOADERS:
        raise CorpusError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    return key


def load_corpus(name: str, root: str | Path) -> CorpusScan:
    """Scan the corpus ``name`` stored under ``root`` into a table of utterances plus skipped files."""
    return LOADERS[check_corpus_name(name)](root)


__all__ = [
    "BASE_COLUMNS",
    "CORPORA",
    "CorpusError",
    "CorpusScan",
    "LOADERS",
    "Skip",
    "check_corpus_name",
    "load_corpus",
]
