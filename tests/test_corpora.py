"""Corpus loaders on small corpora in their real layouts: counts, speakers, genders, extras, skips."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import soundfile as sf
from conftest import FakeCorpus, emo_evaluation_block, write_audio, write_text

from serlib.corpora import (
    BASE_COLUMNS,
    CORPORA,
    LOADERS,
    CorpusError,
    CorpusScan,
    check_corpus_name,
    load_corpus,
)
from serlib.corpora.iemocap import parse_evaluation
from serlib.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def assert_scan_matches(scan: CorpusScan, corpus: FakeCorpus, name: str) -> None:
    """The checks every loader must pass: counts, speakers, genders, columns, absolute paths."""
    table = scan.table
    assert scan.corpus == name
    assert list(table.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    assert table.groupby("emotion").size().to_dict() == corpus.per_emotion
    assert len(scan) == corpus.n
    assert table.groupby("speaker")["gender"].agg(set).to_dict() == {
        speaker: {gender} for speaker, gender in corpus.genders.items()
    }
    assert set(table["corpus"]) == {name}
    assert table[BASE_COLUMNS].notna().all().all()
    assert all(Path(path).is_absolute() and Path(path).is_file() for path in table["path"])
    assert table["path"].is_unique
    assert list(table["path"]) == sorted(table["path"])


def skipped_by_name(scan: CorpusScan) -> dict[str, str]:
    return {Path(skip.path).name: skip.reason for skip in scan.skipped}


def assert_skips_match(scan: CorpusScan, expected: dict[str, str]) -> None:
    """Exactly the expected files are skipped, each with (a fragment of) the expected reason."""
    skipped = skipped_by_name(scan)
    assert len(skipped) == len(scan.skipped), "a file was reported twice"
    assert sorted(skipped) == sorted(expected)
    for name, fragment in expected.items():
        assert fragment in skipped[name], (name, skipped[name])


# --- RAVDESS --------------------------------------------------------------------------------------------


def test_ravdess_counts_speakers_and_genders_across_formats(ravdess_corpus: FakeCorpus):
    scan = load_corpus("ravdess", ravdess_corpus.root)
    assert_scan_matches(scan, ravdess_corpus, "ravdess")
    assert scan.skipped == []
    table = scan.table
    assert table.groupby("speaker").size().to_dict() == dict.fromkeys(ravdess_corpus.speakers, 60)
    assert (table["group"] == table["speaker"]).all()
    suffixes = table["path"].map(lambda p: Path(p).suffix).value_counts().to_dict()
    assert suffixes == {".wav": 120, ".flac": 60, ".WAV": 60}


def test_ravdess_extras_come_from_the_name(ravdess_corpus: FakeCorpus):
    table = load_corpus("ravdess", ravdess_corpus.root).table
    row = table[table["path"].str.endswith("03-01-05-02-01-02-17.flac")].iloc[0]
    assert (row.speaker, row.gender, row.emotion) == ("Actor_17", "M", "angry")
    assert (row.intensity, row.statement, row.repetition) == ("strong", 1, 2)
    assert set(table.loc[table["emotion"] == "neutral", "intensity"]) == {"normal"}
    assert table.groupby(["statement", "repetition"]).size().to_dict() == dict.fromkeys(
        [(1, 1), (1, 2), (2, 1), (2, 2)], 60
    )


def test_ravdess_stereo_file_is_listed_like_the_others(ravdess_corpus: FakeCorpus):
    table = load_corpus("ravdess", ravdess_corpus.root).table
    stereo = table[table["path"].str.endswith("03-01-02-01-01-02-01.wav")]
    assert sf.info(stereo["path"].iloc[0]).channels == 2
    assert stereo["emotion"].tolist() == ["calm"]


def test_messy_folder_keeps_good_files_and_reports_every_bad_one(messy_ravdess: FakeCorpus):
    scan = load_corpus("ravdess", messy_ravdess.root)
    assert_scan_matches(scan, messy_ravdess, "ravdess")
    assert_skips_match(scan, messy_ravdess.skipped)
    assert any(path.endswith("03-01-08-01-01-01-05.wav") for path in scan.table["path"])


def test_ravdess_video_modality_and_bad_codes_are_skipped_with_reasons(tmp_path: Path):
    actor = tmp_path / "Actor_03"
    write_audio(actor / "03-01-01-01-01-01-03.wav")
    for stem in ("01-01-03-01-01-01-03", "03-01-03-03-01-01-03", "03-01-03-01-03-01-03"):
        write_audio(actor / f"{stem}.wav")
    write_audio(tmp_path / "03-01-03-01-01-01-00.wav")
    scan = load_corpus("ravdess", tmp_path)
    assert scan.table["path"].map(lambda p: Path(p).name).tolist() == ["03-01-01-01-01-01-03.wav"]
    assert_skips_match(
        scan,
        {
            "01-01-03-01-01-01-03.wav": "modality 01",
            "03-01-03-03-01-01-03.wav": "intensity code 03",
            "03-01-03-01-03-01-03.wav": "statement/repetition",
            "03-01-03-01-01-01-00.wav": "invalid actor number 00",
        },
    )


def test_ravdess_files_outside_actor_folders_are_still_parsed(tmp_path: Path):
    """A flat copy (all files in one folder) is common; the actor comes from the name."""
    write_audio(tmp_path / "03-01-04-02-02-02-22.wav")
    table = load_corpus("ravdess", tmp_path).table
    assert table[["speaker", "gender", "emotion"]].values.tolist() == [["Actor_22", "F", "sad"]]


# --- EmoDB, CREMA-D, TESS, SAVEE ----------------------------------------------------------------------


@pytest.mark.parametrize("below", ["", "wav"])
def test_emodb_from_its_root_or_its_wav_folder(emodb_corpus: FakeCorpus, below: str):
    scan = load_corpus("emodb", emodb_corpus.root / below)
    assert_scan_matches(scan, emodb_corpus, "emodb")
    assert scan.skipped == []
    row = scan.table[scan.table["path"].str.endswith("03b10Wc.wav")].iloc[0]
    assert (row.speaker, row.group, row.text, row.version) == ("03", "03", "b10", "c")


def test_emodb_unknown_letters_and_speakers_are_skipped(tmp_path: Path):
    for name in ("03a01Xa.wav", "05a01Wa.wav", "03a01W.wav", "16a01Wa.flac"):
        write_audio(tmp_path / "wav" / name)
    scan = load_corpus("emodb", tmp_path)
    assert scan.table["speaker"].tolist() == ["16"]
    assert_skips_match(
        scan,
        {
            "03a01Xa.wav": "unknown emotion letter X",
            "05a01Wa.wav": "unknown EmoDB speaker 05",
            "03a01W.wav": "EmoDB pattern",
        },
    )


def test_cremad_uses_the_built_in_genders_without_the_csv(cremad_corpus: FakeCorpus):
    scan = load_corpus("cremad", cremad_corpus.root)
    assert_scan_matches(scan, cremad_corpus, "cremad")
    row = scan.table[scan.table["path"].str.endswith("1002_DFA_ANG_HI.wav")].iloc[0]
    assert (row.sentence, row.intensity, row.emotion) == ("DFA", "high", "anger")
    assert set(scan.table.loc[scan.table["emotion"] == "neutral", "intensity"]) == {"unspecified"}


def test_cremad_reads_video_demographics_when_present(cremad_corpus: FakeCorpus):
    """The CSV wins over the built-in list: here it (falsely) says actor 1001 is female."""
    rows = ["1001,51,Female,Caucasian,Not Hispanic", "1002,21,Female,Caucasian,Not Hispanic"]
    rows += ["1090,30,Male,Asian,Not Hispanic", "1091,29,Female,Asian,Not Hispanic"]
    csv_text = "ActorID,Age,Sex,Race,Ethnicity\n" + "\n".join(rows) + "\n"
    write_text(cremad_corpus.root / "VideoDemographics.csv", csv_text)
    table = load_corpus("cremad", cremad_corpus.root / "AudioWAV").table
    assert table.groupby("speaker")["gender"].first().to_dict() == {
        "1001": "F",
        "1002": "F",
        "1090": "M",
        "1091": "F",
    }


def test_cremad_bad_names_are_skipped(tmp_path: Path):
    for name in ("1001_DFA_XYZ_HI.wav", "1001_DFA_ANG_QQ.wav", "1200_DFA_ANG_HI.wav", "1001.wav"):
        write_audio(tmp_path / "AudioWAV" / name)
    scan = LOADERS["cremad"](tmp_path)
    assert len(scan) == 0 and list(scan.table.columns[:6]) == BASE_COLUMNS
    assert_skips_match(
        scan,
        {
            "1001_DFA_XYZ_HI.wav": "unknown emotion code XYZ",
            "1001_DFA_ANG_QQ.wav": "unknown intensity level QQ",
            "1200_DFA_ANG_HI.wav": "unknown CREMA-D actor 1200",
            "1001.wav": "CREMA-D pattern",
        },
    )


def test_tess_parses_mixed_case_names(tess_corpus: FakeCorpus):
    scan = load_corpus("tess", tess_corpus.root)
    assert_scan_matches(scan, tess_corpus, "tess")
    assert sorted(set(scan.table["word"])) == ["back", "bar", "date"]


def test_tess_unknown_emotions_are_skipped(tmp_path: Path):
    write_audio(tmp_path / "OAF_back_bored.wav")
    write_audio(tmp_path / "XAF_back_sad.wav")
    assert_skips_match(
        LOADERS["tess"](tmp_path),
        {"OAF_back_bored.wav": "unknown emotion 'bored'", "XAF_back_sad.wav": "TESS pattern"},
    )


def test_savee_flat_and_nested_layouts(savee_corpus: FakeCorpus):
    scan = load_corpus("savee", savee_corpus.root)
    assert_scan_matches(scan, savee_corpus, "savee")
    assert scan.skipped == []
    nested = scan.table[scan.table["path"].str.endswith("su10.wav")].iloc[0]
    assert (nested.speaker, nested.emotion, nested.sentence) == ("DC", "surprise", 10)


def test_savee_unknown_speakers_and_codes_are_skipped(tmp_path: Path):
    write_audio(tmp_path / "XY_a01.wav")
    write_audio(tmp_path / "DC_z01.wav")
    write_audio(tmp_path / "AudioData" / "ZZ" / "a01.wav")
    assert_skips_match(
        LOADERS["savee"](tmp_path),
        {"XY_a01.wav": "unknown SAVEE speaker 'XY'", "DC_z01.wav": "unknown emotion code 'z'"}
        | {"a01.wav": "unknown SAVEE speaker 'ZZ'"},
    )


# --- IEMOCAP ---------------------------------------------------------------------------------------------

EVALUATION_SAMPLE = (
    "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
    "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
    "C-E2:\tNeutral;\t()\n"
    "C-E3:\tNeutral;\t()\n"
    "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
    "[10.0100 - 11.3925]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]\n"
    "C-E2:\tFrustration;\t()\n"
    "A-E3:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)\n"
)


def test_parse_evaluation_reads_the_turn_lines_only():
    rows = parse_evaluation(EVALUATION_SAMPLE)
    assert rows == [
        {
            "utterance": "Ses01F_impro01_F000",
            "emotion": "neu",
            "start": 6.2901,
            "end": 8.2357,
            "valence": 2.5,
            "activation": 2.5,
            "dominance": 2.5,
        },
        {
            "utterance": "Ses01F_impro01_M001",
            "emotion": "fru",
            "start": 10.01,
            "end": 11.3925,
            "valence": 2.0,
            "activation": 3.5,
            "dominance": 3.5,
        },
    ]
    assert parse_evaluation(EVALUATION_SAMPLE.replace("\n", "\r\n")) == rows


def test_iemocap_table_from_the_release_folder(iemocap_corpus: FakeCorpus):
    scan = load_corpus("iemocap", iemocap_corpus.root / "IEMOCAP_full_release")
    assert_scan_matches(scan, iemocap_corpus, "iemocap")
    assert_skips_match(scan, iemocap_corpus.skipped)
    table = scan.table
    assert table.groupby("session").size().to_dict() == dict.fromkeys(range(1, 6), 8)
    assert (table["group"] == table["speaker"].str[:5]).all()
    assert sorted(set(table["group"])) == [f"Ses0{s}" for s in range(1, 6)]
    assert table.groupby("method").size().to_dict() == {"improvised": 20, "scripted": 20}
    row = table[table["utterance"] == "Ses03F_impro01_M001"].iloc[0]
    assert (row.speaker, row.gender, row.dialog, row.emotion) == (
        "Ses03M",
        "M",
        "Ses03F_impro01",
        "fru",
    )
    assert (row.valence, row.activation, row.dominance) == (2.0, 3.5, 3.5)
    assert (row.start, row.end) == pytest.approx((10.01, 11.9556))
    scripted = table[table["utterance"] == "Ses05M_script01_1_F000"].iloc[0]
    assert (scripted.speaker, scripted.dialog, scripted.method) == (
        "Ses05F",
        "Ses05M_script01_1",
        "scripted",
    )
    assert all(Path(p).stem == u for p, u in zip(table["path"], table["utterance"], strict=True))


def test_iemocap_from_the_parent_folder_gives_the_same_table(iemocap_corpus: FakeCorpus):
    release = load_corpus("iemocap", iemocap_corpus.root / "IEMOCAP_full_release")
    parent = load_corpus("iemocap", iemocap_corpus.root)
    assert parent.root == release.root
    assert parent.table.equals(release.table)


def test_iemocap_ignores_macos_label_files(iemocap_corpus: FakeCorpus):
    """``._Ses01F_impro01.txt`` names utterance F077; reading it would report F077 as missing."""
    scan = load_corpus("iemocap", iemocap_corpus.root)
    assert not any("F077" in skip.path for skip in scan.skipped)
    assert "Ses01F_impro01_F077" not in set(scan.table["utterance"])


def test_iemocap_missing_audio_is_reported_where_it_was_expected(iemocap_corpus: FakeCorpus):
    scan = load_corpus("iemocap", iemocap_corpus.root)
    (missing,) = [s for s in scan.skipped if "missing" in s.reason]
    release = iemocap_corpus.root / "IEMOCAP_full_release"
    expected = release / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F005.wav"
    assert Path(missing.path) == expected.resolve()


def test_iemocap_bad_audio_is_reported_once(iemocap_corpus: FakeCorpus):
    """A labelled wav with a bad header is one skip (bad header), not also 'missing'."""
    release = iemocap_corpus.root / "IEMOCAP_full_release"
    bad = release / "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_M001.wav"
    bad.write_bytes(b"")
    scan = load_corpus("iemocap", iemocap_corpus.root)
    assert len(scan) == iemocap_corpus.n - 1
    assert_skips_match(scan, iemocap_corpus.skipped | {bad.name: "empty file"})


def test_iemocap_unknown_label_is_skipped(tmp_path: Path):
    session = tmp_path / "Session1"
    utterance = "Ses01F_impro02_F000"
    block = emo_evaluation_block(utterance, "bor", (3.0, 3.0, 3.0), 1.0)
    write_text(session / "dialog" / "EmoEvaluation" / "Ses01F_impro02.txt", block)
    write_audio(session / "sentences" / "wav" / "Ses01F_impro02" / f"{utterance}.wav")
    scan = LOADERS["iemocap"](tmp_path)
    assert len(scan) == 0
    assert_skips_match(scan, {f"{utterance}.wav": "unknown IEMOCAP label 'bor'"})


def test_iemocap_session_without_labels_is_reported(tmp_path: Path):
    write_audio(tmp_path / "Session4" / "sentences" / "wav" / "d" / "Ses04F_impro01_F000.wav")
    reasons = [skip.reason for skip in LOADERS["iemocap"](tmp_path).skipped]
    assert reasons == [
        "session has no dialog/EmoEvaluation folder",
        "no label for it in EmoEvaluation",
    ]


def test_iemocap_without_sessions_is_an_error(tmp_path: Path):
    (tmp_path / "IEMOCAP_full_release").mkdir()
    with pytest.raises(CorpusError, match="no IEMOCAP Session folders"):
        load_corpus("iemocap", tmp_path)


# --- what every loader shares ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "name"),
    [("ravdess", "ravdess"), ("RAVDESS", "ravdess"), ("CREMA-D", "cremad"), ("crema_d", "cremad")],
)
def test_corpus_names_are_forgiving_about_case_and_dashes(given: str, name: str):
    assert check_corpus_name(given) == name


def test_unknown_corpus_is_one_clear_error(tmp_path: Path):
    with pytest.raises(CorpusError, match="unknown corpus 'librispeech'; choose one of iemocap"):
        load_corpus("librispeech", tmp_path)


@pytest.mark.parametrize("name", CORPORA)
def test_missing_root_and_file_root_are_errors(tmp_path: Path, name: str):
    with pytest.raises(CorpusError, match="corpus folder not found"):
        load_corpus(name, tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="not a folder"):
        load_corpus(name, write_text(tmp_path / "file.txt", "x"))


@pytest.mark.parametrize("name", [n for n in CORPORA if n != "iemocap"])
def test_empty_folder_gives_an_empty_table_with_the_columns(tmp_path: Path, name: str):
    """The loaders return what they found; ``load_corpus`` is the one that refuses an empty corpus."""
    scan = LOADERS[name](tmp_path)
    assert len(scan) == 0 and scan.skipped == []
    assert list(scan.table.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    with pytest.raises(UserError, match=f"no usable {name} clip under .*: no .wav or .flac file"):
        load_corpus(name, tmp_path)


def test_hidden_folders_are_not_entered(ravdess_corpus: FakeCorpus):
    write_audio(ravdess_corpus.root / ".Trash" / "Actor_01" / "03-01-01-01-01-01-01.wav")
    write_audio(ravdess_corpus.root / ".git" / "lfs" / "Actor_01" / "03-01-01-01-01-02-01.wav")
    scan = load_corpus("ravdess", ravdess_corpus.root)
    assert len(scan) == ravdess_corpus.n and scan.skipped == []


@pytest.mark.parametrize(
    ("name", "fixture"),
    [
        ("ravdess", "ravdess_corpus"),
        ("emodb", "emodb_corpus"),
        ("cremad", "cremad_corpus"),
        ("tess", "tess_corpus"),
        ("savee", "savee_corpus"),
        ("iemocap", "iemocap_corpus"),
    ],
)
def test_scanning_never_decodes_audio(
    name: str, fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    """A scan reads names and first bytes only: with every soundfile entry point broken it still works."""
    corpus: FakeCorpus = request.getfixturevalue(fixture)

    def refuse(*args, **kwargs):
        raise AssertionError("a corpus scan must not open audio with soundfile")

    for function in ("read", "info", "SoundFile", "blocks"):
        monkeypatch.setattr(sf, function, refuse)
    assert len(load_corpus(name, corpus.root)) == corpus.n


def test_scan_benchmark_runs_on_a_small_folder(tmp_path: Path, capsys: pytest.CaptureFixture):
    """benchmarks/bench_scan.py must keep working; a few hundred files, without the CLI run."""
    spec = importlib.util.spec_from_file_location(
        "bench_scan", ROOT / "benchmarks" / "bench_scan.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--files", "300", "--folder", str(tmp_path), "--no-cli"])
    assert results["files"] == 300 and results["load_corpus_n"] == 300
    assert "load_corpus" in capsys.readouterr().out


def test_symlinked_actor_folders_are_followed_once(ravdess_corpus: FakeCorpus, tmp_path: Path):
    linked = tmp_path / "linked"
    linked.mkdir()
    for actor in sorted(ravdess_corpus.root.glob("Actor_*")):
        (linked / actor.name).symlink_to(actor, target_is_directory=True)
    (linked / "Actor_01" / "loop").symlink_to(linked, target_is_directory=True)
    scan = load_corpus("ravdess", linked)
    direct = load_corpus("ravdess", ravdess_corpus.root)
    assert len(scan) == len(direct) == ravdess_corpus.n
    assert (
        scan.table["emotion"].value_counts().to_dict()
        == direct.table["emotion"].value_counts().to_dict()
    )
