"""The course plumbing (serlib.course, serlib.course_runner, serlib.results) and the measurements
behind notebooks 01 and 05 (serlib.analysis)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib import analysis, colab, course, course_runner, results
from serlib.errors import UserError
from serlib.run_settings import make_settings, trains_the_same

SAMPLE_RATE = 16000


def harmonic_tone(f0: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    """A voiced-sounding tone: a fundamental and four harmonics, so pyin finds its pitch."""
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * f0 * k * time) / k for k in range(1, 6))
    return (amplitude * wave / np.abs(wave).max()).astype(np.float32)


# ----- serlib.course -----------------------------------------------------------------------------


def test_colab_url_names_each_notebook_and_rejects_others():
    for name in course.NOTEBOOKS:
        url = course.colab_url(f"{name}.ipynb")
        assert url.startswith("https://colab.research.google.com/github/serlib/serlib/blob/main/")
        assert url.endswith(f"notebooks/{name}.ipynb")
    with pytest.raises(ValueError, match="unknown notebook"):
        course.colab_url("06_missing")


def test_in_colab_follows_the_google_colab_module(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "google.colab", raising=False)
    assert not course.in_colab()
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert course.in_colab()


def test_run_and_synth_folders_live_under_serlib_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path))
    run = course.run_dir("crnn", "tiny", 3)
    assert run.parent.parent == tmp_path / "runs"
    assert run.name == "crnn" and "tiny-seed3" in run.parent.name
    assert course.run_dir("crnn", "tiny", 3) == run  # same arguments, same folder
    assert course.run_dir("crnn", "tiny", 4) != run
    assert course.run_dir("crnn", "tiny", 3, tag="iemocap-ravdess") != run
    assert course.synth_root("ravdess", "workshop", 1) == tmp_path / "synth/workshop-seed1/ravdess"
    for bad in ("../crnn", "a/b", ""):
        with pytest.raises(ValueError, match="plain folder name"):
            course.run_dir(bad, "tiny")
    with pytest.raises(ValueError, match="unknown profile"):
        course.run_dir("crnn", "huge")


def test_real_corpus_from_environment_wins_over_synthetic(monkeypatch, tmp_path):
    real = tmp_path / "RAVDESS"
    real.mkdir()
    monkeypatch.setenv("SERLIB_RAVDESS_DIR", str(real))
    corpus = course.course_corpus("ravdess", "tiny")
    assert corpus == course.CourseCorpus("ravdess", real.resolve(), synthetic=False)
    assert corpus.spec == f"ravdess:{real.resolve()}"
    assert "(real)" in corpus.describe()
    explicit = tmp_path / "other"
    explicit.mkdir()
    assert course.course_corpus("ravdess", "tiny", root=explicit).root == explicit.resolve()
    monkeypatch.setenv("SERLIB_RAVDESS_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="SERLIB_RAVDESS_DIR"):
        course.course_corpus("ravdess", "tiny")


def test_data_tag_separates_real_from_synthetic(tmp_path):
    synthetic = {
        "source": course.CourseCorpus("iemocap", tmp_path, True),
        "target": course.CourseCorpus("ravdess", tmp_path, True),
    }
    mixed = {**synthetic, "target": course.CourseCorpus("ravdess", tmp_path, False)}
    assert course.data_tag(synthetic) == "iemocap-synth-ravdess-synth"
    assert course.data_tag(mixed) == "iemocap-synth-ravdess"


def test_figures_dir_prefers_the_environment_then_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv(course.FIGURES_ENV, str(tmp_path / "figs"))
    assert course.figures_dir() == tmp_path / "figs"
    monkeypatch.delenv(course.FIGURES_ENV)
    checkout = tmp_path / "checkout"
    (checkout / "serlib").mkdir(parents=True)
    (checkout / "notebooks").mkdir()
    (checkout / "pyproject.toml").write_text("[project]\n")
    monkeypatch.chdir(checkout / "notebooks")
    assert course.figures_dir() == checkout / "figures"
    monkeypatch.chdir(tmp_path)
    assert course.figures_dir() == tmp_path / "figures"


def write_run(folder: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def scores(ua: float, n: int = 10) -> dict:
    return {"ua": ua, "wa": ua + 0.05, "macro_f1": ua - 0.05, "n": n}


def test_results_table_reads_metrics_and_lists_what_is_missing(tmp_path):
    crnn = write_run(
        tmp_path / "crnn", {"source_test": scores(0.6), "target_test": scores(0.3, 20)}
    )
    dann = write_run(tmp_path / "dann", {"source_test": scores(0.55)})
    table = results.results_table({"CRNN": crnn, "DANN": dann, "W2V2": tmp_path / "nothing"})
    assert table[["model", "set"]].values.tolist() == [
        ["CRNN", "source test"],
        ["CRNN", "target test"],
        ["DANN", "source test"],
    ]
    assert table.loc[1, "ua"] == pytest.approx(0.3) and table.loc[1, "n"] == 20
    assert table.attrs["missing"] == [
        "DANN / target test",
        f"W2V2 (no run at {tmp_path / 'nothing'})",
    ]
    wide = results.wide_results(table)
    assert list(wide.index) == ["CRNN", "DANN"]
    assert wide.loc["CRNN", "UA target test"] == pytest.approx(30.0)
    assert np.isnan(wide.loc["DANN", "UA target test"])
    text = results.format_results(table)
    assert "CRNN" in text and "missing: DANN / target test" in text
    assert "no results" in results.format_results(results.results_table({}))


def test_select_notebooks_by_prefix():
    assert course_runner.select_notebooks(None) == list(course.NOTEBOOKS)
    assert course_runner.select_notebooks(["02", "05"]) == [
        "02_crnn_baseline",
        "05_domain_shift_analysis",
    ]
    with pytest.raises(ValueError, match="matches none"):
        course_runner.select_notebooks(["9"])


def test_strip_heavy_outputs_removes_audio_and_widget_state():
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    audio = nbformat.v4.new_output(
        "display_data",
        data={"text/html": '<audio controls><source src="data:audio/wav;base64,UklGR"/></audio>'},
    )
    widget = nbformat.v4.new_output(
        "display_data",
        data={
            "text/plain": "VBox()",
            course_runner.WIDGET_MIME: {"model_id": "abc", "version_major": 2},
        },
    )
    progress = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/plain": text,
                course_runner.WIDGET_MIME: {"model_id": "bar", "version_major": 2},
            },
        )
        for text in (
            "epoch 1/2:   0%|          | 0/2 [00:00<?, ?it/s]",
            "features: 0file [00:00, ?file/s]",
        )
    ]
    table = nbformat.v4.new_output("execute_result", data={"text/plain": "a table"})
    text = nbformat.v4.new_output("stream", text="hello\n")
    cell = nbformat.v4.new_code_cell("x", outputs=[audio, *progress, widget, table, text])
    cell.metadata["execution"] = {"iopub.status.busy": "2026-11-24T10:00:00"}
    notebook.cells = [cell, nbformat.v4.new_markdown_cell("# title")]

    counts = course_runner.strip_heavy_outputs(notebook)

    assert counts == {"audio": 1, "widgets": 1, "progress_bars": 2}
    assert "widgets" not in notebook.metadata
    assert "execution" not in notebook.cells[0].metadata
    outputs = notebook.cells[0].outputs
    assert outputs[0].data == {"text/plain": course_runner.AUDIO_PLACEHOLDER}
    assert outputs[1].data == {"text/plain": course_runner.WIDGET_PLACEHOLDER}
    assert outputs[2].data == {"text/plain": "a table"}
    assert outputs[3].text == "hello\n"
    nbformat.validate(notebook)


def test_course_command_rejects_unknown_notebooks_with_exit_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path))
    assert (
        course_runner.main(["--profile", "tiny", "--only", "99", "--notebooks", str(tmp_path)]) == 2
    )
    assert "matches none" in capsys.readouterr().err
    assert course_runner.main(["--profile", "tiny", "--jobs", "0"]) == 2
    assert "--jobs must be 1 or more (got 0)" in capsys.readouterr().err


# ----- serlib.analysis ---------------------------------------------------------------------------


def test_acoustic_cues_follow_pitch_and_loudness():
    low = analysis.acoustic_cues(harmonic_tone(120.0, amplitude=0.1))
    high = analysis.acoustic_cues(harmonic_tone(240.0, amplitude=0.5))
    assert set(low) == set(analysis.CUES)
    assert low["f0_median_hz"] == pytest.approx(120.0, rel=0.03)
    assert high["f0_median_hz"] == pytest.approx(240.0, rel=0.03)
    assert high["loudness_db"] - low["loudness_db"] == pytest.approx(20 * np.log10(5), abs=0.5)
    assert low["f0_range_st"] < 1.0  # a steady tone has no pitch range
    assert high["centroid_hz"] > low["centroid_hz"]
    with pytest.raises(ValueError, match="mono clip"):
        analysis.acoustic_cues(np.zeros((2, 4000)))


def test_acoustic_cues_of_silence_have_no_pitch():
    cues = analysis.acoustic_cues(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert np.isnan(cues["f0_median_hz"]) and cues["voiced_fraction"] == 0.0


def test_cue_table_samples_per_class_and_reports_unreadable_clips(tmp_path):
    rows = []
    for index, (label, f0) in enumerate([("angry", 220.0), ("angry", 230.0), ("sad", 110.0)]):
        path = tmp_path / f"clip{index}.wav"
        sf.write(path, harmonic_tone(f0, seconds=0.5), SAMPLE_RATE)
        rows.append(
            {"path": str(path), "corpus": "c", "speaker": "s1", "gender": "F", "label": label}
        )
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"")
    rows.append(
        {"path": str(broken), "corpus": "c", "speaker": "s2", "gender": "M", "label": "sad"}
    )
    table = pd.DataFrame(rows)

    cues = analysis.cue_table(table, per_class=5, seed=0)

    assert sorted(cues["label"]) == ["angry", "angry", "sad"]
    assert cues.attrs["skipped"] == [(str(broken), "empty file")]
    summary = analysis.cue_summary(cues)
    assert summary.loc[("c", "angry"), "f0_median_hz"] > summary.loc[("c", "sad"), "f0_median_hz"]
    one_each = analysis.sample_per_class(table, per_class=1, seed=0)
    assert sorted(one_each["label"]) == ["angry", "sad"]
    with pytest.raises(ValueError, match="per_class"):
        analysis.sample_per_class(table, per_class=0)


def test_clip_durations_read_headers_and_flag_bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(24000, dtype=np.float32), 48000)
    bad = tmp_path / "bad.wav"
    bad.write_text("version https://git-lfs.github.com/spec/v1\n")
    durations, problems = analysis.clip_durations([good, bad])
    assert durations[0] == pytest.approx(0.5) and np.isnan(durations[1])
    assert problems == [
        (str(bad), "git-lfs pointer, not audio (run `git lfs pull` in the corpus folder)")
    ]


def test_project_2d_is_seeded_and_separates_clusters():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 1, (15, 8)), rng.normal(8, 1, (15, 8))])
    first = analysis.project_2d(points, seed=1)
    assert first.shape == (30, 2)
    np.testing.assert_allclose(first, analysis.project_2d(points, seed=1))
    centre_a, centre_b = first[:15].mean(axis=0), first[15:].mean(axis=0)
    spread = max(first[:15].std(axis=0).max(), first[15:].std(axis=0).max())
    assert np.linalg.norm(centre_a - centre_b) > 2 * spread
    with pytest.raises(ValueError, match="at least 5"):
        analysis.project_2d(points[:3])
    with pytest.raises(ValueError, match="NaN"):
        analysis.project_2d(np.full((6, 2), np.nan))


def test_recall_shift_sorts_the_worst_loss_first():
    shift = analysis.recall_shift(
        {"angry": 0.8, "sad": 0.6, "happy": 0.5}, {"angry": 0.7, "sad": 0.1, "happy": None}
    )
    assert shift["class"].tolist() == ["sad", "angry", "happy"]
    assert shift.loc[0, "shift"] == pytest.approx(-0.5)
    assert np.isnan(shift.loc[2, "target"]) and np.isnan(shift.loc[2, "shift"])


def fake_corpora(tmp_path: Path) -> dict[str, course.CourseCorpus]:
    for name in ("iemocap", "ravdess"):
        (tmp_path / name).mkdir(exist_ok=True)
    return {
        "source": course.CourseCorpus("iemocap", tmp_path / "iemocap", True),
        "target": course.CourseCorpus("ravdess", tmp_path / "ravdess", True),
    }


def recording_trainer(calls: list):
    """A stand-in for ``train_run`` that records its call and writes the config.json the real one
    writes (``make_settings(...).to_dict()``) and a metrics.json naming the call."""

    def train(model, source, out, *, target, profile, seed, resume, **options):
        calls.append(((model, source, out), {"target": target, "profile": profile, "seed": seed,
                                            "resume": resume, **options}))  # fmt: skip
        settings = make_settings(
            model, source, target=target, profile=profile, seed=seed, **options
        )
        (out / "checkpoint").mkdir(parents=True, exist_ok=True)
        for name in ("model.safetensors", "history.csv"):
            if not (out / name).is_file():  # a resumed run keeps what it was given
                (out / name).write_text(f"written by call {len(calls)}")
        (out / "config.json").write_text(json.dumps(settings.to_dict()))
        (out / "metrics.json").write_text(json.dumps({"call": len(calls)}))

    return train


def test_course_run_reuses_resumes_or_retrains(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    calls = []
    monkeypatch.setattr(course, "train_run", recording_trainer(calls))
    corpora = fake_corpora(tmp_path)
    folder = course.run_dir("crnn-seed5", "tiny", 2, course.data_tag(corpora))

    assert (
        course.course_run("crnn", corpora, "tiny", 2, name="crnn-seed5", scheme="seed5") == folder
    )
    args, kwargs = calls[-1]
    assert args == ("crnn", corpora["source"].spec, folder)
    assert kwargs == {
        "target": corpora["target"].spec,
        "profile": "tiny",
        "seed": 2,
        "resume": False,
        "scheme": "seed5",
    }
    course.course_run("crnn", corpora, "tiny", 2, name="crnn-seed5", scheme="seed5")
    assert len(calls) == 1  # the same run, finished: reused
    assert "reusing the finished run in $SERLIB_HOME/runs/" in capsys.readouterr().out
    (folder / "metrics.json").unlink()  # interrupted: same settings, no metrics
    course.course_run("crnn", corpora, "tiny", 2, name="crnn-seed5", scheme="seed5")
    assert len(calls) == 2 and calls[-1][1]["resume"] is True
    assert "resuming" in capsys.readouterr().out
    course.course_run("crnn", corpora, "tiny", 2, name="crnn-seed5", scheme="seed5", retrain=True)
    assert len(calls) == 3 and calls[-1][1]["resume"] is False


def test_course_run_refuses_a_folder_that_holds_another_run(monkeypatch, tmp_path):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    calls = []
    monkeypatch.setattr(course, "train_run", recording_trainer(calls))
    corpora = fake_corpora(tmp_path)
    folder = course.course_run("dann", corpora, "tiny", 0)
    with pytest.raises(UserError) as refused:
        course.course_run("dann", corpora, "tiny", 0, adversary="confusion", epochs=3)
    message = str(refused.value)
    assert "\n" not in message and "holds another run" in message
    assert "adversary 'reversal' -> 'confusion'" in message and "epochs 2 -> 3" in message
    assert "retrain=True" in message and "SERLIB_RETRAIN=1" in message
    assert len(calls) == 1  # nothing trained, the old results not returned
    assert course.course_run("dann", corpora, "tiny", 0, adversary="confusion", retrain=True)
    assert len(calls) == 2 and calls[-1][1]["adversary"] == "confusion"
    assert json.loads((folder / "metrics.json").read_text()) == {"call": 2}


def test_course_run_trains_the_oracle_on_the_target(monkeypatch, tmp_path):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    calls = []
    monkeypatch.setattr(course, "train_run", recording_trainer(calls))
    corpora = fake_corpora(tmp_path)
    folder = course.course_run("crnn", corpora, "tiny", 0, name="oracle", oracle=True)
    assert calls[-1][0] == ("crnn", corpora["target"].spec, folder)
    assert calls[-1][1]["target"] == corpora["target"].spec
    assert json.loads((folder / "config.json").read_text())["oracle"] is True
    plan = course.COURSE_RUN_PLAN["oracle"]
    assert plan.oracle and "upper bound" in plan.label


def test_settings_differences_read_old_run_formats_as_the_same_run(tmp_path):
    fake_corpora(tmp_path)
    asked = make_settings("crnn", f"iemocap:{tmp_path / 'iemocap'}", profile="tiny").to_dict()
    format_1 = {**asked, "train": asked["train"] | asked["input_settings"]}
    del format_1["input_settings"]  # format 1 kept the input settings inside "train"
    assert course.settings_differences(format_1, asked) == []
    other = {**asked, "scheme": "seed5", "encoder": "tiny"}
    assert course.settings_differences(other, asked) == [
        "scheme 'seed5' -> '4class'",
        "encoder 'tiny' -> None",
    ]


def test_a_changed_option_never_returns_the_old_results(monkeypatch, tmp_path, capsys):
    """End to end on tiny tone corpora: train, ask for other settings, retrain."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tone_corpora import write_emodb, write_ravdess

    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    corpora = {
        "source": course.CourseCorpus("ravdess", write_ravdess(tmp_path / "ravdess"), True),
        "target": course.CourseCorpus("emodb", write_emodb(tmp_path / "emodb"), True),
    }
    folder = course.course_run("crnn", corpora, "tiny", 0, epochs=1, progress=False)
    assert len(results.read_history(folder)) == 1
    assert course.course_run("crnn", corpora, "tiny", 0, epochs=1, progress=False) == folder
    with pytest.raises(UserError, match="epochs 1 -> 2"):
        course.course_run("crnn", corpora, "tiny", 0, epochs=2, progress=False)
    course.course_run("crnn", corpora, "tiny", 0, epochs=2, progress=False, retrain=True)
    assert len(results.read_history(folder)) == 2
    assert json.loads((folder / "config.json").read_text())["train"]["epochs"] == 2


def test_runs_that_differ_only_in_scoring_reuse_the_trained_weights(monkeypatch, tmp_path):
    """End to end on tiny tone corpora: AdaBN and target statistics score the CRNN's weights."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tone_corpora import write_emodb, write_ravdess

    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    corpora = {
        "source": course.CourseCorpus("ravdess", write_ravdess(tmp_path / "ravdess"), True),
        "target": course.CourseCorpus("emodb", write_emodb(tmp_path / "emodb"), True),
    }
    setup = course.CourseSetup("tiny", 0, corpora)
    names = ["crnn-target-batchnorm", "crnn-target-statistics"]
    folders = course.ensure_runs(names, setup)  # trains the CRNN first, once
    crnn = course.run_dir("crnn", "tiny", 0, setup.tag)
    trained = json.loads((crnn / "metrics.json").read_text())
    for name in names:
        folder = folders[name]
        assert (folder / "model.safetensors").read_bytes() == (
            crnn / "model.safetensors"
        ).read_bytes()
        assert (folder / "history.csv").read_text() == (crnn / "history.csv").read_text()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["source_test"]["ua"] == trained["source_test"]["ua"]
        assert metrics["selection"] == trained["selection"]
    assert (folders["crnn-target-batchnorm"] / "target_batchnorm.safetensors").is_file()
    saved = json.loads((folders["crnn-target-statistics"] / "config.json").read_text())
    assert saved["input_settings"]["target_statistics"] is True


def test_only_scoring_options_let_a_run_reuse_another_runs_training(tmp_path):
    corpora = fake_corpora(tmp_path)
    source, target = corpora["source"].spec, corpora["target"].spec

    def asked(model: str, **options) -> dict:
        return make_settings(model, source, target=target, profile="tiny", **options).to_dict()

    crnn = asked("crnn")
    assert trains_the_same(crnn, asked("crnn", target_statistics=True))
    assert trains_the_same(crnn, asked("crnn", target_batchnorm=True))
    assert not trains_the_same(crnn, asked("crnn", epochs=3))
    assert not trains_the_same(crnn, asked("crnn", seed=1))
    assert not trains_the_same(asked("dann"), asked("dann", target_batchnorm=True))


def test_ensure_runs_trains_only_what_is_missing_and_says_how_long(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    calls = []
    monkeypatch.setattr(course, "train_run", recording_trainer(calls))
    setup = course.CourseSetup("tiny", 0, fake_corpora(tmp_path))
    folders = course.ensure_runs(["crnn", "crnn-target-statistics", "oracle"], setup)
    assert list(folders) == ["crnn", "crnn-target-statistics", "oracle"]
    assert folders["oracle"] == course.run_dir("oracle", "tiny", 0, setup.tag)
    assert [call[1].get("target_statistics") for call in calls] == [None, True, None]
    assert [call[1]["resume"] for call in calls] == [False, True, False]  # scored, not trained
    variant = folders["crnn-target-statistics"]
    assert (variant / "model.safetensors").read_text() == "written by call 1"  # the CRNN's
    printed = capsys.readouterr().out
    assert "training CRNN (crnn): a few seconds (tiny profile)" in printed
    assert "scoring CRNN + target statistics (crnn-target-statistics)" in printed
    assert "training Oracle CRNN (upper bound) (oracle)" in printed
    again = course.ensure_runs(["crnn", "dann"], setup)  # crnn is there: only dann trains
    assert len(calls) == 4 and calls[-1][0][0] == "dann" and set(again) == {"crnn", "dann"}
    assert "training CRNN" not in capsys.readouterr().out
    course.ensure_runs(["w2v2"], setup)
    assert calls[-1][1]["encoder"] == "tiny" and calls[-1][1]["w2v2_mode"] == "frozen"
    with pytest.raises(UserError, match="unknown course runs \\['cnn'\\]"):
        course.ensure_runs(["cnn"], setup)


def test_every_course_run_has_a_plan_and_a_workshop_time():
    assert set(course.COURSE_RUNS) == set(course.COURSE_RUN_PLAN)
    assert set(course.WORKSHOP_SECONDS) <= set(course.COURSE_RUN_PLAN)
    for name in course.COURSE_RUN_PLAN:
        said = course.expected_time(name, "workshop")
        if name in course.WORKSHOP_SECONDS:  # measured: said in minutes
            seconds = course.WORKSHOP_SECONDS[name]
            expected = "under a minute" if seconds < 60 else f"about {round(seconds / 60)} min"
            assert said.startswith(expected) and "on a 2-core laptop" in said
        else:  # never a guess
            assert said == "unmeasured on a laptop"
    assert course.expected_time("w2v2", "workshop", "facebook/wav2vec2-base") == (
        "unmeasured on a laptop"  # only the tiny encoder was timed
    )
    assert "GPU" in course.expected_time("crnn", "full")
    assert "seconds" in course.expected_time("crnn", "tiny")


def test_setup_can_keep_everything_in_another_home(monkeypatch, tmp_path, capsys):
    for name, variable in (("IEMOCAP", "SERLIB_IEMOCAP_DIR"), ("RAVDESS", "SERLIB_RAVDESS_DIR")):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(variable, str(tmp_path / name))
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "local"))
    drive = tmp_path / "drive" / "serlib"
    setup = course.setup("tiny", home=drive)
    assert os.environ["SERLIB_HOME"] == str(drive) and drive.is_dir()
    assert course.run_dir("crnn", "tiny", 0, setup.tag).is_relative_to(drive)
    assert f"SERLIB_HOME: {drive}" in capsys.readouterr().out


def test_the_study_numbers_come_from_one_place():
    table = course.study_table()
    assert table.index.tolist() == ["CRNN", "DANN-CRNN", "Wav2Vec2+DANN"]
    assert table.to_numpy().tolist() == [[44, 14], [42, 24], [42, 27]]
    assert "seed5" in table.attrs["note"] and "transductive" in table.attrs["note"]
    changes = course.study_changes()
    assert {"labels", "adaptation", "metric"} <= set(changes.index)
    assert course.STUDY.citation is None  # none is recorded in the repository: none is invented
    assert "published study" in course.STUDY.description


def test_results_table_does_not_call_an_oracles_source_sets_missing(tmp_path):
    oracle = write_run(tmp_path / "oracle", {"target_test": scores(0.8)})
    (oracle / "config.json").write_text(json.dumps({"oracle": True}))
    crnn = write_run(tmp_path / "crnn", {"target_test": scores(0.3)})
    table = results.results_table({"Oracle": oracle, "CRNN": crnn})
    assert table.attrs["missing"] == ["CRNN / source test"]


# ----- serlib.colab ------------------------------------------------------------------------------


def test_every_notebook_names_only_the_one_repository_setting():
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    expected = {colab.repository_path(colab.REPO_URL)}
    for name in course.NOTEBOOKS:
        for suffix in (".py", ".ipynb"):
            text = (notebooks / f"{name}{suffix}").read_text(encoding="utf-8")
            assert colab.repository_links(text) == expected, f"{name}{suffix}"
            assert colab.install_requirement() in text, f"{name}{suffix}: no Colab install line"


def test_one_command_points_the_course_at_another_repository(tmp_path, capsys):
    checkout = tmp_path / "checkout"
    (checkout / "serlib").mkdir(parents=True)
    (checkout / "notebooks").mkdir()
    (checkout / "docs").mkdir()
    old = colab.REPO_URL
    (checkout / "serlib" / "colab.py").write_text(f'REPO_URL = "{old}"\n')
    cell = f'REPO_URL = "{old}"\npip install "serlib @ git+{old}"\n{course.colab_url("02_crnn_baseline")}'
    (checkout / "notebooks" / "02_crnn_baseline.py").write_text(cell)
    (checkout / "docs" / "course.md").write_text(f"[badge]({course.colab_url('03_dann')})\n")
    (checkout / "docs" / "other.md").write_text("nothing to change\n")

    assert (
        colab.main(["--repo", "https://github.com/me/my-serlib", "--checkout", str(checkout)]) == 0
    )
    assert "3 files now name" in capsys.readouterr().out
    notebook = (checkout / "notebooks" / "02_crnn_baseline.py").read_text()
    assert colab.repository_links(notebook) == {"me/my-serlib"}
    assert 'REPO_URL = "https://github.com/me/my-serlib"' in notebook
    assert (
        "github/me/my-serlib/blob/main/notebooks/03_dann.ipynb"
        in (checkout / "docs" / "course.md").read_text()
    )
    assert colab.main(["--repo", "https://gitlab.com/me/x", "--checkout", str(checkout)]) == 2
    assert "not a GitHub address" in capsys.readouterr().err


def test_course_run_dirs_name_models_and_mark_the_tiny_encoder(monkeypatch, tmp_path):
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path))
    tag = "iemocap-synth-ravdess-synth"
    w2v2 = course.run_dir("w2v2", "tiny", 0, tag)
    w2v2.mkdir(parents=True)
    (w2v2 / "config.json").write_text(json.dumps({"encoder": "tiny"}))
    assert list(course.course_run_dirs("tiny", 0, tag)) == [
        "CRNN",
        "DANN-CRNN",
        "W2V2 (tiny encoder)",
        "W2V2-DANN",
    ]
    course.run_dir("dann-transductive", "tiny", 0, tag).mkdir()
    assert "DANN-CRNN, transductive" in course.course_run_dirs("tiny", 0, tag)
    assert course.short_path(w2v2) == f"$SERLIB_HOME/runs/{w2v2.parent.name}/w2v2"
    assert course.short_path("/elsewhere/x") == "/elsewhere/x"


def test_save_and_show_writes_the_figure_it_displays(monkeypatch, tmp_path, capsys):
    import matplotlib.pyplot as plt

    monkeypatch.setenv(course.FIGURES_ENV, str(tmp_path / "figs"))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert course.save_and_show(fig, "01_line") is None
    assert (tmp_path / "figs" / "01_line.png").stat().st_size > 1000
    assert not plt.fignum_exists(fig.number)


def test_setup_checks_seeds_finds_corpora_and_prints_them(monkeypatch, tmp_path, capsys):
    import torch

    for name, variable in (("IEMOCAP", "SERLIB_IEMOCAP_DIR"), ("RAVDESS", "SERLIB_RAVDESS_DIR")):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(variable, str(tmp_path / name))
    monkeypatch.delitem(__import__("sys").modules, "google.colab", raising=False)

    setup = course.setup("tiny", 7)
    first_draw = torch.rand(3)
    course.setup("tiny", 7, target_root=tmp_path / "RAVDESS")
    assert torch.equal(torch.rand(3), first_draw)  # the same seed, the same initial weights

    assert (setup.profile, setup.seed, setup.tag) == ("tiny", 7, "iemocap-ravdess")
    assert setup.corpora["target"] == course.CourseCorpus(
        "ravdess", (tmp_path / "RAVDESS").resolve(), synthetic=False
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [
        f"source: {setup.corpora['source'].describe()}",
        f"target: {setup.corpora['target'].describe()}",
    ]
    with pytest.raises(ValueError, match="unknown profile"):
        course.setup("huge")


def test_setup_enables_the_widget_manager_in_colab(monkeypatch, tmp_path):
    from types import SimpleNamespace

    enabled = []
    colab = SimpleNamespace(
        output=SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(1))
    )
    monkeypatch.setitem(__import__("sys").modules, "google.colab", colab)
    for variable in ("SERLIB_IEMOCAP_DIR", "SERLIB_RAVDESS_DIR"):
        monkeypatch.setenv(variable, str(tmp_path))
    course.setup("tiny")
    assert enabled == [1]


def test_pick_w2v2_mode_follows_the_gpu_unless_told(monkeypatch):
    import torch

    monkeypatch.delenv("SERLIB_W2V2_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert course.pick_w2v2_mode(None, "workshop") == "finetune"
    assert course.pick_w2v2_mode(None, "tiny") == "frozen"  # the tiny profile must take seconds
    assert course.pick_w2v2_mode("frozen", "full") == "frozen"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert course.pick_w2v2_mode(None, "full") == "frozen"
    monkeypatch.setenv("SERLIB_W2V2_MODE", "finetune")
    assert course.pick_w2v2_mode(None, "workshop") == "finetune"
    with pytest.raises(UserError, match="unknown Wav2Vec2 mode"):
        course.pick_w2v2_mode("half", "workshop")


def test_pick_encoder_falls_back_to_the_tiny_encoder_and_says_so(tmp_path):
    name, note = course.pick_encoder(None, "tiny")
    assert name == "tiny" and "not results" in note
    name, note = course.pick_encoder(str(tmp_path / "missing"), "workshop")
    assert name == "tiny" and note.startswith("FALLBACK") and "does not exist" in note
    folder = tmp_path / "wav2vec2-base"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    name, note = course.pick_encoder(str(folder), "workshop")
    assert name == str(folder) and "pretrained encoder" in note and "from folder" in note
