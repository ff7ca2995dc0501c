"""IEMOCAP: ``IEMOCAP_full_release/SessionN/...`` (Busso et al., 2008).

Labels live in ``SessionN/dialog/EmoEvaluation/<dialog>.txt``: each utterance block starts with a
tab-separated line ``[start - end]  <utterance id>  <label>  [valence, activation, dominance]`` followed
by the annotators' lines. Audio is ``SessionN/sentences/wav/<dialog>/<utterance id>.wav``. Each session
has one female and one male speaker; the speaker of an utterance is the session plus the gender letter of
the utterance id's last part (``Ses01F_impro01_M003`` is ``Ses01M``, whoever led the dialog).

Speaker rule: from the utterance id alone, never from a folder. The utterance key is the id, so a
``.flac`` beside its ``.wav`` (or a second copy of a dialog folder) is reported as a duplicate.
Where the ``Session`` folders are not under the root, the folders one and two levels up and down are
searched and the error names the one to use (a Kaggle copy unpacks as
``IEMOCAP_full_release/IEMOCAP_full_release/``; a root may be a ``Session1`` folder).
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from serlib.corpora.base import (
    CorpusError,
    CorpusScan,
    Parsed,
    Skip,
    check_root,
    finish_scan,
    parse_folder,
)
from serlib.corpora.diagnose import folders_near

NAME = "iemocap"
RELEASE_FOLDER = "IEMOCAP_full_release"
LABELS = ("ang", "hap", "exc", "sad", "neu", "fru", "fea", "sur", "dis", "oth", "xxx")
UTTERANCE_LINE = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\d\d[FM]_\S+)\s+(\w+)\s+"
    r"\[\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\]"
)
UTTERANCE_ID = re.compile(r"^(Ses\d\d)[FM]_(\S+)_([FM])\d+$")
SESSION_FOLDER = re.compile(r"^Session(\d+)$")
EXTRA_COLUMNS = ["session", "dialog", "method", "utterance", "start", "end"]
EXTRA_COLUMNS += ["valence", "activation", "dominance"]


def session_folders(folder: Path) -> list[Path]:
    """The ``SessionN`` folders directly in ``folder``, by session number (none if unreadable)."""
    try:
        found = [p for p in folder.iterdir() if SESSION_FOLDER.match(p.name) and p.is_dir()]
    except OSError:
        return []
    return sorted(found, key=lambda p: int(SESSION_FOLDER.match(p.name).group(1)))


def release_folder(root: Path) -> Path:
    """The folder that holds ``Session1..5``: ``root`` itself or its ``IEMOCAP_full_release``.

    Anywhere else near ``root`` it is not used, only named in the error: a scan should read the
    folder the user gave, and say which one to give instead.
    """
    for candidate in (root / RELEASE_FOLDER, root):
        if session_folders(candidate):
            return candidate
    found = next((f for f in folders_near(root) if session_folders(f)), None)
    if found is None:
        hint = f" (expected {RELEASE_FOLDER}/Session1..5)"
    else:
        hint = f"; found IEMOCAP sessions under {found}: use that as --root"
    raise CorpusError(f"no IEMOCAP Session folders under {root}{hint}")


def parse_evaluation(text: str) -> list[dict]:
    """The utterance lines of one EmoEvaluation file as dicts (annotator lines are passed over)."""
    rows = []
    for line in text.splitlines():
        match = UTTERANCE_LINE.match(line)
        if match:
            start, end, utterance, label, valence, activation, dominance = match.groups()
            rows.append(
                {
                    "utterance": utterance,
                    "emotion": label,
                    "start": float(start),
                    "end": float(end),
                    "valence": float(valence),
                    "activation": float(activation),
                    "dominance": float(dominance),
                }
            )
    return rows


def read_labels(session: Path, skipped: list[Skip]) -> dict[str, dict]:
    """Utterance id -> label row for every EmoEvaluation file of one session."""
    folder = session / "dialog" / "EmoEvaluation"
    labels: dict[str, dict] = {}
    if not folder.is_dir():
        skipped.append(Skip(str(folder), "session has no dialog/EmoEvaluation folder"))
        return labels
    for text_file in sorted(folder.glob("*.txt")):
        if text_file.name.startswith("._"):
            continue
        try:
            text = text_file.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            skipped.append(Skip(str(text_file), f"cannot read label file ({error.strerror})"))
            continue
        for row in parse_evaluation(text):
            labels[row["utterance"]] = row
    return labels


def make_row(path: Path, label: dict) -> dict | str:
    """The table row for one labelled utterance, or the reason it cannot be used."""
    match = UTTERANCE_ID.match(label["utterance"])
    if not match:
        return f"utterance id {label['utterance']!r} is not SesNN<F|M>_<dialog>_<F|M>NNN"
    if label["emotion"] not in LABELS:
        return f"unknown IEMOCAP label {label['emotion']!r}"
    session, _, gender = match.groups()
    dialog = label["utterance"].rsplit("_", 1)[0]
    return {
        "path": str(path),
        "corpus": NAME,
        "speaker": session + gender,
        "gender": gender,
        "group": session,
        "session": int(session[3:]),
        "dialog": dialog,
        "method": "improvised" if "_impro" in dialog else "scripted",
        **label,
    }


def parse_file(path: Path, labels: dict[str, dict]) -> dict | str:
    """The row for one sentence wav, labelled by its session's EmoEvaluation files."""
    label = labels.get(path.stem)
    return make_row(path, label) if label else "no label for it in EmoEvaluation"


def utterance_key(row: dict) -> str:
    return row["utterance"]


def scan(root: str | Path) -> CorpusScan:
    """Scan IEMOCAP (the ``IEMOCAP_full_release`` folder or its parent) into a table."""
    release = release_folder(check_root(root))
    skipped: list[Skip] = []
    found = Parsed()
    for session in session_folders(release):
        labels = read_labels(session, skipped)
        wav_folder = session / "sentences" / "wav"
        part = Parsed()
        if wav_folder.is_dir():
            part = parse_folder(wav_folder, partial(parse_file, labels=labels), skipped)
        found.rows += part.rows
        found.other_formats += part.other_formats
        for utterance in sorted(set(labels) - part.seen):
            dialog = utterance.rsplit("_", 1)[0]
            expected = wav_folder / dialog / f"{utterance}.wav"
            skipped.append(
                Skip(str(expected), "labelled in EmoEvaluation but the audio file is missing")
            )
    return finish_scan(NAME, release, found, skipped, utterance_key, EXTRA_COLUMNS)
