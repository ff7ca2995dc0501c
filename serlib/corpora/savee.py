"""SAVEE: ``<DC|JE|JK|KL>_<code><NN>.wav`` or ``<speaker>/<code><NN>.wav`` (Haq & Jackson, 2009).

Four male speakers; codes a anger, d disgust, f fear, h happiness, n neutral, sa sadness, su surprise.
"""

from __future__ import annotations

import re
from pathlib import Path

from serlib.corpora.base import CorpusScan, Skip, audio_candidates, check_root, make_table

NAME = "savee"
SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS = {
    "a": "anger",
    "d": "disgust",
    "f": "fear",
    "h": "happiness",
    "n": "neutral",
    "sa": "sadness",
    "su": "surprise",
}
FLAT_NAME = re.compile(r"^([A-Z]{2})_([a-z]{1,2})(\d\d)$")
NESTED_NAME = re.compile(r"^([a-z]{1,2})(\d\d)$")


def parse_name(path: Path) -> dict | str:
    """The row for one SAVEE file, or the reason its name cannot be used."""
    flat = FLAT_NAME.match(path.stem)
    nested = NESTED_NAME.match(path.stem)
    if flat:
        speaker, code, number = flat.groups()
    elif nested:
        speaker, (code, number) = path.parent.name.upper(), nested.groups()
    else:
        return "name is not <speaker>_<code><NN> or <speaker>/<code><NN> (SAVEE pattern)"
    if speaker not in SPEAKERS:
        return f"unknown SAVEE speaker {speaker!r} (known: {', '.join(SPEAKERS)})"
    if code not in EMOTIONS:
        return f"unknown emotion code {code!r}"
    return {
        "path": str(path),
        "corpus": NAME,
        "speaker": speaker,
        "gender": "M",
        "group": speaker,
        "emotion": EMOTIONS[code],
        "sentence": int(number),
    }


def scan(root: str | Path) -> CorpusScan:
    """Scan a SAVEE folder (``AudioData/<speaker>/`` or flat ``<speaker>_<code><NN>.wav`` files)."""
    root = check_root(root)
    skipped: list[Skip] = []
    rows = []
    for path in audio_candidates(root, skipped):
        row = parse_name(path)
        if isinstance(row, str):
            skipped.append(Skip(str(path), row))
        else:
            rows.append(row)
    return CorpusScan(NAME, str(root), make_table(rows, ["sentence"]), skipped)
