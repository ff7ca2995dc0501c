"""TESS: ``<OAF|YAF>_<word>_<emotion>.wav`` (Dupuis & Pichora-Fuller, 2010).

Two female speakers, an older (OAF) and a younger (YAF) one, saying "Say the word ..." with 200 target
words in seven emotions; ``ps`` is pleasant surprise. Folder names vary between copies, so only the file
name is parsed (case-insensitively).
"""

from __future__ import annotations

import re
from pathlib import Path

from serlib.corpora.base import CorpusScan, Skip, audio_candidates, check_root, make_table

NAME = "tess"
EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "pleasant_surprise",
    "sad": "sad",
}
FILE_NAME = re.compile(r"^(OAF|YAF)_(.+)_([a-z]+)$", re.IGNORECASE)


def parse_name(path: Path) -> dict | str:
    """The row for one TESS file, or the reason its name cannot be used."""
    match = FILE_NAME.match(path.stem)
    if not match:
        return "name is not <OAF|YAF>_<word>_<emotion> (TESS pattern)"
    speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
    if emotion not in EMOTIONS:
        return f"unknown emotion {emotion!r}"
    return {
        "path": str(path),
        "corpus": NAME,
        "speaker": speaker,
        "gender": "F",
        "group": speaker,
        "emotion": EMOTIONS[emotion],
        "word": word,
    }


def scan(root: str | Path) -> CorpusScan:
    """Scan a TESS folder (any nesting of its ``OAF_*``/``YAF_*`` folders)."""
    root = check_root(root)
    skipped: list[Skip] = []
    rows = []
    for path in audio_candidates(root, skipped):
        row = parse_name(path)
        if isinstance(row, str):
            skipped.append(Skip(str(path), row))
        else:
            rows.append(row)
    return CorpusScan(NAME, str(root), make_table(rows, ["word"]), skipped)
