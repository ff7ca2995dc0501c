"""Shared test fixtures: tiny audio files and small corpora in their real on-disk layouts.

Every fixture builds its files under pytest's ``tmp_path``, so tests never need real data or a
network. The audio is a 50 ms tone: corpus loaders read names, label files and headers, not sound,
and the audio tests only need a few samples. Files of the same kind are encoded once and copied, so a
240-file corpus is written in milliseconds.

Corpus fixtures return a ``FakeCorpus``: its root folder and what a correct loader must find there,
so each test compares against counts written next to the files rather than against magic numbers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TONE_SECONDS = 0.05
TONE_HZ = 440.0

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 334124\n"
)
"""What a git-lfs file looks like in a clone made without ``git lfs pull``."""

APPLE_DOUBLE_HEADER = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02"
"""The first bytes of a macOS ``._*`` resource-fork file, as found in the IEMOCAP tarball."""


# --- audio files ----------------------------------------------------------------------------------


def tone(
    seconds: float = TONE_SECONDS,
    sample_rate: int = 16000,
    channels: int = 1,
    frequency: float = TONE_HZ,
) -> np.ndarray:
    """A sine tone, ``[frames]`` or ``[frames, channels]``; channel k is silent for k >= 1.

    Only the first channel carries the tone, so a correct mono downmix is exactly tone / channels.
    """
    time = np.arange(round(seconds * sample_rate)) / sample_rate
    wave = (0.5 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)
    if channels == 1:
        return wave
    samples = np.zeros((len(wave), channels), dtype=np.float32)
    samples[:, 0] = wave
    return samples


@lru_cache(maxsize=64)
def encoded_tone(
    file_format: str, sample_rate: int, channels: int, seconds: float, subtype: str | None
) -> bytes:
    """The bytes of a tone file, encoded once per kind (encoding is pure, so caching is safe)."""
    buffer = io.BytesIO()
    samples = tone(seconds, sample_rate, channels)
    sf.write(buffer, samples, sample_rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


def write_audio(
    path: str | Path,
    sample_rate: int = 16000,
    channels: int = 1,
    seconds: float = TONE_SECONDS,
    subtype: str | None = None,
    samples: np.ndarray | None = None,
) -> Path:
    """Write a tone (or ``samples``) to ``path``; the suffix (any case) picks WAV, FLAC or MP3."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    file_format = {".flac": "FLAC", ".mp3": "MP3"}.get(path.suffix.lower(), "WAV")
    if samples is None:
        path.write_bytes(encoded_tone(file_format, sample_rate, channels, seconds, subtype))
    else:
        sf.write(path, samples, sample_rate, format=file_format, subtype=subtype)
    return path


def write_text(path: Path, text: str | bytes) -> Path:
    """Write a text (or bytes) file, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@dataclass
class FakeCorpus:
    """A corpus written in a temporary folder, and what a correct scan of it must report."""

    root: Path
    per_emotion: dict[str, int]
    genders: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    """File name -> a fragment of the reason the loader must give for skipping it."""

    @property
    def n(self) -> int:
        return sum(self.per_emotion.values())

    @property
    def speakers(self) -> list[str]:
        return sorted(self.genders)


# --- RAVDESS ----------------------------------------------------------------------------------------

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def ravdess_stem(emotion: int, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """A RAVDESS speech file name without suffix: MM-VV-EE-II-SS-RR-AA."""
    return f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"


def ravdess_stems(actor: int) -> list[str]:
    """The 60 speech recordings of one actor: neutral has no strong intensity, so 4 + 7 * 8."""
    return [
        ravdess_stem(emotion, intensity, statement, repetition, actor)
        for emotion in range(1, 9)
        for intensity in ((1,) if emotion == 1 else (1, 2))
        for statement in (1, 2)
        for repetition in (1, 2)
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """SERLIB_HOME (the feature cache) for a whole test module: its features are computed once."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERLIB_HOME", str(folder))
        yield folder


@pytest.fixture
def ravdess_corpus(tmp_path: Path) -> FakeCorpus:
    """Four complete RAVDESS actors in four storage styles.

    Actor_01: 48 kHz WAV with one stereo file (as in the real corpus); Actor_02: 48 kHz WAV;
    Actor_17: 16 kHz FLAC; Actor_24: upper-case ``.WAV``. Actors 17 and 24 are not in the shared data.
    """
    root = tmp_path / "RAVDESS"
    styles = {1: ".wav", 2: ".wav", 17: ".flac", 24: ".WAV"}
    for actor, suffix in styles.items():
        rate = 16000 if suffix == ".flac" else 48000
        for stem in ravdess_stems(actor):
            stereo = stem == "03-01-02-01-01-02-01"
            write_audio(root / f"Actor_{actor:02d}" / f"{stem}{suffix}", rate, 2 if stereo else 1)
    write_text(root / "README.txt", "RAVDESS speech audio-only files\n")
    per_emotion = {emotion: 8 * len(styles) for emotion in RAVDESS_EMOTIONS}
    per_emotion["neutral"] = 4 * len(styles)
    genders = {"Actor_01": "M", "Actor_02": "F", "Actor_17": "M", "Actor_24": "F"}
    return FakeCorpus(root, per_emotion, genders)


@pytest.fixture
def messy_ravdess(tmp_path: Path) -> FakeCorpus:
    """A RAVDESS folder mixing good files with every kind of bad one.

    The float WAV with a NaN sample is *not* skipped: a scan reads headers only, so it counts it and
    ``load_audio`` is what rejects it.
    """
    root = tmp_path / "RAVDESS_messy"
    actor = root / "Actor_05"
    for stem in ("03-01-01-01-01-01-05", "03-01-03-01-01-01-05", "03-01-05-02-02-01-05"):
        write_audio(actor / f"{stem}.wav", 48000)
    write_audio(actor / "03-01-04-01-01-01-05.flac", 16000)
    nan_tone = tone(sample_rate=16000)
    nan_tone[10] = np.nan
    write_audio(actor / "03-01-08-01-01-01-05.wav", samples=nan_tone, subtype="FLOAT")

    rng = np.random.default_rng(0)
    good_wav = encoded_tone("WAV", 16000, 1, TONE_SECONDS, None)
    write_text(actor / "03-01-04-02-01-01-05.wav", rng.bytes(2048))
    write_text(actor / "03-01-05-01-01-01-05.wav", b"")
    write_text(actor / "03-01-06-01-01-01-05.wav", LFS_POINTER)
    write_text(actor / "03-01-07-01-01-01-05.wav", good_wav[:30])
    write_text(actor / "03-01-06-02-01-01-05.flac", LFS_POINTER)
    write_audio(actor / "take 3 final.wav")
    write_audio(actor / "03-01-09-01-01-01-05.wav")
    write_audio(actor / "03-01-03-01-01-01-06.wav")
    write_audio(actor / "03-02-03-01-01-01-05.wav")
    write_audio(actor / "03-01-02-01-01-01-05.mp3")
    write_text(actor / "._03-01-01-01-01-01-05.wav", APPLE_DOUBLE_HEADER)
    skipped = {
        "03-01-04-02-01-01-05.wav": "unrecognised header",
        "03-01-05-01-01-01-05.wav": "empty file",
        "03-01-06-01-01-01-05.wav": "git-lfs pointer",
        "03-01-07-01-01-01-05.wav": "too short",
        "03-01-06-02-01-01-05.flac": "git-lfs pointer",
        "take 3 final.wav": "RAVDESS pattern",
        "03-01-09-01-01-01-05.wav": "unknown emotion code 09",
        "03-01-03-01-01-01-06.wav": "actor 06 in the name but the file is in Actor_05",
        "03-02-03-01-01-01-05.wav": "not speech",
        "03-01-02-01-01-01-05.mp3": "unsupported format .mp3",
        "._03-01-01-01-01-01-05.wav": "macOS",
    }
    per_emotion = {"neutral": 1, "happy": 1, "angry": 1, "sad": 1, "surprised": 1}
    return FakeCorpus(root, per_emotion, {"Actor_05": "M"}, skipped)


# --- EmoDB, CREMA-D, TESS, SAVEE ----------------------------------------------------------------------

EMODB_LETTERS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}


@pytest.fixture
def emodb_corpus(tmp_path: Path) -> FakeCorpus:
    """EmoDB's ``wav/SStttEv.wav`` for speakers 03 and 08 (in the shared data) and 12, 13, 16 (not)."""
    root = tmp_path / "emodb"
    genders = {"03": "M", "08": "F", "12": "M", "13": "F", "16": "F"}
    for speaker in genders:
        for index, letter in enumerate(EMODB_LETTERS):
            write_audio(root / "wav" / f"{speaker}a0{index + 1}{letter}a.wav")
    write_audio(root / "wav" / "03b10Wc.wav")
    write_text(root / "lablaut" / "03a01Wa.lablaut", "0.0 sil\n")
    per_emotion = {emotion: len(genders) for emotion in EMODB_LETTERS.values()}
    per_emotion["anger"] += 1
    return FakeCorpus(root, per_emotion, genders)


@pytest.fixture
def cremad_corpus(tmp_path: Path) -> FakeCorpus:
    """CREMA-D's ``AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav`` for four actors, no CSV."""
    root = tmp_path / "CREMA-D"
    genders = {"1001": "M", "1002": "F", "1090": "M", "1091": "F"}
    files = ["DFA_ANG_HI", "IEO_DIS_MD", "TIE_FEA_LO", "ITS_HAP_XX", "TSI_NEU_XX", "WSI_SAD_HI"]
    for actor in genders:
        for rest in files:
            write_audio(root / "AudioWAV" / f"{actor}_{rest}.wav")
    per_emotion = dict.fromkeys(("anger", "disgust", "fear", "happy", "neutral", "sad"), 4)
    return FakeCorpus(root, per_emotion, genders)


@pytest.fixture
def tess_corpus(tmp_path: Path) -> FakeCorpus:
    """TESS with its folder-per-emotion layout and the corpus's mixed-case names."""
    root = tmp_path / "TESS Toronto emotional speech set data"
    names = {
        "OAF_angry": ["OAF_back_angry", "OAF_bar_angry"],
        "OAF_disgust": ["OAF_back_disgust"],
        "OAF_Fear": ["OAF_back_fear"],
        "OAF_happy": ["OAF_back_happy"],
        "OAF_neutral": ["OAF_back_neutral"],
        "OAF_Pleasant_surprise": ["OAF_back_ps"],
        "OAF_Sad": ["OAF_back_sad"],
        "YAF_angry": ["YAF_date_angry"],
        "YAF_disgust": ["YAF_date_disgust"],
        "YAF_fear": ["YAF_date_fear"],
        "YAF_happy": ["YAF_date_happy"],
        "YAF_neutral": ["YAF_Date_Neutral"],
        "YAF_pleasant_surprised": ["YAF_date_ps"],
        "YAF_sad": ["YAF_date_sad"],
    }
    for folder, stems in names.items():
        for stem in stems:
            write_audio(root / folder / f"{stem}.wav", 24414)
    per_emotion = dict.fromkeys(
        ("angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad"), 2
    )
    per_emotion["angry"] = 3
    return FakeCorpus(root, per_emotion, {"OAF": "F", "YAF": "F"})


@pytest.fixture
def savee_corpus(tmp_path: Path) -> FakeCorpus:
    """SAVEE in both layouts people have: flat ``ALL/DC_a01.wav`` and nested ``AudioData/DC/a01.wav``."""
    root = tmp_path / "SAVEE"
    flat = ["DC_a01", "DC_sa02", "JE_su03", "JE_h04", "JK_n05", "JK_d06", "KL_f07", "KL_sa15"]
    for stem in flat:
        write_audio(root / "ALL" / f"{stem}.wav", 44100)
    nested = {"DC": ["n01", "su10"], "KL": ["a02", "h03"]}
    for speaker, stems in nested.items():
        for stem in stems:
            write_audio(root / "AudioData" / speaker / f"{stem}.wav", 44100)
    write_text(root / "AudioData" / "DC" / "info.txt", "speaker DC\n")
    per_emotion = {
        "anger": 2,
        "disgust": 1,
        "fear": 1,
        "happiness": 2,
        "neutral": 2,
        "sadness": 2,
        "surprise": 2,
    }
    return FakeCorpus(root, per_emotion, dict.fromkeys(("DC", "JE", "JK", "KL"), "M"))


# --- IEMOCAP -------------------------------------------------------------------------------------------

EMO_EVALUATION_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

IEMOCAP_TURNS = [
    # (dialog suffix, turn, label, valence, activation, dominance)
    ("impro01", "F000", "neu", 2.5, 2.5, 2.5),
    ("impro01", "M001", "fru", 2.0, 3.5, 3.5),
    ("impro01", "F002", "ang", 1.5, 4.0, 4.0),
    ("impro01", "M003", "exc", 4.0, 3.5, 3.0),
    ("script01_1", "F000", "sad", 1.5, 2.0, 2.0),
    ("script01_1", "M001", "hap", 4.5, 3.0, 3.0),
    ("script01_1", "F002", "xxx", 3.0, 3.0, 3.0),
    ("script01_1", "M003", "oth", 3.0, 2.5, 3.5),
]
"""Eight turns per session: each native label but dis/fea/sur, improvised and scripted dialogs."""


def emo_evaluation_block(utterance: str, label: str, vad: tuple, start: float) -> str:
    """One utterance block of an EmoEvaluation file, annotator lines included, as in the corpus."""
    valence, activation, dominance = vad
    return (
        f"[{start:.4f} - {start + 1.9456:.4f}]\t{utterance}\t{label}\t"
        f"[{valence:.4f}, {activation:.4f}, {dominance:.4f}]\n"
        "C-E2:\tNeutral;\t()\n"
        "C-E3:\tFrustration; Anger;\t(irritated)\n"
        "C-F1:\tNeutral;\t()\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n"
        "A-F1:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)\n\n"
    )


@pytest.fixture
def iemocap_corpus(tmp_path: Path) -> FakeCorpus:
    """Five IEMOCAP sessions in the real ``IEMOCAP_full_release`` layout, with the real corpus's warts.

    Session 1 also has a macOS ``._`` label file (whose text names an utterance that does not exist),
    a ``._`` wav, a labelled utterance whose wav is missing and a wav nobody labelled. Session 2's
    label files have Windows line ends. The dialog-level wavs and Categorical files are there too,
    and must be passed over.
    """
    root = tmp_path / "IEMOCAP"
    release = root / "IEMOCAP_full_release"
    for session in range(1, 6):
        folder = release / f"Session{session}"
        evaluation = folder / "dialog" / "EmoEvaluation"
        by_dialog: dict[str, str] = {}
        for index, (suffix, turn, label, *vad) in enumerate(IEMOCAP_TURNS):
            lead = "F" if suffix.startswith("impro") else "M"
            dialog = f"Ses{session:02d}{lead}_{suffix}"
            utterance = f"{dialog}_{turn}"
            start = 6.2901 if index == 0 else 10.01 * index
            block = emo_evaluation_block(utterance, label, tuple(vad), start)
            by_dialog[dialog] = by_dialog.get(dialog, EMO_EVALUATION_HEADER) + block
            write_audio(folder / "sentences" / "wav" / dialog / f"{utterance}.wav")
        if session == 1:
            dialog = "Ses01F_impro01"
            block = emo_evaluation_block(f"{dialog}_F005", "neu", (3.0, 2.0, 2.0), 40.5)
            by_dialog[dialog] += block
            write_audio(folder / "sentences" / "wav" / dialog / f"{dialog}_M099.wav")
            write_text(
                folder / "sentences" / "wav" / dialog / f"._{dialog}_F000.wav", APPLE_DOUBLE_HEADER
            )
            ghost = emo_evaluation_block(f"{dialog}_F077", "ang", (1.0, 5.0, 5.0), 90.0)
            write_text(evaluation / f"._{dialog}.txt", APPLE_DOUBLE_HEADER + b"\n" + ghost.encode())
        newline = "\r\n" if session == 2 else "\n"
        for dialog, text in by_dialog.items():
            write_text(evaluation / f"{dialog}.txt", text.replace("\n", newline))
            write_text(
                evaluation / "Categorical" / f"{dialog}_e2_cat.txt",
                f"{dialog}_F000 :Neutral state; ()\n",
            )
            write_audio(folder / "dialog" / "wav" / f"{dialog}.wav")
    per_emotion = dict.fromkeys(sorted({turn[2] for turn in IEMOCAP_TURNS}), 5)
    genders = {f"Ses{s:02d}{g}": g for s in range(1, 6) for g in "FM"}
    skipped = {
        "Ses01F_impro01_F005.wav": "labelled in EmoEvaluation but the audio file is missing",
        "Ses01F_impro01_M099.wav": "no label",
        "._Ses01F_impro01_F000.wav": "macOS",
    }
    return FakeCorpus(root, per_emotion, genders, skipped)
