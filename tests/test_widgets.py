"""The confusion explorer, driven headlessly: set the controls, click cells, check what is listed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import matplotlib
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.figures import CONFUSION_CMAP
from serlib.widgets import ConfusionExplorer, predictions_confusion, read_run_predictions

LABELS = ["angry", "happy", "neutral", "sad"]


def write_tone(path: Path, sample_rate: int = 16000, seconds: float = 0.3, channels: int = 1):
    """A short sine tone: enough audio for a log-mel image and a player."""
    time = np.arange(int(sample_rate * seconds)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * time).astype(np.float32)
    sf.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, sample_rate)
    return str(path)


def make_predictions(folder: Path, pairs: list[tuple[str, str]], prefix: str = "clip"):
    """A predictions table (one wav per row) whose (label, pred) pairs are given."""
    rows = []
    for index, (label, pred) in enumerate(pairs):
        path = write_tone(folder / f"{prefix}{index:02d}.wav")
        probabilities = dict.fromkeys(LABELS, 0.1)
        probabilities[pred] = 0.5 + 0.01 * index  # later clips are more confident
        total = sum(probabilities.values())
        row = {"path": path, "speaker": f"{index % 3:02d}", "label": label, "pred": pred}
        row.update({f"prob_{name}": value / total for name, value in probabilities.items()})
        rows.append(row)
    return pd.DataFrame(rows)


PAIRS_A = [
    ("angry", "angry"),
    ("angry", "angry"),
    ("angry", "sad"),
    ("happy", "happy"),
    ("happy", "angry"),
    ("neutral", "neutral"),
    ("neutral", "sad"),
    ("neutral", "sad"),
    ("sad", "sad"),
]
PAIRS_B = [("angry", "happy"), ("happy", "happy"), ("neutral", "neutral"), ("sad", "neutral")]


@pytest.fixture
def runs(tmp_path):
    return {
        "crnn": {
            "source_test": make_predictions(tmp_path, PAIRS_A, "a"),
            "target_test": make_predictions(tmp_path, PAIRS_B, "b"),
        },
        "dann": {"target_test": make_predictions(tmp_path, PAIRS_B[::-1], "c")},
    }


def expected_paths(table: pd.DataFrame, label: str, pred: str) -> set[str]:
    return set(table.loc[(table["label"] == label) & (table["pred"] == pred), "path"])


def test_click_lists_exactly_the_clips_of_that_cell(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    assert explorer.run == "crnn" and explorer.eval_set == "source_test"
    explorer.cell_buttons[("neutral", "sad")].click()
    assert explorer.selected_cell == ("neutral", "sad")
    assert set(explorer.listed_paths) == expected_paths(
        runs["crnn"]["source_test"], "neutral", "sad"
    )
    assert len(explorer.listed_paths) == 2
    # most confident first: the later clip has the higher probability for "sad"
    assert explorer.listed_paths[0].endswith("a07.wav")

    explorer.cell_buttons[("angry", "angry")].click()
    assert explorer.selected_cell == ("angry", "angry")
    assert set(explorer.listed_paths) == expected_paths(
        runs["crnn"]["source_test"], "angry", "angry"
    )


def test_listing_has_audio_and_log_mel_without_autoplay(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    explorer.cell_buttons[("angry", "sad")].click()
    rows = [row for row in explorer.clip_list.children if "serlib-clip" in row._dom_classes]
    assert len(rows) == 1
    players = [child for child in rows[0].children if "serlib-clip-audio" in child._dom_classes]
    images = [child for child in rows[0].children if "serlib-clip-logmel" in child._dom_classes]
    assert len(players) == 1 and len(images) == 1
    player = players[0]
    assert player.autoplay is False and player.loop is False and player.format == "wav"
    audio, rate = sf.read(io.BytesIO(player.value))
    assert rate == 16000 and audio.ndim == 1 and len(audio) == int(0.3 * 16000)
    assert bytes(images[0].value).startswith(b"\x89PNG")
    details = rows[0].children[0].value
    assert "a02.wav" in details and "speaker 02" in details and "<b>sad" in details
    assert "serlib-clip-list" in explorer.clip_list._dom_classes
    assert "serlib-confusion-explorer" in explorer.widget._dom_classes


def test_empty_cells_are_disabled_and_marked(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    empty = explorer.cell_buttons[("sad", "angry")]
    full = explorer.cell_buttons[("angry", "angry")]
    assert empty.disabled and "serlib-cm-cell-nonempty" not in empty._dom_classes
    assert not full.disabled and "serlib-cm-cell-nonempty" in full._dom_classes
    assert all("serlib-cm-cell" in button._dom_classes for button in explorer.cell_buttons.values())
    nonempty = sum(not button.disabled for button in explorer.cell_buttons.values())
    assert nonempty == len(set(PAIRS_A))


def test_counts_and_normalised_text(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    assert "9 clips, UA 62.5%, WA 55.6%" in explorer.summary.value
    assert explorer.cell_text("angry", "angry") == "2"
    assert explorer.cell_text("angry", "sad") == "1"
    assert explorer.cell_text("sad", "angry") == "0"
    explorer.mode_picker.value = "normalised"
    assert explorer.cell_text("angry", "angry") == "0.67"
    assert explorer.cell_text("angry", "sad") == "0.33"
    assert explorer.cell_text("sad", "sad") == "1.00"
    assert explorer.cell_buttons[("sad", "angry")].disabled
    explorer.mode_picker.value = "counts"
    assert explorer.cell_text("angry", "angry") == "2"


def test_cells_are_shaded_like_the_confusion_figures(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    explorer.mode_picker.value = "normalised"
    shades = matplotlib.colormaps[CONFUSION_CMAP]
    for cell, fraction in ((("sad", "sad"), 1.0), (("angry", "sad"), 1 / 3), (("sad", "angry"), 0)):
        expected = matplotlib.colors.to_hex(shades(0.08 + 0.85 * fraction))
        assert explorer.cell_buttons[cell].style.button_color == expected
    assert (
        explorer.cell_buttons[("sad", "sad")].style.text_color == "white"
    )  # dark cell, light text


def test_selection_survives_mode_change_and_is_marked(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    explorer.cell_buttons[("neutral", "sad")].click()
    explorer.cell_buttons[("happy", "angry")].click()
    selected = [
        key
        for key, b in explorer.cell_buttons.items()
        if "serlib-cm-cell-selected" in b._dom_classes
    ]
    assert selected == [("happy", "angry")]
    explorer.mode_picker.value = "normalised"
    assert explorer.selected_cell == ("happy", "angry")
    assert explorer.listed_paths == [runs["crnn"]["source_test"].loc[4, "path"]]


def test_changing_set_and_run_redraws_and_clears(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    explorer.cell_buttons[("angry", "angry")].click()
    explorer.set_picker.value = "target_test"
    assert explorer.selected_cell is None and explorer.listed_paths == []
    assert explorer.cell_text("angry", "angry") == "0"
    assert explorer.cell_text("angry", "happy") == "1"
    explorer.cell_buttons[("sad", "neutral")].click()
    assert explorer.listed_paths == [runs["crnn"]["target_test"].loc[3, "path"]]

    explorer.run_picker.value = "dann"
    assert explorer.set_picker.options == ("target_test",)
    assert explorer.eval_set == "target_test" and explorer.listed_paths == []
    explorer.cell_buttons[("sad", "neutral")].click()
    assert explorer.listed_paths == [runs["dann"]["target_test"].loc[0, "path"]]

    explorer.run_picker.value = "crnn"
    assert explorer.set_picker.options == ("source_test", "target_test")
    assert explorer.eval_set == "target_test"  # kept: the new run has the same set


def test_listing_is_capped_with_a_note(tmp_path):
    table = make_predictions(tmp_path, [("angry", "happy")] * 5)
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS, max_clips=2)
    explorer.cell_buttons[("angry", "happy")].click()
    assert len(explorer.listed_paths) == 2
    assert len(explorer.selected_clips) == 5
    assert "showing 2 of 5 clips" in explorer.clip_list.children[0].value
    clips = [row for row in explorer.clip_list.children if "serlib-clip" in row._dom_classes]
    assert len(clips) == 2


def test_unreadable_audio_is_reported_not_fatal(tmp_path):
    table = make_predictions(tmp_path, [("sad", "sad"), ("sad", "sad")])
    Path(table.loc[0, "path"]).write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS)
    explorer.cell_buttons[("sad", "sad")].click()
    explorer.cell_buttons[("sad", "sad")].click()  # a second look does not count it twice
    assert len(explorer.listed_paths) == 2
    assert [path for path, _ in explorer.skipped] == [table.loc[0, "path"]]
    assert "git-lfs" in explorer.skipped[0][1]
    errors = [
        child
        for row in explorer.clip_list.children
        for child in getattr(row, "children", ())
        if "serlib-clip-error" in child._dom_classes
    ]
    assert len(errors) == 1


def test_long_stereo_48k_clip_becomes_short_16k_mono(tmp_path):
    path = write_tone(tmp_path / "long.wav", sample_rate=48000, seconds=3.0, channels=2)
    table = pd.DataFrame({"path": [path], "label": ["sad"], "pred": ["sad"]})
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS, max_seconds=1.0)
    explorer.select_cell("sad", "sad")
    player = next(
        child
        for child in explorer.clip_list.children[1].children
        if "serlib-clip-audio" in child._dom_classes
    )
    audio, rate = sf.read(io.BytesIO(player.value))
    assert rate == 16000 and audio.ndim == 1 and len(audio) == 16000
    assert "no probabilities" in explorer.clip_list.children[1].children[0].value


def test_bad_input_gives_one_clear_error(tmp_path):
    good = make_predictions(tmp_path, PAIRS_B)
    with pytest.raises(ValueError, match="at least one run"):
        ConfusionExplorer({}, LABELS)
    with pytest.raises(ValueError, match="lack column"):
        ConfusionExplorer({"run": {"test": good.drop(columns="pred")}}, LABELS)
    with pytest.raises(ValueError, match=r"\['calm'\] are not among"):
        bad = good.assign(label=["calm", "happy", "neutral", "sad"])
        ConfusionExplorer({"run": {"test": bad}}, LABELS)
    with pytest.raises(ValueError, match="no rows"):
        ConfusionExplorer({"run": {"test": good.iloc[:0]}}, LABELS)
    with pytest.raises(ValueError, match="no evaluation sets"):
        ConfusionExplorer({"run": {}}, LABELS)
    with pytest.raises(ValueError, match="no labels given for run 'run'"):
        ConfusionExplorer({"run": {"test": good}}, {"other": LABELS})
    with pytest.raises(TypeError, match="list of class names"):
        ConfusionExplorer({"run": {"test": good}}, "angry")
    explorer = ConfusionExplorer({"run": {"test": good}}, LABELS)
    with pytest.raises(ValueError, match="not one of"):
        explorer.select_cell("calm", "sad")


def test_runs_with_different_label_schemes(tmp_path):
    four = make_predictions(tmp_path, PAIRS_B)
    five_labels = ["angry", "frustrated", "happy", "neutral", "sad"]
    five = pd.DataFrame(
        {"path": [write_tone(tmp_path / "f.wav")], "label": ["frustrated"], "pred": ["angry"]}
    )
    explorer = ConfusionExplorer(
        {"4class": {"test": four}, "seed5": {"test": five}},
        {"4class": LABELS, "seed5": five_labels},
    )
    assert len(explorer.cell_buttons) == 16
    explorer.run_picker.value = "seed5"
    assert len(explorer.cell_buttons) == 25
    assert len(explorer.matrix.children) == 36  # corner + 5 headers + 5 x (header + 5 cells)
    explorer.cell_buttons[("frustrated", "angry")].click()
    assert explorer.listed_paths == [str(tmp_path / "f.wav")]


def test_predictions_confusion_counts_rows_as_true(runs):
    table = runs["crnn"]["source_test"]
    confusion = predictions_confusion(table, LABELS)
    assert confusion.sum() == len(table)
    assert confusion[LABELS.index("neutral"), LABELS.index("sad")] == 2
    assert confusion[LABELS.index("sad"), LABELS.index("neutral")] == 0


def write_run(folder: Path, tables: dict[str, pd.DataFrame], labels=LABELS) -> Path:
    (folder / "predictions").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"labels": labels, "model": "crnn"}))
    for name, table in tables.items():
        table.to_csv(folder / "predictions" / f"{name}.csv", index=False)
    return folder


def test_from_run_dirs_reads_config_and_csvs(runs, tmp_path):
    first = write_run(tmp_path / "runs" / "crnn", runs["crnn"])
    second = write_run(tmp_path / "runs" / "dann", runs["dann"])
    explorer = ConfusionExplorer.from_run_dirs([first, second], max_clips=3)
    assert list(explorer.run_picker.options) == ["crnn", "dann"]
    assert list(explorer.set_picker.options) == ["source_test", "target_test"]
    # speakers like "02" stay strings, not the integer 2
    assert explorer.runs["crnn"]["source_test"]["speaker"].tolist()[:3] == ["00", "01", "02"]
    explorer.cell_buttons[("neutral", "sad")].click()
    assert set(explorer.listed_paths) == expected_paths(
        runs["crnn"]["source_test"], "neutral", "sad"
    )


def test_run_folder_sets_are_offered_test_sets_first(runs, tmp_path):
    table = runs["dann"]["target_test"]
    names = ["source_val", "zeta", "target_all", "target_test", "source_test"]
    folder = write_run(tmp_path / "run", dict.fromkeys(names, table))
    labels, sets = read_run_predictions(folder)
    assert labels == LABELS
    assert list(sets) == ["source_test", "target_test", "target_all", "source_val", "zeta"]


def test_from_run_dirs_errors(tmp_path, runs):
    with pytest.raises(ValueError, match="no config.json"):
        read_run_predictions(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"labels": LABELS}))
    with pytest.raises(ValueError, match="no predictions"):
        read_run_predictions(tmp_path)
    one = write_run(tmp_path / "a" / "run", runs["dann"])
    two = write_run(tmp_path / "b" / "run", runs["dann"])
    with pytest.raises(ValueError, match="share the name"):
        ConfusionExplorer.from_run_dirs([one, two])
    explorer = ConfusionExplorer.from_run_dirs({"first": one, "second": two})
    assert list(explorer.run_picker.options) == ["first", "second"]


def test_explorer_displays_as_its_widget(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    bundle = explorer._repr_mimebundle_()
    assert (
        bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    )


@pytest.mark.realdata
def test_real_ravdess_48k_clip_plays_at_16k():
    root = Path(os.environ.get("SERLIB_RAVDESS_DIR", "/nonexistent"))
    files = sorted(root.rglob("*.wav"))[:1] + sorted(root.rglob("*.flac"))[:1]
    if not files:
        pytest.skip("set SERLIB_RAVDESS_DIR to a folder with RAVDESS audio")
    table = pd.DataFrame({"path": [str(files[0])], "label": ["sad"], "pred": ["angry"]})
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS)
    explorer.select_cell("sad", "angry")
    assert explorer.skipped == []
    player = explorer.clip_list.children[1].children[-1]
    audio, rate = sf.read(io.BytesIO(player.value))
    assert rate == 16000 and audio.ndim == 1 and len(audio) > 16000
