"""CREMA-D: ``AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav`` (Cao et al., 2014).

91 actors (1001-1091); the actor's sex is in the corpus's ``VideoDemographics.csv``. When that file is
next to ``AudioWAV`` it is read; otherwise the 43 female actor ids below (from the same file) are used.

Speaker rule: the actor id at the start of the name, whatever the folder. The utterance key is the
file name without its suffix, so a full clone's ``AudioMP3/`` (and ``.mp4`` copies) of clips found in
``AudioWAV/`` are reported as alternative encodings, not as problems.
"""

from __future__ import annotations

import csv
import re
from functools import partial
from pathlib import Path

from serlib.corpora.base import CorpusScan, check_root, scan_names

NAME = "cremad"
EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
FEMALE_ACTORS = frozenset(
    [1002, 1003, 1004, 1006, 1007, 1008, 1009, 1010, 1012, 1013, 1018, 1020, 1021, 1024, 1025]
    + [1028, 1029, 1030, 1037, 1043, 1046, 1047, 1049, 1052, 1053, 1054, 1055, 1056, 1058]
    + [1060, 1061, 1063, 1072, 1073, 1074, 1075, 1076, 1078, 1079, 1082, 1084, 1089, 1091]
)
FILE_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
EXTRA_COLUMNS = ["sentence", "intensity"]
BUILT_IN_GENDERS = {actor: "F" if actor in FEMALE_ACTORS else "M" for actor in range(1001, 1092)}


def read_demographics(root: Path) -> dict[int, str]:
    """Actor id -> "F"/"M" from VideoDemographics.csv, or the built-in list when it is absent."""
    for candidate in (root / "VideoDemographics.csv", root.parent / "VideoDemographics.csv"):
        if candidate.is_file():
            with candidate.open(newline="", encoding="utf-8") as handle:
                return {
                    int(row["ActorID"]): "F" if row["Sex"].strip().lower() == "female" else "M"
                    for row in csv.DictReader(handle)
                }
    return dict(BUILT_IN_GENDERS)


def parse_name(path: Path, genders: dict[int, str] = BUILT_IN_GENDERS) -> dict | str:
    """The row for one CREMA-D file, or the reason its name cannot be used."""
    match = FILE_NAME.match(path.stem)
    if not match:
        return "name is not <actor>_<sentence>_<EMO>_<level> (CREMA-D pattern)"
    actor, sentence, emotion, level = match.groups()
    if emotion not in EMOTIONS:
        return f"unknown emotion code {emotion}"
    if level not in LEVELS:
        return f"unknown intensity level {level}"
    if int(actor) not in genders:
        return f"unknown CREMA-D actor {actor}"
    return {
        "path": str(path),
        "corpus": NAME,
        "speaker": actor,
        "gender": genders[int(actor)],
        "group": actor,
        "emotion": EMOTIONS[emotion],
        "sentence": sentence,
        "intensity": LEVELS[level],
    }


def scan(root: str | Path) -> CorpusScan:
    """Scan a CREMA-D folder (the one holding ``AudioWAV/``, or ``AudioWAV/`` itself)."""
    root = check_root(root)
    parse = partial(parse_name, genders=read_demographics(root))
    return scan_names(NAME, root, parse, EXTRA_COLUMNS)
