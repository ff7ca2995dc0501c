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

from serlib.explorer_data import (
    CUE_TEXT,
    SynthParameters,
    biggest_confusion,
    cell_clips,
    clip_page,
    clip_under_run,
    confidence,
    describe_synth_parameters,
    only_speaker,
    page_count,
    per_speaker_recall,
    sort_clips,
    speakers_of,
)
from serlib.explorer_figure import plot_explorer
from serlib.figures import CONFUSION_CMAP, overflowing_texts
from serlib.synth import generate_corpus
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


def find(widget, css_class: str) -> list:
    """Every widget inside ``widget`` (itself included) that carries ``css_class``."""
    found = [widget] if css_class in getattr(widget, "_dom_classes", ()) else []
    for child in getattr(widget, "children", ()):
        found.extend(find(child, css_class))
    return found


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
    rows = find(explorer.clip_list, "serlib-clip")
    assert len(rows) == 1
    players = find(rows[0], "serlib-clip-audio")
    images = find(rows[0], "serlib-clip-logmel")
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
    framed = [key for key, b in explorer.cell_buttons.items() if b.layout.border_top]
    assert framed == [("happy", "angry")]  # a frame as well: a dark cell shows bold text poorly
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
    assert "showing 2 of 5 clips, clips 1-2" in explorer.clip_list.children[0].value
    assert len(find(explorer.clip_list, "serlib-clip")) == 2


def test_unreadable_audio_is_reported_not_fatal(tmp_path):
    table = make_predictions(tmp_path, [("sad", "sad"), ("sad", "sad")])
    Path(table.loc[0, "path"]).write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS)
    explorer.cell_buttons[("sad", "sad")].click()
    explorer.cell_buttons[("sad", "sad")].click()  # a second look does not count it twice
    assert len(explorer.listed_paths) == 2
    assert [path for path, _ in explorer.skipped] == [table.loc[0, "path"]]
    assert "git-lfs" in explorer.skipped[0][1]
    assert len(find(explorer.clip_list, "serlib-clip-error")) == 1
    assert len(find(explorer.clip_list, "serlib-clip-audio")) == 1


def test_long_stereo_48k_clip_becomes_short_16k_mono(tmp_path):
    path = write_tone(tmp_path / "long.wav", sample_rate=48000, seconds=3.0, channels=2)
    table = pd.DataFrame({"path": [path], "label": ["sad"], "pred": ["sad"]})
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS, max_seconds=1.0)
    explorer.select_cell("sad", "sad")
    [row] = find(explorer.clip_list, "serlib-clip")
    [player] = find(row, "serlib-clip-audio")
    audio, rate = sf.read(io.BytesIO(player.value))
    assert rate == 16000 and audio.ndim == 1 and len(audio) == 16000
    assert "no probabilities" in row.children[0].value


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
    [player] = find(explorer.clip_list, "serlib-clip-audio")
    audio, rate = sf.read(io.BytesIO(player.value))
    assert rate == 16000 and audio.ndim == 1 and len(audio) > 16000


# ----- paging, order, speakers --------------------------------------------------------------------


def test_pages_go_past_the_sixth_clip_and_back(tmp_path):
    table = make_predictions(tmp_path, [("angry", "happy")] * 14)
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS, max_clips=6)
    by_confidence = [table.loc[index, "path"] for index in range(13, -1, -1)]

    assert explorer.select_cell("angry", "happy") == by_confidence[:6]
    header = explorer.clip_list.children[0].value
    assert "showing 6 of 14 clips, clips 1-6" in header
    [pager] = find(explorer.clip_list, "serlib-pager")
    [previous] = find(pager, "serlib-page-previous")
    [forward] = find(pager, "serlib-page-next")
    assert previous.disabled and not forward.disabled
    assert "page 1 of 3" in pager.children[1].value

    forward.click()  # the button a student clicks
    assert explorer.page == 1 and explorer.listed_paths == by_confidence[6:12]
    assert "showing 6 of 14 clips, clips 7-12" in explorer.clip_list.children[0].value
    assert [
        len(find(row, "serlib-clip-audio")) for row in find(explorer.clip_list, "serlib-clip")
    ] == [1] * 6
    assert explorer.next_page() == by_confidence[12:]
    assert "showing 2 of 14 clips, clips 13-14" in explorer.clip_list.children[0].value
    assert forward.disabled and not previous.disabled
    assert explorer.next_page() == by_confidence[12:]  # the last page stops it
    assert explorer.previous_page() == by_confidence[6:12]
    assert len(explorer.selected_clips) == 14


def test_a_single_page_has_no_pager(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    explorer.select_cell("neutral", "sad")
    assert find(explorer.clip_list, "serlib-pager") == []
    assert "showing 2 of 2 clips" in explorer.clip_list.children[0].value


def test_order_picker_sorts_least_confident_first_and_random_by_seed(tmp_path):
    table = make_predictions(tmp_path, [("sad", "sad")] * 9)
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS, max_clips=4)
    explorer.select_cell("sad", "sad")
    paths = table["path"].tolist()
    assert explorer.listed_paths == paths[::-1][:4]
    explorer.next_page()
    explorer.order_picker.value = "least confident"
    assert explorer.page == 0 and explorer.listed_paths == paths[:4]

    explorer.order_picker.value = "random"
    shuffled = [paths[i] for i in np.random.default_rng(0).permutation(9)]
    assert explorer.listed_paths == shuffled[:4]
    assert list(explorer.selected_clips["path"]) == shuffled
    explorer.seed_picker.value = 1
    reshuffled = [paths[i] for i in np.random.default_rng(1).permutation(9)]
    assert list(explorer.selected_clips["path"]) == reshuffled != shuffled
    seeded = ConfusionExplorer({"run": {"test": table}}, LABELS, order="random", seed=1)
    assert list(seeded.select_cell("sad", "sad")) == reshuffled
    with pytest.raises(ValueError, match="order must be one of"):
        ConfusionExplorer({"run": {"test": table}}, LABELS, order="loudest")


def test_speaker_filter_restricts_matrix_and_listing(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    assert [value for _, value in explorer.speaker_picker.options] == ["", "00", "01", "02"]
    explorer.select_cell("angry", "angry")  # clips a00 (speaker 00) and a01 (speaker 01)
    assert len(explorer.listed_paths) == 2
    explorer.speaker_picker.value = "01"
    assert explorer.selected_cell == ("angry", "angry")  # the cell stays chosen
    assert explorer.listed_paths == [runs["crnn"]["source_test"].loc[1, "path"]]
    table = runs["crnn"]["source_test"]
    mine = table[table["speaker"] == "01"]
    assert explorer.confusion.sum() == len(mine) == 3
    assert "speaker 01: 3 clips" in explorer.summary.value
    assert sum(int(explorer.cell_text(t, p)) for t in LABELS for p in LABELS) == 3
    assert "font-weight:bold'><td style='text-align:left'>01" in explorer.speaker_recall.value
    explorer.speaker_picker.value = ""
    assert explorer.confusion.sum() == len(table)


def test_per_speaker_recall_is_shown_for_the_run(runs):
    explorer = ConfusionExplorer(runs, LABELS)
    recall = explorer.speaker_recall.value
    assert "crnn: UA" in recall and "recall angry" not in recall
    explorer.select_cell("angry", "sad")
    recall = explorer.speaker_recall.value
    assert "crnn: recall angry" in recall
    # speaker 02 has clips a02 (angry -> sad), a05 (neutral), a08 (sad): UA (0 + 1 + 1) / 3
    table = per_speaker_recall(runs["crnn"]["source_test"], LABELS)
    assert table.loc["02", "ua"] == pytest.approx(2 / 3)
    assert ">67%</td>" in recall


# ----- comparing two runs -------------------------------------------------------------------------

PAIRED = [  # (true, crnn's prediction, dann's prediction) for the same clips
    ("angry", "angry", "angry"),
    ("angry", "happy", "angry"),
    ("angry", "happy", "happy"),
    ("happy", "angry", "happy"),
    ("neutral", "sad", "neutral"),
    ("neutral", "sad", "sad"),
    ("sad", "sad", "sad"),
    ("sad", "neutral", "sad"),
]


@pytest.fixture
def paired(tmp_path):
    """Two runs that predicted the same target clips differently."""
    crnn = make_predictions(tmp_path, [(true, first) for true, first, _ in PAIRED], "t")
    dann = crnn.copy()
    dann["pred"] = [second for _, _, second in PAIRED]
    for label in LABELS:
        dann[f"prob_{label}"] = [0.7 if pred == label else 0.1 for pred in dann["pred"]]
    return {"crnn": {"target_test": crnn}, "dann": {"target_test": dann.iloc[::-1]}}


def test_compare_shows_both_matrices_and_the_cell_under_each_run(paired):
    explorer = ConfusionExplorer(paired, LABELS, compare="dann")
    assert explorer.compare == "dann" and explorer.shown_runs == ["crnn", "dann"]
    assert len(explorer.matrices.children) == 2 and len(explorer.listings.children) == 2
    crnn, dann = paired["crnn"]["target_test"], paired["dann"]["target_test"]
    assert explorer.cell_text("angry", "happy") == "2"
    assert explorer.compare_buttons[("angry", "happy")].description == "1"
    assert "dann on target_test: 8 clips" in explorer.grids[1].summary.value

    explorer.compare_buttons[("angry", "happy")].click()  # a click in either matrix
    assert explorer.selected_cell == ("angry", "happy")
    assert set(explorer.listed_paths) == expected_paths(crnn, "angry", "happy")
    assert explorer.compare_listed_paths == list(expected_paths(dann, "angry", "happy"))
    for column in explorer.listings.children:
        rows = find(column, "serlib-clip")
        assert rows and all(len(find(row, "serlib-clip-audio")) == 1 for row in rows)
        assert all(len(find(row, "serlib-clip-logmel")) == 1 for row in rows)
    assert "serlib-clip-list-compare" in explorer.listings.children[1]._dom_classes
    assert "<b>dann</b>" in explorer.listings.children[1].children[0].value
    for button in (explorer.cell_buttons, explorer.compare_buttons):
        assert "serlib-cm-cell-selected" in button[("angry", "happy")]._dom_classes


def test_each_clip_says_what_the_other_run_predicted(paired):
    explorer = ConfusionExplorer(paired, LABELS, compare="dann")
    explorer.select_cell("angry", "happy")
    notes = {
        find(row, "serlib-clip-other")[0].value: row
        for row in find(explorer.clip_list, "serlib-clip")
    }
    texts = sorted(notes)
    # crnn put clips t01 and t02 in (angry, happy); dann got t01 right (0.70) and t02 wrong
    assert len(texts) == 2
    assert any("under <b>dann</b>: predicted <b>angry</b> (0.70), right" in text for text in texts)
    assert any("under <b>dann</b>: predicted <b>happy</b> (0.70), wrong" in text for text in texts)
    [other_row] = find(explorer.listings.children[1], "serlib-clip")
    [back] = find(other_row, "serlib-clip-other")
    assert "under <b>crnn</b>: predicted <b>happy</b>" in back.value and "wrong" in back.value


def test_clip_missing_from_the_other_run_says_so(paired, tmp_path):
    paired["dann"]["target_test"] = paired["dann"]["target_test"].iloc[1:]  # drops clip t07
    explorer = ConfusionExplorer(paired, LABELS, compare="dann")
    explorer.select_cell("sad", "neutral")
    [note] = find(explorer.clip_list, "serlib-clip-other")
    assert "not in dann's target_test" in note.value


def test_compare_picker_offers_runs_of_the_same_labels(paired, tmp_path):
    five = ["angry", "frustrated", "happy", "neutral", "sad"]
    other = pd.DataFrame(
        {"path": [write_tone(tmp_path / "x.wav")], "label": ["sad"], "pred": ["sad"]}
    )
    runs = {**paired, "seed5": {"target_test": other}}
    labels = {"crnn": LABELS, "dann": LABELS, "seed5": five}
    explorer = ConfusionExplorer(runs, labels)
    assert explorer.compare is None and len(explorer.matrices.children) == 1
    assert [value for _, value in explorer.compare_picker.options] == ["", "dann"]
    explorer.compare_picker.value = "dann"  # what a student does in the browser
    assert len(explorer.matrices.children) == 2
    explorer.run_picker.value = "dann"
    assert [value for _, value in explorer.compare_picker.options] == ["", "crnn"]
    assert explorer.compare is None  # dann cannot be compared with itself
    explorer.run_picker.value = "seed5"
    assert [value for _, value in explorer.compare_picker.options] == [""]
    assert len(explorer.matrices.children) == 1 and len(explorer.cell_buttons) == 25
    with pytest.raises(ValueError, match="compare='seed5' uses labels"):
        ConfusionExplorer(runs, labels, compare="seed5")
    with pytest.raises(ValueError, match="is the first run"):
        ConfusionExplorer(runs, labels, compare="crnn")
    with pytest.raises(ValueError, match=r"not one of the runs \['crnn', 'dann', 'seed5'\]"):
        ConfusionExplorer(runs, labels, compare="oracle")


def test_compared_run_without_the_set_says_so(paired, runs):
    both = {"crnn": runs["crnn"], "dann": paired["dann"]}
    explorer = ConfusionExplorer(both, LABELS, compare="dann")
    assert explorer.eval_set == "source_test"
    assert "dann has no source_test predictions" in explorer.grids[1].summary.value
    explorer.select_cell("angry", "angry")
    assert "dann has no source_test" in explorer.listings.children[1].children[0].value
    assert explorer.compare_listed_paths == []
    explorer.set_picker.value = "target_test"
    assert "dann on target_test" in explorer.grids[1].summary.value


def test_from_run_dirs_passes_compare(paired, tmp_path):
    first = write_run(tmp_path / "runs" / "crnn", paired["crnn"])
    second = write_run(tmp_path / "runs" / "dann", paired["dann"])
    explorer = ConfusionExplorer.from_run_dirs({"crnn": first, "dann": second}, compare="dann")
    explorer.select_cell("neutral", "sad")
    assert len(explorer.listed_paths) == 2 and len(explorer.compare_listed_paths) == 1


# ----- how synthetic clips were made --------------------------------------------------------------


def write_synth_corpus(root: Path) -> list[str]:
    """A corpus folder shaped like ``serlib synth``'s: clips in sub-folders, metadata at the root."""
    (root / "Actor_01").mkdir(parents=True)
    paths = [write_tone(root / "Actor_01" / f"03-01-0{i}.wav") for i in (1, 5)]
    metadata = pd.DataFrame(
        {
            "path": ["Actor_01/03-01-01.wav", "Actor_01/03-01-05.wav"],
            "emotion": ["neutral", "angry"],
            "intensity": ["normal", "strong"],
            "intensity_value": [0.93, 1.234],
            "speaker": ["Actor_01", "Actor_01"],
            "cue_f0_shift_st": [0.0, 4.0],
            "cue_rate": [1.0, 1.1],
            "cue_loudness_db": [0.0, 6.5],
            "rec_snr_db": [30.0, 30.0],
        }
    )
    metadata.to_csv(root / "synth_metadata.csv", index=False)
    return paths


def test_synthetic_clips_show_their_cue_parameters(tmp_path):
    synthetic = write_synth_corpus(tmp_path / "synth" / "ravdess")
    (tmp_path / "real").mkdir()
    real = write_tone(tmp_path / "real" / "clip.wav")
    table = pd.DataFrame(
        {"path": [*synthetic, real], "label": ["angry"] * 3, "pred": ["angry", "angry", "sad"]}
    )
    explorer = ConfusionExplorer({"run": {"test": table}}, LABELS)
    explorer.select_cell("angry", "angry")
    notes = [note.value for note in find(explorer.clip_list, "serlib-clip-synth")]
    assert len(notes) == 2
    assert any(
        "made as angry (strong, 1.23): pitch +4.0 st, loudness +6.5 dB, rate x1.10" in n
        for n in notes
    )
    explorer.select_cell("angry", "sad")  # a real corpus has no metadata: nothing shown
    assert find(explorer.clip_list, "serlib-clip-synth") == []
    assert len(find(explorer.clip_list, "serlib-clip")) == 1


def test_synth_parameters_lookup_and_text(tmp_path):
    root = tmp_path / "corpus"
    paths = write_synth_corpus(root)
    lookup = SynthParameters()
    found = lookup.lookup(paths[1])
    assert found == {
        "emotion": "angry",
        "intensity": "strong",
        "intensity_value": 1.234,
        "cue_f0_shift_st": 4.0,
        "cue_rate": 1.1,
        "cue_loudness_db": 6.5,
    }
    assert lookup.corpus_root(paths[0]) == root
    assert lookup.lookup(root / "Actor_01" / "not-listed.wav") is None
    assert lookup.lookup(tmp_path / "elsewhere" / "x.wav") is None
    assert describe_synth_parameters(None) == ""
    assert describe_synth_parameters({"emotion": "sad"}) == "made as sad"
    (root / "synth_metadata.csv").write_text("not,a\n\x00broken")  # unreadable: nothing shown
    assert SynthParameters().lookup(paths[0]) is None


def test_synth_lookup_reads_the_real_corpus_writer(tmp_path):
    """Keys and columns as ``serlib synth`` writes them (IEMOCAP clips sit six folders deep)."""
    root = generate_corpus("iemocap", tmp_path / "iemocap", "tiny", seed=0, progress=False)
    metadata = pd.read_csv(root / "synth_metadata.csv")
    first = metadata.iloc[0]
    found = SynthParameters().lookup(root / first["path"])
    assert found["emotion"] == first["emotion"]
    assert found["cue_rate"] == pytest.approx(first["cue_rate"])
    assert set(CUE_TEXT) <= set(found)
    assert describe_synth_parameters(found).startswith(f"made as {first['emotion']}")


# ----- the data functions -------------------------------------------------------------------------


def test_cell_clips_and_speaker_filter(runs):
    table = runs["crnn"]["source_test"]
    assert set(cell_clips(table, "neutral", "sad")["path"]) == expected_paths(
        table, "neutral", "sad"
    )
    assert list(cell_clips(table, "neutral", "sad", speaker="00")["speaker"]) == ["00"]
    assert cell_clips(table, "neutral", "sad", speaker="nobody").empty
    assert speakers_of(table, runs["dann"]["target_test"]) == ["00", "01", "02"]
    assert only_speaker(table.drop(columns="speaker"), "00").empty


def test_sort_clips_orders_and_keeps_clips_without_probabilities_last():
    clips = pd.DataFrame(
        {
            "path": ["a", "b", "c", "d"],
            "label": ["sad"] * 4,
            "pred": ["sad"] * 4,
            "prob_sad": [0.4, np.nan, 0.9, 0.4],
        }
    )
    assert list(sort_clips(clips, "most confident")["path"]) == ["c", "a", "d", "b"]
    assert list(sort_clips(clips, "least confident")["path"]) == ["a", "d", "c", "b"]
    shuffled = list(sort_clips(clips, "random", seed=3)["path"])
    assert shuffled == list(np.array(["a", "b", "c", "d"])[np.random.default_rng(3).permutation(4)])
    assert sorted(shuffled) == ["a", "b", "c", "d"]
    assert list(sort_clips(clips.drop(columns="prob_sad"), "most confident")["path"]) == [
        "a",
        "b",
        "c",
        "d",
    ]
    assert confidence(clips).isna().tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="order must be one of"):
        sort_clips(clips, "alphabetical")


def test_pages_of_a_cell():
    clips = pd.DataFrame({"path": [f"clip{i:02d}" for i in range(14)]})
    assert page_count(14, 6) == 3 and page_count(12, 6) == 2 and page_count(0, 6) == 1
    assert list(clip_page(clips, 1, 6)["path"]) == [f"clip{i:02d}" for i in range(6, 12)]
    assert list(clip_page(clips, 2, 6)["path"]) == ["clip12", "clip13"]
    with pytest.raises(ValueError, match="page must be between 0 and 2"):
        clip_page(clips, 3, 6)
    with pytest.raises(ValueError, match="page_size must be at least 1"):
        page_count(3, 0)


def test_clip_under_run_finds_the_same_path(paired):
    dann = paired["dann"]["target_test"]
    path = paired["crnn"]["target_test"].loc[1, "path"]
    found = clip_under_run(dann, path)
    assert found["label"] == "angry" and found["pred"] == "angry"
    assert found["confidence"] == pytest.approx(0.7)
    assert clip_under_run(dann, "/no/such/clip.wav") is None


def test_per_speaker_recall_by_hand():
    table = pd.DataFrame(
        {
            "path": list("abcdef"),
            "speaker": ["s1", "s1", "s1", "s2", "s2", "s2"],
            "label": ["angry", "angry", "sad", "sad", "sad", "happy"],
            "pred": ["angry", "sad", "sad", "angry", "sad", "happy"],
        }
    )
    recall = per_speaker_recall(table, LABELS)
    assert list(recall.index) == ["s1", "s2"] and list(recall["clips"]) == [3, 3]
    assert recall.loc["s1", "angry"] == 0.5 and recall.loc["s1", "sad"] == 1.0
    assert np.isnan(recall.loc["s1", "happy"]) and np.isnan(recall.loc["s2", "neutral"])
    assert recall.loc["s1", "ua"] == pytest.approx(0.75)
    assert recall.loc["s2", "ua"] == pytest.approx((0.5 + 1.0) / 2)


def test_biggest_confusion_prefers_off_diagonal_cells():
    counts = np.array([[5, 1, 0], [3, 2, 0], [0, 3, 9]])
    assert biggest_confusion(counts, ["a", "b", "c"]) == ("b", "a")  # first of the tied 3s
    assert biggest_confusion(np.diag([2, 7, 1]), ["a", "b", "c"]) == ("b", "b")


# ----- the static picture -------------------------------------------------------------------------


def test_picture_shows_both_matrices_the_cell_and_its_clips(paired):
    explorer = ConfusionExplorer(paired, LABELS, compare="dann")
    explorer.select_cell("angry", "happy")
    fig = explorer.picture(clips=2)
    axes = fig.axes
    matrices = [ax for ax in axes if ax.get_title().startswith(("crnn on", "dann on"))]
    assert [ax.get_title() for ax in matrices] == ["crnn on target_test", "dann on target_test"]
    for ax in matrices:
        frames = [patch for patch in ax.patches if patch.get_edgecolor()[:3] != (0, 0, 0)]
        assert [(frame.get_x(), frame.get_y()) for frame in frames] == [(0.5, -0.5)]  # happy, angry
    clip_titles = [ax.get_title() for ax in axes if "under" in ax.get_title()]
    assert len(clip_titles) == 3  # crnn has 2 clips in the cell, dann 1
    assert sum("under dann: angry (0.70)" in title for title in clip_titles) == 1
    assert any("dann: no more clips" in text.get_text() for ax in axes for text in ax.texts)
    assert "true angry, predicted happy" in fig._suptitle.get_text()
    assert overflowing_texts(fig) == []  # no title or note cut off at the figure's edge


def test_picture_without_a_click_shows_the_biggest_confusion(runs):
    fig = plot_explorer({"crnn": runs["crnn"]["source_test"]}, LABELS, clips=1)
    assert "true neutral, predicted sad" in fig._suptitle.get_text()
    assert len(fig.axes) == 3  # matrix, its colour bar, one log-mel
    with pytest.raises(ValueError, match="one or two runs"):
        plot_explorer({}, LABELS)
    with pytest.raises(ValueError, match="'calm' is not one of"):
        plot_explorer({"crnn": runs["crnn"]["source_test"]}, LABELS, cell=("calm", "sad"))
