"""EmoBox's protocols: the facts serlib keeps, the folds it builds from them, the runs, the table.

The fact files (``serlib/benchmarks_data/emobox``) are checked for self-consistency and against a
second transcription of EmoBox's fold membership written here; the folds serlib builds on corpora
in the real layouts are checked against the files; two folds and the cross-corpus track run end to
end on tiny tone corpora in the tiny profile.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import emo_evaluation_block, ravdess_stems, write_audio, write_text
from tone_corpora import tone_clip, write_balanced_ravdess, write_emodb

from serlib.cli import main
from serlib.emobox import (
    VALIDATION_SPEAKERS,
    balanced_test_set,
    check_folds,
    emobox_fold,
    emobox_labels,
    expected_totals,
    fold_facts,
    label_counts,
    read_facts,
    select_folds,
)
from serlib.emobox_runs import format_summary, run_emobox_cross, run_emobox_folds
from serlib.errors import UserError
from serlib.labels import NATIVE_LABELS, label_mapping
from serlib.protocol import CorpusRef, labelled_table

torch.set_num_threads(1)

EMOBOX_RAVDESS_FOLDS = {
    "fold_1": (1, 11, 20, 21),
    "fold_2": (4, 10, 12, 14),
    "fold_3": (8, 9, 19, 23),
    "fold_4": (3, 5, 7, 24),
    "fold_5": (2, 15, 16, 18),
    "fold_6": (6, 13, 17, 22),
}
"""EmoBox's RAVDESS test actors per fold, transcribed a second time from its data/ravdess/fold_k
test files, independently of the fact file."""

PITCH_HZ = {
    "neutral": 200.0,
    "calm": 250.0,
    "disgust": 300.0,
    "happy": 400.0,
    "fearful": 500.0,
    "angry": 600.0,
    "surprised": 700.0,
    "sad": 150.0,
}
CODES = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry"}
CODES |= {"06": "fearful", "07": "disgust", "08": "surprised"}


def write_ravdess_actors(root: Path, actors, tones: bool = False) -> Path:
    """Every speech clip of ``actors`` in RAVDESS's layout: 50 ms tones, or 0.4 s tones whose pitch
    is the emotion (learnable in a few epochs)."""
    for actor in actors:
        for stem in ravdess_stems(actor):
            path = root / f"Actor_{actor:02d}" / f"{stem}.wav"
            if tones:
                emotion = CODES[stem.split("-")[2]]
                seed = int(stem.replace("-", "")) % 100_000
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, tone_clip(PITCH_HZ[emotion], seed, 0.01, seconds=0.25), 16000)
            else:
                write_audio(path)
    return root


@pytest.fixture(scope="module")
def whole_ravdess(tmp_path_factory) -> Path:
    return write_ravdess_actors(tmp_path_factory.mktemp("ravdess24"), range(1, 25))


@pytest.fixture(scope="module")
def ravdess_1_to_16(tmp_path_factory) -> Path:
    """Actors 1-16 only, as in the shared ravdess-16k copy."""
    return write_ravdess_actors(tmp_path_factory.mktemp("ravdess16"), range(1, 17))


def ravdess_table(root: Path):
    ref = CorpusRef.parse(f"ravdess:{root}")
    table, _ = labelled_table(ref, "native", emobox_labels("ravdess"))
    return ref, table


# ----- the facts ---------------------------------------------------------------------------------


def test_ravdess_fact_file_tests_every_actor_once_with_all_its_clips():
    facts = fold_facts("ravdess")
    tested = [s for fold in facts["folds"] for s in fold["test_speakers"]]
    assert sorted(tested) == [f"Actor_{a:02d}" for a in range(1, 25)]  # each actor exactly once
    per_label: dict[str, int] = {}
    for fold in facts["folds"]:
        assert len(fold["test_speakers"]) == 4 and sum(fold["test_counts"].values()) == 240
        for label, n in fold["test_counts"].items():
            per_label[label] = per_label.get(label, 0) + n
    assert per_label == expected_totals(facts)  # the folds add up to EmoBox's corpus totals
    assert sum(per_label.values()) == 1440 and per_label["neutral"] == 96


def test_fold_membership_equals_a_second_transcription_of_emobox_files():
    facts = fold_facts("ravdess")
    found = {fold["name"]: tuple(fold["test_speakers"]) for fold in facts["folds"]}
    assert found == {
        name: tuple(f"Actor_{a:02d}" for a in actors)
        for name, actors in EMOBOX_RAVDESS_FOLDS.items()
    }
    iemocap = fold_facts("iemocap")
    assert [fold["test_speakers"] for fold in iemocap["folds"]] == [
        [f"Ses0{k}F", f"Ses0{k}M"] for k in range(1, 6)
    ]
    assert sum(iemocap["emobox_totals"].values()) == 5531
    assert expected_totals(iemocap) == {"angry": 1103, "happy": 1636, "neutral": 1708, "sad": 1084}


def test_every_fact_file_names_its_source_files_and_commits():
    for name in (
        "ravdess_folds",
        "iemocap_folds",
        "ravdess_balanced_test",
        "iemocap_balanced_test",
    ):
        source = read_facts(f"{name}.json")["source"]
        assert source["repository"] == "https://github.com/emo-box/EmoBox"
        for path, where in source["files"].items():
            assert path and len(where["commit"]) == 40 and where["chars"] > 0


@pytest.mark.parametrize(
    ("corpus", "line", "per_group"),
    [
        (
            "ravdess",
            '{{"wav_filename": "Actor_{g}/{c}.wav", "label": "{l}", "speaker": "{g}"}}\n',
            12,
        ),
        ("iemocap", '{{"wav_filename": "{l}/{c}.wav", "label": "{l}", "speaker": "{g}"}}\n', 24),
    ],
)
def test_balanced_sets_write_back_emobox_files_to_the_character(corpus, line, per_group):
    facts = read_facts(f"{corpus}_balanced_test.json")
    (source,) = facts["source"]["files"].values()
    groups = [clip[-2:] if corpus == "ravdess" else clip[3:6] for clip, _ in facts["clips"]]
    text = "".join(
        line.format(g=group, c=clip, l=label)
        for group, (clip, label) in zip(groups, facts["clips"], strict=True)
    )
    assert len(text) == source["chars"] and len(facts["clips"]) == 240
    assert len({clip for clip, _ in facts["clips"]}) == 240  # no clip twice
    for group in set(groups):  # balanced: the same number of each class in every group
        labels = [label for g, (_, label) in zip(groups, facts["clips"], strict=True) if g == group]
        assert len(labels) == per_group and len(set(labels)) == 4
        assert all(labels.count(label) == per_group // 4 for label in set(labels))
    if corpus == "ravdess":  # EmoBox's label agrees with the emotion code of the file name
        assert all(CODES[clip.split("-")[2]] == label for clip, label in facts["clips"])


@pytest.mark.parametrize("corpus", ["ravdess", "iemocap"])
def test_emobox_labels_map_onto_serlib_classes_as_serlib_maps_them(corpus):
    facts = fold_facts(corpus)
    serlib = label_mapping(facts["scheme"], corpus)
    emobox_native = {native.lower(): native for native in facts["emobox_label_map"]}
    for native in NATIVE_LABELS[corpus]:
        if native in emobox_native:
            emobox_class = facts["emobox_label_map"][emobox_native[native]]
            assert facts["serlib_labels"][emobox_class] == serlib[native], native
        else:  # a label EmoBox leaves out, serlib's scheme drops too
            assert native not in serlib, native
    assert emobox_labels(corpus) == sorted(set(facts["serlib_labels"].values()))
    if corpus == "iemocap":  # excited merged into happy
        assert facts["emobox_label_map"]["exc"] == facts["emobox_label_map"]["hap"] == "Happy"
    else:  # calm kept as a class of its own
        assert facts["serlib_labels"][facts["emobox_label_map"]["Calm"]] == "calm"


# ----- folds on a corpus -------------------------------------------------------------------------


def test_folds_built_on_the_whole_corpus_equal_emobox_files(whole_ravdess):
    ref, table = ravdess_table(whole_ravdess)
    facts = fold_facts("ravdess")
    folds, skipped, notes = select_folds(ref, table, facts, available_folds=False)
    assert len(folds) == 6 and not skipped and not notes
    for fold in folds:
        split = emobox_fold(table, fold)
        speakers = split.speakers()
        assert speakers["test"] == sorted(fold["test_speakers"])
        assert label_counts(split.test) == fold["test_counts"]
        assert len(speakers["val"]) == VALIDATION_SPEAKERS
        assert {g for g in split.val.groupby("speaker")["gender"].first()} == {"F", "M"}
        assert not set(speakers["val"]) & set(speakers["test"])  # chosen among training speakers
        assert len(split.train) + len(split.val) + len(split.test) == 1440


def test_missing_actors_are_refused_naming_clips_speakers_and_folds(
    ravdess_1_to_16, tmp_path, capsys
):
    ref, table = ravdess_table(ravdess_1_to_16)
    facts = fold_facts("ravdess")
    with pytest.raises(UserError) as error:
        select_folds(ref, table, facts, available_folds=False)
    message = str(error.value)
    assert "fold_1 lacks 120 of 240 clips (Actor_20, Actor_21 absent)" in message
    assert "fold_4 lacks 60 of 240 clips (Actor_24 absent)" in message
    assert "only fold_2 can run" in message and "--available-folds" in message
    folds, skipped, notes = select_folds(ref, table, facts, available_folds=True)
    assert [fold["name"] for fold in folds] == ["fold_2"]
    assert sorted(skipped) == ["fold_1", "fold_3", "fold_4", "fold_5", "fold_6"]
    assert "trained without 8 of EmoBox's 20 training speakers" in notes["fold_2"]
    argv = ["benchmark", "emobox-folds", "--corpus", f"ravdess:{ravdess_1_to_16}"]
    assert main([*argv, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "only fold_2 can run" in err and len(err.strip().splitlines()) == 1


def test_a_partial_fold_is_incomplete_even_with_every_speaker_present(whole_ravdess):
    ref, table = ravdess_table(whole_ravdess)
    table = table.drop(table.index[table["speaker"] == "Actor_03"][:5])
    checks = {check.name: check for check in check_folds(table, fold_facts("ravdess"))}
    assert not checks["fold_4"].complete and checks["fold_4"].describe() == (
        "fold_4 lacks 5 of 240 clips"
    )
    assert all(checks[f"fold_{k}"].complete for k in (1, 2, 3, 5, 6))


def test_iemocap_folds_are_sessions_and_an_unlike_copy_is_unconfirmed(iemocap_corpus):
    ref = CorpusRef.parse(f"iemocap:{iemocap_corpus.root}")
    table, _ = labelled_table(ref, "4class", emobox_labels("iemocap"))
    facts = fold_facts("iemocap")
    with pytest.raises(UserError, match="differs from EmoBox's copy of the corpus"):
        select_folds(ref, table, facts, available_folds=False)
    folds, skipped, notes = select_folds(ref, table, facts, available_folds=True)
    assert len(folds) == 5 and not skipped and "unconfirmed" in notes["fold_1"]
    split = emobox_fold(table, folds[0])
    assert split.speakers()["test"] == ["Ses01F", "Ses01M"]
    assert not any(s.startswith("Ses01") for s in split.speakers()["val"])


# ----- the cross-corpus test sets ----------------------------------------------------------------


def test_the_iemocap_balanced_set_is_matched_by_utterance_id(tmp_path):
    """Found whatever the corpus's own label; a clip labelled otherwise keeps EmoBox's label."""
    session = tmp_path / "IEMOCAP_full_release" / "Session2"
    utterances = {"Ses02F_impro03_F019": "exc", "Ses02F_impro02_F012": "fru"}  # EmoBox: happy, sad
    text = "".join(
        emo_evaluation_block(u, label, (3.0, 3.0, 3.0), 10.0 * i)
        for i, (u, label) in enumerate(utterances.items())
    )
    for utterance in utterances:
        dialog = utterance.rsplit("_", 1)[0]
        write_audio(session / "sentences" / "wav" / dialog / f"{utterance}.wav")
        write_text(session / "dialog" / "EmoEvaluation" / f"{dialog}.txt", text)
    found = balanced_test_set(CorpusRef.parse(f"iemocap:{tmp_path}"))
    labels = dict(zip(found.table["key"], found.table["label"], strict=True))
    assert labels == {"Ses02F_impro03_F019": "happy", "Ses02F_impro02_F012": "sad"}
    assert found.relabelled == 1 and len(found.missing) == 238 and not found.complete


def test_cross_track_trains_on_the_source_and_scores_the_whole_balanced_set(home, tmp_path):
    target = write_balanced_ravdess(tmp_path / "ravdess")
    source = write_emodb(tmp_path / "emodb")
    summary = run_emobox_cross(
        f"emodb:{source}", f"ravdess:{target}", tmp_path / "out", profile="tiny", epochs=1,
        progress=False,
    )  # fmt: skip
    assert summary["test"]["n"] == summary["test"]["expected_n"] == 240
    assert summary["comparable"] and summary["missing_clips"] == 0
    run = json.loads((tmp_path / "out" / "emodb_to_ravdess" / "config.json").read_text())
    assert run["counts"]["target_test"] == 240 and "target_adapt" not in run["counts"]
    assert not {s for s in run["splits"]["source_val"]} & set(run["splits"]["source_train"])
    table = format_summary(summary)
    assert "EmoBox cross-corpus track: emodb -> ravdess" in table
    assert "test clips scored: 240 of EmoBox's 240" in table
    assert "no published number recorded" in table and "NOT comparable" not in table
    clips = read_facts("ravdess_balanced_test.json")["clips"]
    first_of_actor_1 = next(clip for clip, _ in clips if clip.endswith("-01"))
    os.remove(target / "Actor_01" / f"{first_of_actor_1}.wav")
    with pytest.raises(UserError, match=r"lacks 1 of the 240 clips .* \(from Actor_01\)"):
        run_emobox_cross(f"emodb:{source}", f"ravdess:{target}", tmp_path / "out2", profile="tiny")


# ----- two folds end to end ----------------------------------------------------------------------


def test_two_folds_run_then_resume_skips_the_finished_one(home, tmp_path):
    root = write_ravdess_actors(tmp_path / "ravdess", EMOBOX_RAVDESS_FOLDS["fold_1"] + (4, 10, 12, 14), tones=True)  # fmt: skip
    out = tmp_path / "emobox"
    options = {"profile": "tiny", "epochs": 1, "available_folds": True, "progress": False}
    summary = run_emobox_folds(f"ravdess:{root}", out, **options)
    assert list(summary["folds"]) == ["fold_1", "fold_2"]
    assert sorted(summary["skipped"]) == ["fold_3", "fold_4", "fold_5", "fold_6"]
    for name, fold in summary["folds"].items():
        expected = [f"Actor_{a:02d}" for a in EMOBOX_RAVDESS_FOLDS[name]]
        assert fold["speakers"] == expected and fold["n"] == 240
    assert summary["ua_mean"] == pytest.approx(
        np.mean([f["ua"] for f in summary["folds"].values()])
    )
    assert not summary["comparable"] and "training speakers" in summary["notes"]["fold_1"]
    assert json.loads((out / "summary.json").read_text()) == summary

    finished = (out / "fold_1" / "model.safetensors").stat().st_mtime_ns
    (out / "fold_2" / "metrics.json").unlink()  # fold_2 now looks interrupted after training
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        run_emobox_folds(f"ravdess:{root}", out, **options)
    again = run_emobox_folds(f"ravdess:{root}", out, resume=True, **options)
    assert (out / "fold_1" / "model.safetensors").stat().st_mtime_ns == finished  # not retrained
    assert (out / "fold_2" / "metrics.json").is_file()
    assert again["folds"]["fold_1"] == summary["folds"]["fold_1"]
    config = json.loads((out / "fold_1" / "config.json").read_text())
    assert (
        config["fold"] == "EmoBox fold_1" and "EmoBox fold_1" in config["protocol"]["source_test"]
    )


# ----- the comparison table ----------------------------------------------------------------------


def folds_summary_for(ua: list[float], folds_total: int = 6) -> dict:
    """A summary as run_emobox_folds writes it, with made-up scores (formatting only)."""
    folds = {
        f"fold_{i + 1}": {"speakers": ["Actor_01"], "n": 240, "ua": u, "wa": u, "macro_f1": u,
                          "best_epoch": 3}
        for i, u in enumerate(ua)
    }  # fmt: skip
    mean = float(np.mean(ua))
    std = float(np.std(ua, ddof=1)) if len(ua) > 1 else None
    return {
        "protocol": "EmoBox folds",
        "description": "EmoBox's 6 speaker-independent folds of ravdess",
        "corpus": {"name": "ravdess", "root": "/data"},
        "labels": ["angry", "calm"],
        "model": "crnn",
        "encoder_label": "CRNN (trained from scratch)",
        "profile": "workshop",
        "folds": folds,
        "folds_total": folds_total,
        "skipped": {} if len(ua) == folds_total else {"fold_6": "fold_6 lacks 60 of 240 clips"},
        "notes": {},
        **{f"{k}_mean": mean for k in ("ua", "wa", "macro_f1")},
        **{f"{k}_std": std for k in ("ua", "wa", "macro_f1")},
        "comparable": len(ua) == folds_total,
        "published": {
            "rows": [{"model": "frozen wav2vec2-base", "ua_percent": 54.3}],
            "citation": "Ma et al., Interspeech 2024",
            "table": "intra-corpus results",
        },
    }


def test_the_table_puts_serlib_beside_emobox_with_the_protocol_named():
    table = format_summary(folds_summary_for([0.40, 0.42, 0.44, 0.46, 0.48, 0.50]))
    lines = table.splitlines()
    assert lines[0] == "EmoBox folds: ravdess, 2 classes (angry calm)"
    ours = next(line for line in lines if line.startswith("serlib crnn"))
    assert "6 of 6 folds" in ours and "45.0 ± 3.7" in ours
    emobox = next(line for line in lines if line.startswith("EmoBox, frozen wav2vec2-base"))
    assert emobox.split()[-3:] == ["54.3", "-", "-"]
    assert lines.index(ours) < lines.index(emobox)
    assert "Ma et al., Interspeech 2024, intra-corpus results" in table
    assert "NOT comparable" not in table


def test_the_table_marks_a_partial_run_as_not_comparable():
    table = format_summary(folds_summary_for([0.45], folds_total=2))
    assert "1 of 2 folds" in table and "±" not in table
    assert "skipped: fold_6 lacks 60 of 240 clips" in table
    assert "NOT comparable with EmoBox's numbers" in table


# ----- real data (optional) ----------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not os.environ.get("SERLIB_RAVDESS_DIR"), reason="SERLIB_RAVDESS_DIR not set")
def test_real_ravdess_folds_and_balanced_set_are_found_as_complete_as_the_folder_is():
    ref, table = ravdess_table(Path(os.environ["SERLIB_RAVDESS_DIR"]))
    present = set(table["speaker"])
    for check in check_folds(table, fold_facts("ravdess")):
        assert check.complete == (set(check.test_speakers) <= present), check.describe()
    found = balanced_test_set(ref)
    actors = {f"Actor_{clip[-2:]}" for clip, _ in read_facts("ravdess_balanced_test.json")["clips"]}
    assert len(found.table) == 12 * len(actors & present) and found.relabelled == 0


def test_benchmark_takes_the_training_settings_of_serlib_train(monkeypatch, tmp_path, capsys):
    """A researcher benchmarks the recipe as trained (``--keep last``, ``--dropout``...); a
    setting not given stays the profile's; the DANN-only ones are not offered."""
    received = {}

    def fake_run(*corpora, **options):
        received.update(options, corpora=corpora)
        return {}

    monkeypatch.setattr("serlib.emobox_runs.run_emobox_folds", fake_run)
    monkeypatch.setattr("serlib.emobox_runs.run_emobox_cross", fake_run)
    monkeypatch.setattr("serlib.emobox_runs.format_summary", lambda summary: "table")
    folds = ["benchmark", "emobox-folds", "--corpus", "ravdess:x", "--out", str(tmp_path)]
    settings = ["--profile", "recipe", "--keep", "last", "--dropout", "0.3", "--mixup", "0.2"]
    assert main([*folds, *settings]) == 0
    assert (received["keep"], received["dropout"], received["mixup"]) == ("last", 0.3, 0.2)
    assert "schedule" not in received and "speed_perturb" not in received  # the recipe's stay
    assert "pool_bands" not in received and "refit" not in received  # the recipe refits
    assert main([*folds, "--profile", "recipe", "--no-refit", "--keep", "best"]) == 0
    assert (received["refit"], received["keep"]) == (False, "best")  # the recipe before refitting
    received.clear()
    cross = ["benchmark", "emobox-cross", "--source", "iemocap:a", "--target", "ravdess:b"]
    assert (
        main([*cross, "--out", str(tmp_path), "--speed-perturb", "0.9", "1.1", "--pool-bands"]) == 0
    )
    assert received["pool_bands"] is True
    assert received["speed_perturb"] == [0.9, 1.1] and received["corpora"][:2] == (
        "iemocap:a",
        "ravdess:b",
    )
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*folds, "--adversary", "reversal"])
    assert "unrecognized arguments: --adversary" in capsys.readouterr().err
