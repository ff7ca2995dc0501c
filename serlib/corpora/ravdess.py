"""RAVDESS: ``Actor_NN/MM-VV-EE-II-SS-RR-AA.wav`` (Livingstone & Russo, 2018).

The file name carries everything: modality, vocal channel, emotion, intensity, statement, repetition
and actor; odd actors are male. Speech only: song recordings (vocal channel 02) are reported as skipped.

Speaker rule: the actor comes from the name. A file inside an ``Actor_NN`` folder whose name gives
another actor is skipped (one of the two is wrong and serlib cannot tell which); outside such a
folder (a flat copy) the name alone decides. The utterance key is the file name without its suffix,
so the Kaggle copy's second tree (``audio_speech_actors_01-24/``) is reported as duplicates.
"""

from __future__ import annotations

import re
from pathlib import Path

from serlib.corpora.base import CorpusScan, check_root, scan_names

NAME = "ravdess"
EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
FILE_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
ACTOR_FOLDER = re.compile(r"^Actor_(\d\d)$", re.IGNORECASE)
EXTRA_COLUMNS = ["intensity", "statement", "repetition"]


def parse_name(path: Path) -> dict | str:
    """The row for one RAVDESS file, or the reason its name cannot be used."""
    match = FILE_NAME.match(path.stem)
    if not match:
        return "name is not MM-VV-EE-II-SS-RR-AA (RAVDESS pattern)"
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    if modality != "03":
        return f"modality {modality} is not audio-only (03)"
    if channel != "01":
        return f"vocal channel {channel} is not speech (01); serlib uses the speech recordings"
    if emotion not in EMOTIONS:
        return f"unknown emotion code {emotion}"
    if intensity not in INTENSITIES:
        return f"unknown intensity code {intensity}"
    if statement not in STATEMENTS or repetition not in ("01", "02"):
        return f"unknown statement/repetition code {statement}/{repetition}"
    if not 1 <= int(actor) <= 99:
        return f"invalid actor number {actor}"
    folder = ACTOR_FOLDER.match(path.parent.name)
    if folder and folder.group(1) != actor:
        return f"actor {actor} in the name but the file is in {path.parent.name}"
    speaker = f"Actor_{actor}"
    return {
        "path": str(path),
        "corpus": NAME,
        "speaker": speaker,
        "gender": "M" if int(actor) % 2 else "F",
        "group": speaker,
        "emotion": EMOTIONS[emotion],
        "intensity": INTENSITIES[intensity],
        "statement": int(statement),
        "repetition": int(repetition),
    }


def scan(root: str | Path) -> CorpusScan:
    """Scan a RAVDESS folder (the one holding ``Actor_NN`` folders) into a table."""
    return scan_names(NAME, check_root(root), parse_name, EXTRA_COLUMNS)
