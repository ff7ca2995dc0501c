"""The course's runs trained ahead in worker processes, and what the notebooks then show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serlib import course
from serlib.course_plan import COURSE_RUN_PLAN, NOTEBOOK_RUNS, WORKSHOP_SECONDS
from serlib.course_training import (
    compute_features_once,
    ready_to_start,
    runs_trained_ahead,
    train_ahead,
)
from serlib.errors import UserError
from serlib.results import read_history, read_metrics, trained_epochs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

ENSURE_RUNS = re.compile(r"ensure_runs\(\s*\[([^\]]*)\]")


def test_notebook_runs_are_the_runs_each_notebook_asks_for():
    for name in course.NOTEBOOKS:
        script = (NOTEBOOKS / f"{name}.py").read_text()
        asked = {
            run.strip().strip("\"'")
            for listed in ENSURE_RUNS.findall(script)
            for run in listed.split(",")
            if run.strip()
        }
        assert asked == set(NOTEBOOK_RUNS[name]), name


def test_runs_trained_ahead_are_the_crnn_family_longest_first():
    ahead = runs_trained_ahead(list(COURSE_RUN_PLAN))
    assert set(ahead) == {
        name for name, run in COURSE_RUN_PLAN.items() if run.model in ("crnn", "dann")
    }
    assert not any(name.startswith("w2v2") for name in ahead)  # notebook 04 chooses the encoder
    seconds = [WORKSHOP_SECONDS.get(name, 0) for name in ahead]
    assert seconds == sorted(seconds, reverse=True)
    assert runs_trained_ahead(NOTEBOOK_RUNS["02_crnn_baseline"]) == ["crnn", "oracle"]
    assert runs_trained_ahead(NOTEBOOK_RUNS["01_data_exploration"]) == []


def test_a_scoring_run_waits_for_the_run_whose_weights_it_scores():
    planned = ["crnn", "crnn-target-statistics", "oracle"]
    assert not ready_to_start("crnn-target-statistics", set(), planned)  # crnn queued or training
    assert ready_to_start("crnn-target-statistics", {"crnn"}, planned)
    assert ready_to_start("crnn-target-statistics", set(), ["crnn-target-statistics"])  # not ahead
    assert ready_to_start("oracle", set(), planned)


@pytest.fixture(scope="module")
def tiny_course(tmp_path_factory):
    """SERLIB_HOME with the tiny synthetic corpora, and the set-up the notebooks would make."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERLIB_HOME", str(home))
        for variable in ("SERLIB_IEMOCAP_DIR", "SERLIB_RAVDESS_DIR"):
            patch.delenv(variable, raising=False)
        yield course.CourseSetup("tiny", 0, course.course_corpora("tiny"))


def test_runs_trained_ahead_in_two_processes_are_what_the_notebooks_reuse(
    tiny_course, tmp_path, capsys
):
    names = runs_trained_ahead(["crnn", "crnn-target-statistics", "oracle"])
    assert compute_features_once(tiny_course, progress=False) > 0
    lines: list[str] = []
    seconds = train_ahead(names, tiny_course, 2, tmp_path / "logs", log=lines.append)
    assert set(seconds) == set(names) and len(lines) == 6  # each run: started, done
    assert lines.index(f"  crnn: done in {seconds['crnn']:.0f} s") < next(
        i for i, line in enumerate(lines) if "crnn-target-statistics" in line
    )  # scored after the CRNN finished, not trained a second time
    for name in names:
        assert (tmp_path / "logs" / f"{name}.log").is_file()
    folders = {name: course.run_dir(name, "tiny", 0, tiny_course.tag) for name in names}
    crnn, scored = folders["crnn"], folders["crnn-target-statistics"]
    assert (scored / "model.safetensors").read_bytes() == (crnn / "model.safetensors").read_bytes()
    assert (
        "scoring the weights of" in (tmp_path / "logs" / "crnn-target-statistics.log").read_text()
    )
    before = {name: read_metrics(folder) for name, folder in folders.items()}

    capsys.readouterr()
    again = course.ensure_runs(names, tiny_course)  # what notebooks 02 and 05 call
    printed = capsys.readouterr().out
    assert again == folders
    assert {name: read_metrics(folder) for name, folder in folders.items()} == before
    assert "training" not in printed and printed.count("reusing the finished run in") == 3
    history = read_history(crnn)
    for epoch, val_ua in zip(history["epoch"], history["val_ua"], strict=True):
        assert re.search(rf"epoch +{epoch} .*val UA {val_ua:.3f}", printed)
    course.ensure_runs(["crnn-target-statistics"], tiny_course, quiet=True)  # a later notebook's
    assert capsys.readouterr().out.splitlines() == [
        f"reusing the finished run in {course.short_path(folder)} (RETRAIN = True trains it again)"
        for folder in (crnn, scored)
    ]


def test_a_failing_run_names_its_log_and_raises_its_own_error(tiny_course, tmp_path):
    broken = course.CourseSetup("no-such-profile", 0, tiny_course.corpora)
    lines: list[str] = []
    with pytest.raises(UserError, match="no-such-profile"):
        train_ahead(["crnn"], broken, 1, tmp_path / "logs", log=lines.append)
    assert lines[-1] == "  crnn failed; what it printed: " + str(tmp_path / "logs" / "crnn.log")


def test_trained_epochs_read_back_the_stars_and_the_early_stop(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "history.csv").write_text(
        "epoch,train_loss,val_ua,val_wa,seconds\n1,1.0,0.5,0.5,2.0\n2,0.8,0.4,0.4,2.0\n"
        "3,0.6,0.6,0.6,2.0\n4,0.5,0.55,0.5,2.0\n"
    )
    (folder / "metrics.json").write_text('{"selection": {"stopped_early": true}}')
    (folder / "config.json").write_text('{"train": {"patience": 1}}')
    lines = trained_epochs(folder)
    assert [line.endswith("*") for line in lines[:4]] == [True, False, True, False]
    assert lines[0] == "epoch   1  loss 1.000  val UA 0.500 WA 0.500  2.0s  *"
    assert lines[4] == "early stop: no better validation UA for 1 epochs"
    (folder / "metrics.json").write_text('{"selection": {"rule": "last epoch"}}')
    assert [line.endswith("*") for line in trained_epochs(folder)] == [True] * 4  # no early stop
    (folder / "history.csv").write_text("not a history\n")
    assert trained_epochs(folder)[0] == "(no readable history.csv in run)"
