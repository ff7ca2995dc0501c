"""Berlin EmoDB: ``wav/SStttEv.wav`` (Burkhardt et al., 2005).

Characters 1-2 are the speaker (03, 08-16), 3-5 the text, 6 the emotion letter (German initials),
7 the version. Speaker genders come from the corpus documentation.

Speaker rule: characters 1-2 of the name, whatever the folder. The utterance key is the file name
without its suffix.
"""

from __future__ import annotations

import re
from pathlib import Path

from serlib.corpora.base import CorpusScan, check_root, scan_names

NAME = "emodb"
EMOTIONS = {
    "W": "anger",  # Wut
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happiness",  # Freude
    "T": "sadness",  # Trauer
    "N": "neutral",
}
SPEAKER_GENDER = {
    "03": "M", "08": "F", "09": "F", "10": "M", "11": "M",
    "12": "M", "13": "F", "14": "F", "15": "M", "16": "F",
}  # fmt: skip
FILE_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")
EXTRA_COLUMNS = ["text", "version"]


def parse_name(path: Path) -> dict | str:
    """The row for one EmoDB file, or the reason its name cannot be used."""
    match = FILE_NAME.match(path.stem)
    if not match:
        return "name is not SStttEv (EmoDB pattern)"
    speaker, text, letter, version = match.groups()
    if letter not in EMOTIONS:
        return f"unknown emotion letter {letter}"
    if speaker not in SPEAKER_GENDER:
        return f"unknown EmoDB speaker {speaker} (known: 03, 08-16)"
    return {
        "path": str(path),
        "corpus": NAME,
        "speaker": speaker,
        "gender": SPEAKER_GENDER[speaker],
        "group": speaker,
        "emotion": EMOTIONS[letter],
        "text": text,
        "version": version,
    }


def scan(root: str | Path) -> CorpusScan:
    """Scan an EmoDB folder (the one holding ``wav/``, or ``wav/`` itself) into a table."""
    return scan_names(NAME, check_root(root), parse_name, EXTRA_COLUMNS)
