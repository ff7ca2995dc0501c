"""Corpora as users keep them (issue 18): small replicas of each messy real layout.

Each test builds a few files in the layout found in the wild (a Kaggle archive's doubled folder, a
clone without git-lfs, two copies under one root, a corpus's own naming typo) and checks the counts,
the duplicates, the exit codes and the hints. Every corpus is built one folder below ``tmp_path``'s
own subfolder, so the search for clips near a wrong ``--root`` only ever sees this test's files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import LFS_POINTER, tone, write_audio, write_text

from serlib.audio import CLIPPED, NON_FINITE, SILENT, TOO_SHORT, AudioError, load_audio
from serlib.cache import load_features
from serlib.cli import main, print_scan, scan_report
from serlib.corpora import LOADERS, CorpusError, load_corpus
from serlib.errors import UserError


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private parent folder for one test's corpora (see the module docstring)."""
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def names(paths) -> list[str]:
    return sorted(Path(path).name for path in paths)


def scan_exit(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    """Run ``serlib scan`` in-process: (exit status, stdout, stderr)."""
    status = main(["scan", *arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, out: str, err: str) -> str:
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("serlib scan: error: ")
    return err


# --- TESS: the corpus's own typo; unpacked twice ------------------------------------------------------


def write_tess(root: Path, words: tuple[str, ...] = ("bite", "back")) -> None:
    """Both speakers, every emotion folder, the given words; OAF_neutral holds the real typo."""
    for speaker in ("OAF", "YAF"):
        for emotion in ("angry", "disgust", "Fear", "happy", "neutral", "ps", "sad"):
            folder = root / f"{speaker}_{emotion}"
            for word in words:
                stem = f"{speaker}_{word}_{emotion.lower()}"
                if (speaker, word, emotion) == ("OAF", "bite", "neutral"):
                    stem = "OA_bite_neutral"  # as in the real corpus: the F is missing
                write_audio(folder / f"{stem}.wav", 24414)


def test_tess_typo_takes_the_speaker_from_its_folder(home: Path):
    write_tess(home / "TESS")
    scan = load_corpus("tess", home / "TESS")
    assert len(scan) == 2 * 7 * 2 and scan.skipped == [] and scan.duplicates == []
    row = scan.table[scan.table["path"].str.endswith("OA_bite_neutral.wav")].iloc[0]
    assert (row.speaker, row.word, row.emotion) == ("OAF", "bite", "neutral")
    assert scan.table.groupby("speaker").size().to_dict() == {"OAF": 14, "YAF": 14}


def test_tess_short_prefix_without_a_speaker_folder_is_skipped(home: Path):
    """The exception is narrow: ``OA_`` is read as OAF only inside an ``OAF_*`` folder."""
    write_audio(home / "flat" / "OAF_back_sad.wav")
    write_audio(home / "flat" / "OA_bite_neutral.wav")
    write_audio(home / "flat" / "YAF_sad" / "OA_bite_sad.wav")
    scan = load_corpus("tess", home / "flat")
    assert names(scan.table["path"]) == ["OAF_back_sad.wav"]
    assert {Path(s.path).name: s.reason for s in scan.skipped} == {
        name: "speaker 'OA' is not OAF or YAF and the folder does not name one"
        for name in ("OA_bite_neutral.wav", "OA_bite_sad.wav")
    }


def test_tess_unpacked_twice_counts_each_clip_once(home: Path, capsys):
    """The Kaggle archive holds the corpus twice, once inside a doubled wrapper folder."""
    wrapper = home / "tess-kaggle"
    write_tess(wrapper / "TESS Toronto emotional speech set data")
    inner = wrapper / "tess toronto emotional speech set data"
    write_tess(inner / "TESS Toronto emotional speech set data")
    scan = load_corpus("tess", wrapper)
    assert len(scan) == 28 and len(scan.duplicates) == 28 and scan.skipped == []
    for duplicate in scan.duplicates:
        assert duplicate.duplicate.startswith(str(inner))
        assert not duplicate.kept.startswith(str(inner))
        assert Path(duplicate.kept).name == Path(duplicate.duplicate).name
    assert not scan.table["path"].str.startswith(str(inner)).any()

    status, out, _ = scan_exit(capsys, "--corpus", "tess", "--root", str(wrapper), "--json")
    report = json.loads(out)
    assert status == 0 and report["n"] == 28
    assert report["duplicates"] == [
        {"kept": d.kept, "duplicate": d.duplicate} for d in scan.duplicates
    ]


# --- SAVEE both layouts, .wav/.flac twins, two copies under one root ------------------------------------


def test_savee_with_both_layouts_counts_each_clip_once(home: Path, capsys):
    root = home / "SAVEE"
    for speaker in ("DC", "JE", "JK", "KL"):
        for stem in ("a01", "sa02", "n03"):
            write_audio(root / "ALL" / f"{speaker}_{stem}.wav", 44100)
            write_audio(root / "AudioData" / speaker / f"{stem}.wav", 44100)
    scan = load_corpus("savee", root)
    assert len(scan) == 12 and len(scan.duplicates) == 12
    assert scan.table.groupby("speaker").size().to_dict() == dict.fromkeys(
        ["DC", "JE", "JK", "KL"], 3
    )
    assert all(f"{os.sep}ALL{os.sep}" in path for path in scan.table["path"]), "flat copy is nearer"
    kept = {(d.kept, d.duplicate) for d in scan.duplicates}
    assert (str(root / "ALL" / "JK_sa02.wav"), str(root / "AudioData" / "JK" / "sa02.wav")) in kept

    status, out, _ = scan_exit(capsys, "--corpus", "savee", "--root", str(root))
    assert status == 0
    assert "12 duplicates counted once" in out
    assert f"AudioData{os.sep}DC{os.sep}a01.wav (kept ALL{os.sep}DC_a01.wav)" in out


def test_wav_and_flac_twins_keep_the_wav(home: Path):
    actor = home / "RAVDESS" / "Actor_03"
    write_audio(actor / "03-01-05-01-01-01-03.flac")
    write_audio(actor / "03-01-05-01-01-01-03.wav")
    write_audio(actor / "03-01-04-01-01-01-03.flac")
    scan = load_corpus("ravdess", home / "RAVDESS")
    assert names(scan.table["path"]) == ["03-01-04-01-01-01-03.flac", "03-01-05-01-01-01-03.wav"]
    (duplicate,) = scan.duplicates
    assert (Path(duplicate.kept).suffix, Path(duplicate.duplicate).suffix) == (".wav", ".flac")


def test_two_copies_under_one_root_keep_the_one_nearest_the_root(home: Path):
    """RAVDESS from Kaggle: ``Actor_NN/`` and ``audio_speech_actors_01-24/Actor_NN/`` side by side."""
    root = home / "ravdess-kaggle"
    stems = ["03-01-01-01-01-01-01", "03-01-05-02-01-02-01"]
    for copy in (root, root / "audio_speech_actors_01-24"):
        for stem in stems:
            write_audio(copy / "Actor_01" / f"{stem}.wav")
    write_audio(root / "Actor_02" / "03-01-04-01-01-01-02.wav")
    scan = load_corpus("ravdess", root)
    assert len(scan) == 3 and scan.skipped == []
    assert [Path(d.duplicate).parent.parent.name for d in scan.duplicates] == [
        "audio_speech_actors_01-24"
    ] * 2
    assert all(Path(p).parent.parent == root for p in scan.table["path"])


def test_iemocap_flac_beside_its_wav_is_one_utterance(iemocap_corpus):
    release = iemocap_corpus.root / "IEMOCAP_full_release"
    wav = release / "Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F000.wav"
    write_audio(wav.with_suffix(".flac"))
    scan = load_corpus("iemocap", iemocap_corpus.root)
    assert len(scan) == iemocap_corpus.n
    assert [(d.kept, d.duplicate) for d in scan.duplicates] == [
        (str(wav.resolve()), str(wav.with_suffix(".flac").resolve()))
    ]


# --- CREMA-D: other encodings of used clips; a clone without git-lfs ------------------------------------


CREMAD_STEMS = ["1001_DFA_ANG_XX", "1001_IEO_HAP_LO", "1002_TIE_NEU_XX", "1002_WSI_SAD_HI"]


def test_cremad_mp3_copies_are_alternative_encodings_not_problems(home: Path, capsys):
    root = home / "CREMA-D"
    for stem in CREMAD_STEMS:
        write_audio(root / "AudioWAV" / f"{stem}.wav")
        write_audio(root / "AudioMP3" / f"{stem}.mp3")
    write_audio(root / "AudioMP3" / "1003_DFA_ANG_XX.mp3")  # no wav: a real format problem
    scan = load_corpus("cremad", root)
    assert len(scan) == 4 and scan.duplicates == []
    assert sorted((Path(d.kept).name, Path(d.duplicate).name) for d in scan.alternatives) == [
        (f"{stem}.wav", f"{stem}.mp3") for stem in CREMAD_STEMS
    ]
    assert [(Path(s.path).name, s.reason) for s in scan.skipped] == [
        ("1003_DFA_ANG_XX.mp3", "unsupported format .mp3 (use .wav or .flac)")
    ]

    status, out, _ = scan_exit(capsys, "--corpus", "cremad", "--root", str(root))
    assert status == 0
    assert "4 alternative encodings of clips already used" in out
    assert "skipped 1 files:" in out and "1 x unsupported format .mp3" in out
    status, out, _ = scan_exit(capsys, "--corpus", "cremad", "--root", str(root), "--json")
    report = json.loads(out)
    assert len(report["alternatives"]) == 4 and report["n"] == 4
    assert report["skip_reasons"] == {"unsupported format .mp3 (use .wav or .flac)": 1}


def test_cremad_clone_without_git_lfs_is_one_line_with_the_counts(home: Path, capsys):
    root = home / "CREMA-D"
    for stem in CREMAD_STEMS:
        write_text(root / "AudioWAV" / f"{stem}.wav", LFS_POINTER)
        write_text(root / "AudioMP3" / f"{stem}.mp3", LFS_POINTER)
    write_text(root / "README.md", "CREMA-D\n")
    with pytest.raises(CorpusError) as caught:
        load_corpus("cremad", root)
    assert isinstance(caught.value, UserError)
    message = str(caught.value)
    assert message.startswith(f"no usable cremad clip under {root.resolve()}: ")
    assert "4 files: git-lfs pointer, not audio (run `git lfs pull`" in message
    assert "4 files: unsupported format .mp3" in message
    err = assert_one_line_error(*scan_exit(capsys, "--corpus", "cremad", "--root", str(root)))
    assert "4 files: git-lfs pointer" in err


def test_root_one_folder_off_names_the_folder_with_clips(home: Path, capsys):
    """``--root CREMA-D/AudioMP3`` (all mp3): the wavs are in the sibling ``AudioWAV``."""
    root = home / "CREMA-D"
    for stem in CREMAD_STEMS:
        write_audio(root / "AudioWAV" / f"{stem}.wav")
        write_audio(root / "AudioMP3" / f"{stem}.mp3")
    arguments = ["--corpus", "cremad", "--root", str(root / "AudioMP3")]
    err = assert_one_line_error(*scan_exit(capsys, *arguments))
    assert "4 files: unsupported format .mp3" in err
    assert f"found cremad clips under {root.resolve() / 'AudioWAV'}: use that as --root" in err


def test_wrong_corpus_for_the_folder_says_which_it_looks_like(ravdess_corpus, capsys):
    arguments = ["--corpus", "tess", "--root", str(ravdess_corpus.root)]
    err = assert_one_line_error(*scan_exit(capsys, *arguments))
    assert "240 files: name is not <OAF|YAF>_<word>_<emotion> (TESS pattern)" in err
    assert "the file names look like ravdess: use --corpus ravdess" in err


def test_label_scheme_leaving_a_class_empty_exits_2(home: Path, capsys):
    """A RAVDESS copy without its sad clips: 4class cannot have a 'sad' class."""
    for emotion in (1, 3, 5):
        write_audio(home / "partial" / "Actor_01" / f"03-01-0{emotion}-01-01-01-01.wav")
    arguments = ["--corpus", "ravdess", "--root", str(home / "partial"), "--scheme", "4class"]
    err = assert_one_line_error(*scan_exit(capsys, *arguments))
    assert "with scheme 4class: no clip of class sad (clips per class: angry 1, happy 1" in err
    status, _, _ = scan_exit(capsys, *arguments[:4], "--scheme", "native")
    assert status == 0, "native keeps the labels the corpus has: no class is left empty"


# --- IEMOCAP: sessions one or two levels off ----------------------------------------------------------


def test_iemocap_doubled_release_folder_is_named_in_the_error(iemocap_corpus, home: Path, capsys):
    """Kaggle unpacks ``IEMOCAP_full_release/IEMOCAP_full_release/Session1..5``."""
    outer = home / "kaggle" / "IEMOCAP_full_release"
    outer.parent.mkdir()
    (iemocap_corpus.root / "IEMOCAP_full_release").rename(outer.parent / "inner")
    outer.mkdir()
    (outer.parent / "inner").rename(outer / "IEMOCAP_full_release")
    err = assert_one_line_error(
        *scan_exit(capsys, "--corpus", "iemocap", "--root", str(outer.parent))
    )
    inner = (outer / "IEMOCAP_full_release").resolve()
    assert f"found IEMOCAP sessions under {inner}: use that as --root" in err
    assert len(load_corpus("iemocap", inner)) == iemocap_corpus.n


def test_iemocap_root_that_is_a_session_folder_points_to_its_parent(iemocap_corpus):
    release = (iemocap_corpus.root / "IEMOCAP_full_release").resolve()
    with pytest.raises(CorpusError, match=f"found IEMOCAP sessions under {release}: use that"):
        load_corpus("iemocap", release / "Session2")


# --- --check-audio and training: silent, clipped, NaN, too short ---------------------------------------


@pytest.fixture
def bad_audio_corpus(home: Path) -> dict[str, Path]:
    """One RAVDESS actor: two good clips and one of each kind ``audio_problem`` refuses."""
    actor = home / "RAVDESS" / "Actor_07"
    loud = np.clip(4 * tone(0.2), -1, 1)
    nan = tone(0.2)
    nan[100] = np.nan
    files = {
        "good": write_audio(actor / "03-01-01-01-01-01-07.wav"),
        "good_too": write_audio(actor / "03-01-03-01-01-01-07.flac"),
        "silent": write_audio(actor / "03-01-04-01-01-01-07.wav", samples=np.zeros(3200)),
        "clipped": write_audio(actor / "03-01-05-01-01-01-07.wav", samples=loud),
        "nan": write_audio(actor / "03-01-06-01-01-01-07.wav", samples=nan, subtype="FLOAT"),
        "short": write_audio(actor / "03-01-07-01-01-01-07.wav", seconds=0.01),
    }
    return files


BAD_REASONS = {"silent": SILENT, "clipped": CLIPPED, "nan": NON_FINITE, "short": TOO_SHORT}


def test_scan_counts_bad_audio_until_asked_to_check_it(bad_audio_corpus: dict[str, Path]):
    root = bad_audio_corpus["good"].parents[1]
    assert len(load_corpus("ravdess", root)) == 6, "a scan reads names and headers only"
    checked = load_corpus("ravdess", root, check_audio=True, progress=False)
    assert names(checked.table["path"]) == names(
        [bad_audio_corpus[k] for k in ("good", "good_too")]
    )
    assert {Path(s.path).name: s.reason for s in checked.skipped} == {
        bad_audio_corpus[kind].name: reason for kind, reason in BAD_REASONS.items()
    }


def test_scan_check_audio_flag_reports_bad_clips_by_reason(bad_audio_corpus, capsys):
    root = str(bad_audio_corpus["good"].parents[1])
    status, out, err = scan_exit(capsys, "--corpus", "ravdess", "--root", root, "--check-audio")
    assert status == 0 and "checking ravdess audio" in err, "a progress bar on stderr"
    assert "ravdess at" in out and ": 2 utterances" in out.splitlines()[0]
    for reason in BAD_REASONS.values():
        assert f"    1 x {reason}" in out
    status, out, _ = scan_exit(
        capsys, "--corpus", "ravdess", "--root", root, "--json", "--check-audio"
    )
    report = json.loads(out)
    assert report["audio_checked"] is True and report["n"] == 2
    assert report["skip_reasons"] == dict.fromkeys(sorted(BAD_REASONS.values()), 1)


def test_nothing_but_bad_audio_is_a_user_error_when_checked(home: Path):
    write_audio(home / "quiet" / "Actor_01" / "03-01-01-01-01-01-01.wav", samples=np.zeros(8000))
    assert len(load_corpus("ravdess", home / "quiet")) == 1
    with pytest.raises(
        UserError, match=f"no usable ravdess clip under .*: 1 file: {re.escape(SILENT)}"
    ):
        load_corpus("ravdess", home / "quiet", check_audio=True, progress=False)


def test_training_skips_bad_audio_with_the_scans_reasons(bad_audio_corpus, tmp_path: Path):
    """The log-mel cache (what training reads) skips exactly the clips the check refuses."""
    paths = list(bad_audio_corpus.values())
    for kind, reason in BAD_REASONS.items():
        with pytest.raises(AudioError) as caught:
            load_audio(bad_audio_corpus[kind])
        assert caught.value.reason == reason
    found = load_features(paths, root=tmp_path / "cache", progress=False)
    assert found.kept == [0, 1]
    assert {Path(s.path).name: s.reason for s in found.skipped} == {
        bad_audio_corpus[kind].name: reason for kind, reason in BAD_REASONS.items()
    }


# --- what the loaders and the command share -------------------------------------------------------------


def test_loaders_return_empty_scans_and_load_corpus_refuses_them(home: Path):
    """The loaders stay usable for inspection; load_corpus is what training and the CLI call."""
    write_text(home / "empty" / "Actor_01" / "03-01-01-01-01-01-01.wav", b"")
    scan = LOADERS["ravdess"](home / "empty")
    assert len(scan) == 0 and [s.reason for s in scan.skipped] == ["empty file"]
    with pytest.raises(UserError, match="1 file: empty file$"):
        load_corpus("ravdess", home / "empty")


def test_scan_printing_lets_a_broken_pipe_through(ravdess_corpus, monkeypatch):
    """``serlib scan | head -1``: the error must reach ``main``, which ends quietly on it."""

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def flush(self) -> None:
            raise BrokenPipeError

    report = scan_report("ravdess", str(ravdess_corpus.root), None)
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    with pytest.raises(BrokenPipeError):
        print_scan(report)
