"""TESS: ``<OAF|YAF>_<word>_<emotion>.wav`` (Dupuis & Pichora-Fuller, 2010).

Two female speakers, an older (OAF) and a younger (YAF) one, saying "Say the word ..." with 200 target
words in seven emotions (2,800 clips); ``ps`` is pleasant surprise. Names are parsed case-insensitively
(the corpus has ``YAF_Date_Neutral``).

Speaker rule: the name's prefix, ``OAF`` or ``YAF``, whatever the folder. The one exception is the
corpus's own typo ``OAF_neutral/OA_bite_neutral.wav``: a prefix ``OA`` or ``YA`` (the F missing) is
accepted when the file's folder names the speaker (``OAF_...`` for ``OA``, ``YAF_...`` for ``YA``),
and the speaker is taken from the folder; elsewhere such a name is skipped. Folder names otherwise
vary between copies and are not read. The utterance key is speaker, word and emotion, so TESS
unpacked twice (the Kaggle archive's doubled folder) is reported as duplicates.
"""

from __future__ import annotations

import re
from pathlib import Path

from serlib.corpora.base import CorpusScan, check_root, scan_names

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
FILE_NAME = re.compile(r"^(OAF|YAF|OA|YA)_(.+)_([a-z]+)$", re.IGNORECASE)
SPEAKER_FOLDER = re.compile(r"^(OAF|YAF)_", re.IGNORECASE)
EXTRA_COLUMNS = ["word"]


def speaker_of(prefix: str, path: Path) -> str | None:
    """The speaker a name's prefix gives, or (prefix missing its F) the one the folder names."""
    prefix = prefix.upper()
    if prefix in ("OAF", "YAF"):
        return prefix
    folder = SPEAKER_FOLDER.match(path.parent.name)
    if folder and folder.group(1).upper() == prefix + "F":
        return prefix + "F"
    return None


def parse_name(path: Path) -> dict | str:
    """The row for one TESS file, or the reason its name cannot be used."""
    match = FILE_NAME.match(path.stem)
    if not match:
        return "name is not <OAF|YAF>_<word>_<emotion> (TESS pattern)"
    prefix, word, emotion = match.group(1), match.group(2).lower(), match.group(3).lower()
    speaker = speaker_of(prefix, path)
    if speaker is None:
        return f"speaker {prefix!r} is not OAF or YAF and the folder does not name one"
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


def utterance_key(row: dict) -> str:
    """Speaker, word and emotion: what makes a TESS clip, however its file is spelled."""
    return f"{row['speaker']}_{row['word']}_{row['emotion']}"


def scan(root: str | Path) -> CorpusScan:
    """Scan a TESS folder (any nesting of its ``OAF_*``/``YAF_*`` folders)."""
    return scan_names(NAME, check_root(root), parse_name, EXTRA_COLUMNS, utterance_key)
