"""SAVEE: ``<DC|JE|JK|KL>_<code><NN>.wav`` or ``<speaker>/<code><NN>.wav`` (Haq & Jackson, 2009).

Four male speakers, 120 clips each (480); codes a anger, d disgust, f fear, h happiness, n neutral,
sa sadness, su surprise.

Speaker rule: in the flat layout (``ALL/DC_a01.wav``) the name's prefix; in the nested layout
(``AudioData/DC/a01.wav``), where the name has no speaker, the folder. The utterance key is speaker,
code and number, so a copy holding both layouts is reported as duplicates (the flat copy, nearer
the root, is kept).
"""

from __future__ import annotations

import re
from pathlib import Path

from serlib.corpora.base import CorpusScan, check_root, scan_names

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
EXTRA_COLUMNS = ["sentence"]


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


def utterance_key(row: dict) -> str:
    """Speaker, emotion and number: the same clip in the flat and the nested layout."""
    return f"{row['speaker']}_{row['emotion']}{row['sentence']:02d}"


def scan(root: str | Path) -> CorpusScan:
    """Scan a SAVEE folder (``AudioData/<speaker>/`` or flat ``<speaker>_<code><NN>.wav`` files)."""
    return scan_names(NAME, check_root(root), parse_name, EXTRA_COLUMNS, utterance_key)
