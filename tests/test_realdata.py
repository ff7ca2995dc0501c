"""Optional checks on real recordings: exact counts, speakers and genders, and real files loading.

They use ``$SERLIB_RAVDESS_DIR`` and ``$SERLIB_EMODB_DIR`` when set, else the shared copies in
``<repo>/../shared/data`` (RAVDESS actors 1-16 as 16 kHz FLAC, 32 original 48 kHz RAVDESS WAVs and
EmoDB speakers 03, 08-11), and skip cleanly when neither exists, as in a fresh clone. Counts are
taken on those actors and speakers only, so a full copy of either corpus passes too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlib.audio import load_audio
from serlib.cli import main
from serlib.corpora import load_corpus
from serlib.labels import apply_scheme

pytestmark = pytest.mark.realdata

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
EMODB_SPEAKERS = {"03": "M", "08": "F", "09": "F", "10": "M", "11": "M"}
EMODB_PER_SPEAKER = {"03": 49, "08": 58, "09": 43, "10": 38, "11": 55}
EMODB_PER_EMOTION = {
    "anger": 60,
    "boredom": 35,
    "disgust": 12,
    "fear": 29,
    "happiness": 34,
    "neutral": 43,
    "sadness": 30,
}
"""EmoDB speakers 03 and 08-11 as distributed (243 of the corpus's 535 utterances)."""


def corpus_folder(variable: str, default: Path) -> Path:
    """The folder named by ``$variable`` if set, else ``default``; skip the test if it is absent."""
    value = os.environ.get(variable, "").strip()
    folder = Path(value).expanduser() if value else default
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (set {variable} to run this)")
    return folder


@pytest.fixture(scope="module")
def ravdess_16k() -> Path:
    return corpus_folder("SERLIB_RAVDESS_DIR", SHARED / "ravdess-16k")


@pytest.fixture(scope="module")
def ravdess_48k() -> Path:
    return corpus_folder("SERLIB_RAVDESS_48K_DIR", SHARED / "ravdess-48k-sample")


@pytest.fixture(scope="module")
def emodb_root() -> Path:
    return corpus_folder("SERLIB_EMODB_DIR", SHARED / "emodb")


@pytest.fixture(scope="module")
def ravdess_actors_1_16(ravdess_16k: Path):
    """The scan of the RAVDESS folder, restricted to actors 1-16."""
    scan = load_corpus("ravdess", ravdess_16k)
    actors = [f"Actor_{n:02d}" for n in range(1, 17)]
    return scan, scan.table[scan.table["speaker"].isin(actors)].reset_index(drop=True)


def test_ravdess_actors_1_16_have_960_files(ravdess_actors_1_16):
    scan, table = ravdess_actors_1_16
    assert [skip for skip in scan.skipped if "not speech" not in skip.reason] == []
    assert len(table) == 960
    counts = table.groupby("emotion").size().to_dict()
    assert counts == {emotion: 64 if emotion == "neutral" else 128 for emotion in RAVDESS_EMOTIONS}
    assert table.groupby("speaker").size().to_dict() == {f"Actor_{n:02d}": 60 for n in range(1, 17)}
    genders = table.groupby("speaker")["gender"].first().to_dict()
    assert genders == {f"Actor_{n:02d}": "M" if n % 2 else "F" for n in range(1, 17)}


def test_ravdess_4class_keeps_448_and_drops_calm(ravdess_actors_1_16):
    _, table = ravdess_actors_1_16
    mapped = apply_scheme(table, "4class")
    assert mapped.groupby("label").size().to_dict() == {
        "angry": 128,
        "happy": 128,
        "neutral": 64,
        "sad": 128,
    }
    assert "calm" not in set(mapped["emotion"])


def test_ravdess_files_load_at_16k(ravdess_actors_1_16):
    _, table = ravdess_actors_1_16
    for path in table["path"].iloc[::240]:
        info = sf.info(path)
        audio = load_audio(path)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - info.frames * 16000 / info.samplerate) <= 1
        assert 0.01 < np.abs(audio).max() <= 1.0


def test_ravdess_48k_originals_scan_and_load_as_16k_mono(ravdess_48k: Path):
    scan = load_corpus("ravdess", ravdess_48k)
    assert len(scan) == 32 and scan.skipped == []
    assert scan.table.groupby("speaker")["gender"].first().to_dict() == {
        "Actor_01": "M",
        "Actor_02": "F",
    }
    stereo = [p for p in scan.table["path"] if sf.info(p).channels == 2]
    assert len(stereo) == 2
    for path in [*stereo, scan.table["path"].iloc[0]]:
        assert b"FLLR" in Path(path).read_bytes()[:200]
        info = sf.info(path)
        audio = load_audio(path, sample_rate=16000)
        assert audio.ndim == 1 and audio.dtype == np.float32
        assert abs(len(audio) - info.frames / 3) <= 1
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0.01


def test_emodb_speakers_03_and_08_11(emodb_root: Path):
    scan = load_corpus("emodb", emodb_root)
    assert scan.skipped == []
    table = scan.table[scan.table["speaker"].isin(EMODB_SPEAKERS)]
    assert len(table) == 243
    assert table.groupby("speaker").size().to_dict() == EMODB_PER_SPEAKER
    assert table.groupby("emotion").size().to_dict() == EMODB_PER_EMOTION
    assert table.groupby("speaker")["gender"].first().to_dict() == EMODB_SPEAKERS
    audio = load_audio(table["path"].iloc[0])
    assert len(audio) == sf.info(table["path"].iloc[0]).frames


def test_emodb_4class_through_the_command_line(emodb_root: Path, capsys):
    if set(load_corpus("emodb", emodb_root).table["speaker"]) != set(EMODB_SPEAKERS):
        pytest.skip("the EmoDB folder has other speakers than 03, 08-11; the exact counts differ")
    assert (
        main(
            ["scan", "--corpus", "emodb", "--root", str(emodb_root), "--scheme", "4class", "--json"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["per_label"] == {"angry": 60, "happy": 34, "neutral": 43, "sad": 30}
    assert report["n"] == 167 and report["speakers"] == sorted(EMODB_SPEAKERS)
