"""The ``serlib`` command: scan's JSON (keys documented in ``serlib.cli.scan_report``), exit 0 on messy
folders, exit 2 with one line on bad input, and a traceback (not exit 2) for a bug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FakeCorpus, write_audio, write_text

from serlib.cli import EXIT_BROKEN_PIPE, build_parser, main
from serlib.config import TRIM_DB
from serlib.errors import UserError

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


def test_scan_text_summary_groups_skips_by_reason(tmp_path: Path, capsys):
    """Counts per reason, the commonest first, three example paths each (relative to the root)."""
    write_audio(tmp_path / "Actor_01" / "03-01-01-01-01-01-01.wav")
    for index in range(25):
        write_audio(tmp_path / f"clip{index:02d}.wav")
    write_text(tmp_path / "Actor_01" / "03-01-02-01-01-01-01.wav", b"")
    assert main(["scan", "--corpus", "ravdess", "--root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("  skipped 26 files:")
    assert lines[start + 1 :] == [
        "    25 x name is not MM-VV-EE-II-SS-RR-AA (RAVDESS pattern)",
        "        clip00.wav",
        "        clip01.wav",
        "        clip02.wav",
        "        ... and 22 more (use --json for all)",
        "    1 x empty file",
        f"        Actor_01{os.sep}03-01-02-01-01-01-01.wav",
    ]


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


@pytest.mark.parametrize("bug", [RuntimeError("internal bug"), ValueError("internal bug")])
def test_a_bug_is_not_reported_as_bad_usage(bug, emodb_corpus: FakeCorpus, monkeypatch, capsys):
    """Only a UserError (or a missing file) becomes exit 2; a bug keeps its traceback."""

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr("serlib.cli.scan_report", broken)
    with pytest.raises(type(bug), match="internal bug"):
        main(["scan", "--corpus", "emodb", "--root", str(emodb_corpus.root)])
    assert capsys.readouterr().err == ""


def test_a_user_error_from_the_library_exits_2_with_one_line(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise UserError("bad --epochs: give a positive number\nsecond line")

    monkeypatch.setattr("serlib.runs.train_run", refuse)
    assert main(["train", "--model", "crnn", "--source", "ravdess:x", "--out", "o"]) == 2
    assert capsys.readouterr().err == "serlib train: error: bad --epochs: give a positive number\n"


def test_a_closed_pipe_ends_the_command_quietly(emodb_corpus: FakeCorpus):
    """``serlib scan ... | head -1``: the reader leaves early; no traceback, the SIGPIPE status."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "serlib", "scan", "--corpus", "emodb"]
            + ["--root", str(emodb_corpus.root), "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == EXIT_BROKEN_PIPE
