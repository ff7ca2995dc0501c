"""``serlib scan``: the JSON of DESIGN.md, exit 0 on messy folders, exit 2 with one line on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FakeCorpus, write_audio

from serlib.cli import build_parser, main
from serlib.config import TRIM_DB

CONTRACT_KEYS = {"corpus", "root", "n", "per_label", "speakers", "skipped"}


def scan_json(capsys: pytest.CaptureFixture, *arguments: str) -> dict:
    """Run ``serlib scan ... --json`` in-process and return the parsed report."""
    assert main(["scan", *arguments, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return json.loads(captured.out)


def scan_error(capsys: pytest.CaptureFixture, *arguments: str) -> str:
    """Run a failing ``serlib scan`` in-process; it must exit 2 with one line on stderr."""
    assert main(["scan", *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("serlib scan: error: ")
    return captured.err


@pytest.mark.parametrize("corpus", ["ravdess", "emodb"])
def test_scan_json_reports_counts_speakers_and_genders(
    corpus: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture
):
    fake: FakeCorpus = request.getfixturevalue(f"{corpus}_corpus")
    report = scan_json(capsys, "--corpus", corpus, "--root", str(fake.root))
    assert CONTRACT_KEYS <= set(report)
    assert report["corpus"] == corpus
    assert report["root"] == str(fake.root.resolve())
    assert report["n"] == fake.n
    assert report["per_label"] == dict(sorted(fake.per_emotion.items()))
    assert report["speakers"] == fake.speakers
    assert report["genders"] == fake.genders
    assert report["skipped"] == []


def test_scan_4class_on_ravdess_drops_calm(ravdess_corpus: FakeCorpus, capsys):
    root = str(ravdess_corpus.root)
    report = scan_json(capsys, "--corpus", "ravdess", "--root", root, "--scheme", "4class")
    counts = ravdess_corpus.per_emotion
    assert report["per_label"] == {
        label: counts[label] for label in ("angry", "happy", "neutral", "sad")
    }
    assert report["n"] == sum(report["per_label"].values())
    assert report["scheme"] == "4class"
    assert report["dropped_by_scheme"] == {
        e: counts[e] for e in ("calm", "disgust", "fearful", "surprised")
    }
    assert report["speakers"] == ravdess_corpus.speakers


def test_scan_4class_on_emodb_uses_the_same_names(emodb_corpus: FakeCorpus, capsys):
    root = str(emodb_corpus.root)
    report = scan_json(capsys, "--corpus", "emodb", "--root", root, "--scheme", "4class")
    counts = emodb_corpus.per_emotion
    assert report["per_label"] == {
        "angry": counts["anger"],
        "happy": counts["happiness"],
        "neutral": counts["neutral"],
        "sad": counts["sadness"],
    }
    assert report["dropped_by_scheme"] == {e: counts[e] for e in ("boredom", "disgust", "fear")}


def test_scan_with_a_scheme_lists_only_the_speakers_it_keeps(ravdess_corpus: FakeCorpus, capsys):
    """An actor with only calm recordings contributes nothing to a 4-class corpus."""
    write_audio(ravdess_corpus.root / "Actor_09" / "03-01-02-01-01-01-09.wav")
    root = str(ravdess_corpus.root)
    assert "Actor_09" in scan_json(capsys, "--corpus", "ravdess", "--root", root)["speakers"]
    report = scan_json(capsys, "--corpus", "ravdess", "--root", root, "--scheme", "4class")
    assert report["speakers"] == ravdess_corpus.speakers
    assert "Actor_09" not in report["genders"]


def test_scan_of_a_messy_folder_exits_0_and_lists_every_bad_file(messy_ravdess: FakeCorpus, capsys):
    report = scan_json(capsys, "--corpus", "ravdess", "--root", str(messy_ravdess.root))
    assert report["n"] == messy_ravdess.n
    assert report["per_label"] == dict(sorted(messy_ravdess.per_emotion.items()))
    skipped = {Path(skip["path"]).name: skip["reason"] for skip in report["skipped"]}
    assert sorted(skipped) == sorted(messy_ravdess.skipped)
    for name, fragment in messy_ravdess.skipped.items():
        assert fragment in skipped[name]
    assert all(Path(skip["path"]).is_absolute() for skip in report["skipped"])


def test_scan_of_iemocap_lists_sessions_as_speakers(iemocap_corpus: FakeCorpus, capsys):
    report = scan_json(
        capsys, "--corpus", "iemocap", "--root", str(iemocap_corpus.root), "--scheme", "4class"
    )
    assert report["per_label"] == {"angry": 5, "happy": 10, "neutral": 5, "sad": 5}
    assert report["speakers"] == iemocap_corpus.speakers
    assert report["root"].endswith("IEMOCAP_full_release")
    assert len(report["skipped"]) == len(iemocap_corpus.skipped)


def test_scan_text_summary(messy_ravdess: FakeCorpus, capsys):
    assert main(["scan", "--corpus", "ravdess", "--root", str(messy_ravdess.root)]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0]
        == f"ravdess at {messy_ravdess.root.resolve()}: {messy_ravdess.n} utterances"
    )
    assert "speakers: 1 (0 female, 1 male)" in out
    assert f"skipped {len(messy_ravdess.skipped)} files:" in out
    assert "git-lfs pointer" in out


def test_scan_text_summary_shortens_long_skip_lists(tmp_path: Path, capsys):
    for index in range(25):
        write_audio(tmp_path / f"clip{index:02d}.wav")
    assert main(["scan", "--corpus", "ravdess", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped 25 files:" in out and "... and 5 more (use --json for all)" in out


def test_missing_root_exits_2_with_one_line(tmp_path: Path, capsys):
    err = scan_error(capsys, "--corpus", "ravdess", "--root", str(tmp_path / "nowhere"))
    assert "corpus folder not found" in err and "nowhere" in err


def test_unknown_corpus_exits_2_with_one_line(tmp_path: Path, capsys):
    err = scan_error(capsys, "--corpus", "librispeech", "--root", str(tmp_path))
    assert "unknown corpus 'librispeech'" in err and "ravdess" in err


def test_unknown_scheme_exits_2_with_one_line(ravdess_corpus: FakeCorpus, capsys):
    err = scan_error(
        capsys, "--corpus", "ravdess", "--root", str(ravdess_corpus.root), "--scheme", "7class"
    )
    assert "unknown label scheme '7class'" in err


def test_iemocap_without_sessions_exits_2_with_one_line(tmp_path: Path, capsys):
    err = scan_error(capsys, "--corpus", "iemocap", "--root", str(tmp_path))
    assert "no IEMOCAP Session folders" in err


def test_missing_required_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["scan", "--corpus", "ravdess"])
    assert exited.value.code == 2
    assert "--root" in capsys.readouterr().err


def test_module_and_console_script_exit_codes(emodb_corpus: FakeCorpus, tmp_path: Path):
    """The installed entry points, as users call them: ``python -m serlib`` and ``serlib``."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    module = [sys.executable, "-m", "serlib"]
    good = subprocess.run(
        [*module, "scan", "--corpus", "emodb", "--root", str(emodb_corpus.root), "--json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["n"] == emodb_corpus.n

    script = Path(sys.executable).with_name("serlib")
    if not script.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    for command in (module, [str(script)]):
        bad = subprocess.run(
            [*command, "scan", "--corpus", "ravdess", "--root", str(tmp_path / "nowhere")],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
        )
        assert bad.returncode == 2
        assert bad.stdout == ""
        assert bad.stderr.count("\n") == 1
        assert bad.stderr.startswith("serlib scan: error: corpus folder not found")


@pytest.mark.parametrize(
    ("flag", "expected"),
    [([], None), (["--trim-silence"], TRIM_DB), (["--trim-silence", "25"], 25.0)],
)
def test_trim_silence_is_off_unless_asked_and_takes_an_optional_threshold(flag, expected):
    argv = ["train", "--model", "crnn", "--source", "ravdess:x", "--out", "o", *flag]
    assert build_parser().parse_args(argv).trim_db == expected
