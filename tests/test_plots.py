"""The figures (serlib.plots, serlib.data_plots, serlib.result_plots, serlib.figures): right
content, the course's colours, text that fits, one clear error on bad input, small PNGs on disk."""

from __future__ import annotations

import io

import librosa
import matplotlib
import matplotlib.colors
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import PIL.Image
import pytest
from matplotlib.figure import Figure

from serlib import data_plots, figures, plots, result_plots
from serlib.errors import UserError
from serlib.figures import EMOTION_PALETTE, SOURCE_COLOUR, TARGET_COLOUR

LABELS = ["angry", "happy", "neutral", "sad"]
CONFUSION = np.array([[8, 1, 1, 0], [2, 5, 3, 0], [0, 1, 9, 0], [0, 0, 4, 6]])


def texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def hex_colour(colour) -> str:
    return matplotlib.colors.to_hex(colour).upper()


def bar_colours(ax) -> list[str]:
    return [hex_colour(patch.get_facecolor()) for patch in ax.patches]


def legend_labels(ax) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def test_confusion_matrix_counts_and_normalised():
    fig = plots.plot_confusion_matrix(CONFUSION, LABELS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert texts(ax)[:4] == ["8", "1", "1", "0"]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == LABELS
    assert ax.get_ylabel() == "true" and ax.get_xlabel() == "predicted"

    fig = plots.plot_confusion_matrix(CONFUSION, LABELS, normalise=True, title="target")
    ax = fig.axes[0]
    assert texts(ax)[:4] == ["0.80", "0.10", "0.10", "0.00"]
    assert texts(ax)[-1] == "0.60"
    assert ax.get_title() == "target"


def test_confusion_matrix_draws_into_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    plt.close(fig)
    assert plots.plot_confusion_matrix(CONFUSION, LABELS, ax=left) is fig
    assert plots.plot_confusion_matrix(CONFUSION, LABELS, ax=right, normalise=True) is fig
    assert texts(right)[0] == "0.80"


def test_plots_do_not_stay_registered_with_pyplot():
    before = plt.get_fignums()
    plots.plot_confusion_matrix(CONFUSION, LABELS)
    plots.plot_grl_schedule()
    assert plt.get_fignums() == before


def test_row_normalise_keeps_empty_rows_at_zero():
    values = plots.row_normalise(np.array([[0, 0], [1, 3]]))
    np.testing.assert_allclose(values, [[0, 0], [0.25, 0.75]])


@pytest.mark.parametrize(
    ("matrix", "labels", "message"),
    [
        (np.ones((2, 3)), ["a", "b"], "square"),
        (np.ones((2, 2)), ["a", "b", "c"], "3 labels"),
        (np.ones((2, 2)), ["a", "a"], "distinct"),
        (-np.ones((2, 2)), ["a", "b"], "non-negative"),
    ],
)
def test_confusion_matrix_rejects_bad_input(matrix, labels, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_confusion_matrix(matrix, labels)


def history_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4],
            "train_loss": [1.3, 1.0, 0.8, 0.7],
            "val_loss": [1.2, 1.1, 1.0, 1.05],
            "val_ua": [0.4, 0.55, 0.62, 0.6],
            "domain_acc": [0.9, 0.7, 0.6, 0.55],
            "grl_coefficient": [0.46, 0.7, 0.7, 0.7],
            "lr_heads": [3e-4, 3e-4, 2.1e-4, 2.1e-4],
            "seconds": [12.0, 11.5, 11.9, 12.2],
        }
    )


def test_learning_curves_group_columns_into_panels():
    fig = plots.plot_learning_curves(history_table())
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "score", "gradient reversal", "learning rate"]  # no "seconds"
    loss_ax, score_ax, grl_ax, lr_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines[:2]] == ["train_loss", "val_loss"]
    assert [line.get_label() for line in score_ax.lines[:2]] == ["val_ua", "domain_acc"]
    assert grl_ax.lines[0].get_label() == "grl_coefficient"
    assert lr_ax.get_yscale() == "log"
    best = [line for line in score_ax.lines if line.get_label() == "best val_ua"]
    assert best and best[0].get_xdata()[0] == 3


def test_learning_curves_leave_out_a_flat_learning_rate_and_say_its_value():
    history = history_table().assign(lr_heads=1e-3, lr_encoder=2e-5)
    fig = plots.plot_learning_curves(history, title="CRNN on the source")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "score", "gradient reversal"]
    heading = fig.get_suptitle()
    assert heading.startswith("CRNN on the source\n")
    assert "learning rate stayed at" in heading
    assert "lr_heads = 0.001" in heading and "lr_encoder = 2e-05" in heading
    # a changing schedule keeps its panel, even when another schedule panel is flat
    assert "gradient reversal" not in heading


def test_learning_curves_keep_a_flat_score_and_a_lone_flat_panel():
    stuck = history_table().assign(val_ua=0.25, grl_coefficient=0.7, lr_heads=1e-3)
    fig = plots.plot_learning_curves(stuck)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "score"]  # a flat score is a finding
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), 0.25)
    assert "gradient reversal stayed at grl_coefficient = 0.7" in fig.get_suptitle()
    only_flat = plots.plot_learning_curves(stuck, columns=["lr_heads"])
    assert [ax.get_title() for ax in only_flat.axes] == ["learning rate"]  # never an empty figure
    assert plots.constant_value(np.array([np.nan, 3e-4, 3e-4])) == pytest.approx(3e-4)
    assert plots.constant_value(np.array([3e-4, 2e-4])) is None


def test_learning_curves_errors():
    with pytest.raises(ValueError, match="non-empty"):
        plots.plot_learning_curves(pd.DataFrame())
    with pytest.raises(ValueError, match="no column"):
        plots.plot_learning_curves(history_table(), columns=["val_wa"])


def test_clip_figure_and_log_mel_thumbnail():
    rate = 16000
    time = np.arange(rate) / rate
    wave = (0.3 * np.sin(2 * np.pi * 200 * time)).astype(np.float32)
    fig = data_plots.plot_clip(wave, rate, title="a tone")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert list(panels) == [
        "waveform",
        "spectrogram (linear frequency)",
        "log-mel spectrogram (128 bands)",
    ]
    assert panels["spectrogram (linear frequency)"].images[0].get_array().shape[0] == 513
    mel = panels["log-mel spectrogram (128 bands)"].images[0].get_array()
    assert mel.shape == (128, 1 + rate // 256)
    # the tone's energy sits in the low mel bands, not the top ones
    assert mel[:40].mean() > mel[-40:].mean()

    assert fig.get_suptitle() == "a tone"
    assert data_plots.plot_clip(wave, rate).get_suptitle() == ""

    png = data_plots.log_mel_png(wave, rate)
    image = matplotlib.image.imread(io.BytesIO(png))
    assert image.shape[:2] == (128, 1 + rate // 256)
    with pytest.raises(ValueError, match="1-D"):
        data_plots.plot_clip(np.zeros((2, 100)), rate)
    with pytest.raises(ValueError, match="NaN"):
        data_plots.log_mel_png(np.array([0.0, np.nan, 0.0]), rate)


def clip_pair(rate: int = 16000) -> dict[str, np.ndarray]:
    """A loud source tone with noise and a quiet target tone: the quiet one must look darker."""
    time = np.arange(rate) / rate
    noise = 0.01 * np.random.default_rng(0).normal(size=rate)
    return {
        "source (iemocap): angry": (0.5 * np.sin(2 * np.pi * 220 * time) + noise).astype(
            np.float32
        ),
        "target (ravdess): angry": (0.05 * np.sin(2 * np.pi * 300 * time[: rate // 2])).astype(
            np.float32
        ),
    }


def test_two_clips_share_one_db_scale_and_one_colour_bar_per_row():
    fig = data_plots.plot_clips(clip_pair(), 16000, title="one emotion, two domains")
    panels = [ax for ax in fig.axes if ax.get_title()]  # row by row, source column first
    source_wave, target_wave = panels[:2]
    assert source_wave.get_title().startswith("source")
    assert target_wave.get_title().startswith("target")
    assert hex_colour(source_wave.lines[0].get_color()) == SOURCE_COLOUR
    assert hex_colour(target_wave.lines[0].get_color()) == TARGET_COLOUR
    assert source_wave.get_ylim() == target_wave.get_ylim()  # loudness compares by eye
    assert {ax.get_xlim() for ax in panels} == {(0.0, 1.0)}  # one time axis for every panel
    images: dict[str, list] = {}
    for ax in panels[2:]:
        images.setdefault(ax.get_title(), []).append(ax.images[0])
    assert list(images) == ["spectrogram (linear frequency)", "log-mel spectrogram (128 bands)"]
    for row in images.values():  # per row: both clips on one colour scale
        assert len(row) == 2 and row[0].get_clim() == row[1].get_clim()
        low, high = row[0].get_clim()
        assert high - low == pytest.approx(80.0)  # the loudest cell down top_db
        assert high == pytest.approx(max(float(image.get_array().max()) for image in row))
    mel_source, mel_target = images["log-mel spectrogram (128 bands)"]
    assert mel_target.get_array().mean() < mel_source.get_array().mean()  # quieter looks darker
    colour_bars = [ax for ax in fig.axes if ax.get_ylabel() == "dB"]
    assert len(colour_bars) == 2
    assert figures.overflowing_texts(fig) == []


def test_mel_axis_is_labelled_in_hz_at_the_band_centres():
    fig = data_plots.plot_clips(clip_pair(), 16000)
    mel_ax = next(ax for ax in fig.axes if ax.get_title().startswith("log-mel"))
    assert mel_ax.get_ylabel() == "frequency (Hz, mel scale)"
    positions = mel_ax.get_yticks()
    labels = [int(tick.get_text()) for tick in mel_ax.get_yticklabels()]
    assert labels == [250, 500, 1000, 2000, 4000]  # 8000 Hz lies above the top band's centre
    centres = librosa.mel_frequencies(128 + 2, fmin=0.0, fmax=8000.0)[1:-1]
    # band i spans [i, i + 1] on the image: read each tick's height back as a frequency
    np.testing.assert_allclose(np.interp(positions, np.arange(128) + 0.5, centres), labels)
    above = int(np.searchsorted(centres, 1000.0))  # first band centred above 1 kHz
    assert above - 0.5 <= positions[labels.index(1000)] <= above + 0.5  # between the two centres
    with pytest.raises(UserError, match="at least one clip"):
        data_plots.plot_clips({}, 16000)


def test_class_balance_counts_tables_and_series():
    table = pd.DataFrame({"label": ["angry"] * 3 + ["neutral"] * 6 + ["sad"]})
    counts = {"angry": 5, "happy": 5, "neutral": 5, "sad": 5}
    fig = data_plots.plot_class_balance({"iemocap 4class": table, "ravdess 4class": counts})
    left, right = fig.axes
    assert [patch.get_height() for patch in left.patches] == [3, 6, 1]  # its own classes
    assert [patch.get_height() for patch in right.patches] == [5, 5, 5, 5]
    assert left.get_title() == "iemocap 4class (n=10)"
    assert texts(left) == ["30%", "60%", "10%"]
    assert bar_colours(left) == [
        EMOTION_PALETTE[name].upper() for name in ("angry", "neutral", "sad")
    ]
    fixed = data_plots.plot_class_balance({"iemocap": table}, labels=LABELS).axes[0]
    assert [patch.get_height() for patch in fixed.patches] == [3, 0, 6, 1]
    assert [tick.get_text() for tick in fixed.get_xticklabels()] == LABELS
    four = data_plots.plot_class_balance({name: counts for name in "abcd"})
    assert len(four.axes) == 4 and four.get_size_inches()[0] < 12  # 2 x 2, not 4 in a row
    with pytest.raises(UserError, match="no column 'emotion'"):
        data_plots.plot_class_balance({"x": table}, column="emotion")


def test_recall_shift_bars_and_chance_line():
    source = plots.per_class_recall(CONFUSION, LABELS)
    assert source == pytest.approx({"angry": 0.8, "happy": 0.5, "neutral": 0.9, "sad": 0.6})
    target = {"angry": 0.3, "happy": 0.1, "neutral": 0.95, "sad": 0.2}
    fig = plots.plot_recall_shift({"source": source, "target": target}, labels=LABELS)
    ax = fig.axes[0]
    heights = [round(patch.get_height(), 2) for patch in ax.patches]
    assert heights == [0.8, 0.5, 0.9, 0.6, 0.3, 0.1, 0.95, 0.2]
    chance = [line for line in ax.lines if line.get_label() == "chance"]
    assert chance[0].get_ydata()[0] == pytest.approx(0.25)


def test_recall_shift_from_metrics_dicts_and_analysis_table():
    # metrics.json writes None for a class without clips
    source = {"angry": 0.8, "happy": 0.5, "neutral": 0.9, "sad": None}
    fig = plots.plot_recall_shift({"source": source}, labels=LABELS)
    assert [round(p.get_height(), 2) for p in fig.axes[0].patches] == [0.8, 0.5, 0.9, 0.0]
    table = pd.DataFrame(
        {
            "class": ["happy", "angry"],
            "source": [0.5, 0.8],
            "target": [0.1, 0.6],
            "shift": [-0.4, -0.2],
        }
    )
    ax = plots.plot_recall_shift(table).axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["happy", "angry"]
    assert [round(p.get_height(), 2) for p in ax.patches] == [0.5, 0.8, 0.1, 0.6]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chance", "source", "target"]
    assert bar_colours(ax) == [SOURCE_COLOUR] * 2 + [TARGET_COLOUR] * 2


def test_recall_shift_two_models_keep_the_domain_colours_and_hatch_the_second():
    recalls = {
        f"{model} {domain}": dict.fromkeys(LABELS, 0.5)
        for model in ("CRNN", "DANN")
        for domain in ("source", "target")
    }
    ax = plots.plot_recall_shift(recalls, labels=LABELS).axes[0]
    colours = bar_colours(ax)
    hatches = [patch.get_hatch() for patch in ax.patches]
    assert colours[:4] == [SOURCE_COLOUR] * 4 and colours[12:] == [TARGET_COLOUR] * 4
    assert hatches[:4] == [None] * 4 and hatches[8:12] == ["//"] * 4  # DANN source


def test_embedding_two_panels_with_group_counts():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 2))
    domain = ["source"] * 20 + ["target"] * 10
    emotion = (LABELS * 8)[:30]
    fig = plots.plot_embedding(points, domain, emotion)
    by_domain, by_emotion = fig.axes[:2]
    assert [t.get_text() for t in by_domain.get_legend().get_texts()] == [
        "source (20)",
        "target (10)",
    ]
    assert len(by_emotion.collections) == 4
    assert [hex_colour(c.get_facecolor()[0]) for c in by_domain.collections] == [
        SOURCE_COLOUR,
        TARGET_COLOUR,
    ]
    emotion_colours = [hex_colour(c.get_facecolor()[0]) for c in by_emotion.collections]
    assert emotion_colours == [EMOTION_PALETTE[name].upper() for name in LABELS]
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        plots.plot_embedding(np.zeros((5, 3)), ["a"] * 5, ["b"] * 5)
    with pytest.raises(ValueError, match="domain has 4 entries"):
        plots.plot_embedding(points, domain[:4], emotion)


def results_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["CRNN", "CRNN", "DANN-CRNN", "DANN-CRNN"],
            "set": ["source test", "target test", "source test", "target test"],
            "ua": [0.71, 0.35, 0.70, 0.48],
            "wa": [0.69, 0.36, 0.68, 0.47],
            "macro_f1": [0.70, 0.30, 0.69, 0.45],
        }
    )


def reference_lines(ax) -> dict[str, object]:
    handles, labels = ax.get_legend_handles_labels()
    return dict(zip(labels, handles, strict=True))


def test_results_bars_per_model_in_the_pair_colours_with_values():
    fig = result_plots.plot_results_bars(results_table(), chance=0.25, oracle=0.62)
    ax = fig.axes[0]
    heights = [round(patch.get_height(), 2) for patch in ax.patches]
    assert heights == [0.71, 0.70, 0.35, 0.48]  # source bars of both models, then target bars
    assert bar_colours(ax) == [SOURCE_COLOUR] * 2 + [TARGET_COLOUR] * 2
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["CRNN", "DANN-CRNN"]
    assert texts(ax) == ["71.0", "70.0", "35.0", "48.0"]
    assert ax.get_ylabel() == "UA (%)"
    assert figures.overflowing_texts(fig) == []


def test_results_bars_draw_chance_dashed_and_the_oracle_dotted_and_labelled():
    ax = result_plots.plot_results_bars(results_table(), chance=0.25, oracle=0.62).axes[0]
    lines = reference_lines(ax)
    chance = lines["chance"]
    assert chance.get_linestyle()[0][1] is not None  # dashed
    np.testing.assert_allclose([segment[0][1] for segment in chance.get_segments()], 0.25)
    oracle = lines["oracle (upper bound, uses target labels)"]
    assert oracle.get_linestyle() == ":"
    np.testing.assert_allclose(oracle.get_ydata(), 0.62)
    no_oracle = result_plots.plot_results_bars(results_table(), chance=0.25, oracle=None)
    assert list(reference_lines(no_oracle.axes[0])) == ["chance", "source test", "target test"]


def test_results_bars_chance_per_model_missing_slots_and_other_metrics():
    table = pd.concat(
        [
            results_table(),
            pd.DataFrame({"model": ["seed5 CRNN"], "set": ["target test"], "ua": [0.3]}),
        ]
    )
    fig = result_plots.plot_results_bars(
        table,
        metric="ua",
        chance={"CRNN": 0.25, "DANN-CRNN": 0.25, "seed5 CRNN": 0.2},
        oracle=None,
        title="UA per model",
        note="seed5: 5 classes, so chance is lower; " * 4,
    )
    ax = fig.axes[0]
    chance = reference_lines(ax)["chance"]
    np.testing.assert_allclose(
        [segment[0][1] for segment in chance.get_segments()], [0.25, 0.25, 0.2]
    )
    assert "no score" in texts(ax)  # seed5 CRNN has no source test score
    assert "\n" in fig.get_suptitle() and figures.overflowing_texts(fig) == []  # wrapped, not cut
    macro = result_plots.plot_results_bars(
        results_table(), metric="macro_f1", chance=0.25, oracle=None
    )
    assert macro.axes[0].get_ylabel() == "macro-F1 (%)"
    hatched = result_plots.plot_results_bars(
        pd.concat(
            [
                results_table(),
                results_table().query("set == 'target test'").assign(set="target all"),
            ]
        ),
        chance=0.25,
        oracle=None,
        sets=("source test", "target test", "target all"),
    )
    assert {patch.get_hatch() for patch in hatched.axes[0].patches[4:]} == {"//"}


@pytest.mark.parametrize(
    ("table", "options", "message"),
    [
        (results_table().drop(columns="ua"), {}, "no column"),
        (results_table().iloc[:0], {}, "empty"),
        (pd.concat([results_table(), results_table().iloc[:1]]), {}, "more than one row"),
        (results_table(), {"sets": ("target all",)}, "no rows for set"),
        (results_table(), {"chance": 25}, "fraction in"),
        (results_table(), {"chance": {"CRNN": 0.25}}, "no value for model"),
        (results_table(), {"oracle": 62}, "oracle must be"),
    ],
)
def test_results_bars_reject_bad_input(table, options, message):
    arguments = {"chance": 0.25, "oracle": 0.62, **options}
    with pytest.raises(UserError, match=message):
        result_plots.plot_results_bars(table, **arguments)


def cue_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "corpus": corpus,
            "label": label,
            "f0_median_hz": rng.normal(200, 30),
            "loudness_db": rng.normal(-25, 4),
        }
        for corpus, per_label in (("iemocap", 6), ("ravdess", 4))
        for label in ("angry", "sad")
        for _ in range(per_label)
    ]
    table = pd.DataFrame(rows)
    table.loc[0, "f0_median_hz"] = np.nan  # the pitch tracker found no voiced frame in one clip
    return table


def test_cue_boxes_say_how_many_clips_each_box_holds():
    fig = data_plots.plot_cue_boxes(
        cue_table(), source="iemocap", target="ravdess", shown=("f0_median_hz", "loudness_db")
    )
    pitch, loudness = fig.axes
    assert pitch.get_title() == "F0 median (Hz)"
    # boxes at angry-source, sad-source, angry-target, sad-target; NaN leaves one box short
    assert texts(pitch) == ["n=5", "n=6", "n=4", "n=4"]
    assert texts(loudness) == ["n=6", "n=6", "n=4", "n=4"]
    box_colours = [hex_colour(patch.get_facecolor()) for patch in pitch.patches]
    assert box_colours == [SOURCE_COLOUR] * 2 + [TARGET_COLOUR] * 2
    assert [hex_colour(text.get_color()) for text in pitch.texts] == box_colours
    assert [tick.get_text() for tick in pitch.get_xticklabels()] == ["angry", "sad"]
    assert [text.get_text() for text in fig.legends[0].get_texts()] == [
        "source (iemocap)",
        "target (ravdess)",
    ]
    assert figures.overflowing_texts(fig) == []


def test_cue_boxes_and_durations_errors():
    with pytest.raises(UserError, match="different corpora"):
        data_plots.plot_cue_boxes(cue_table(), source="iemocap", target="iemocap")
    with pytest.raises(UserError, match=r"no clips of corpus \['emodb'\]"):
        data_plots.plot_cue_boxes(cue_table(), source="iemocap", target="emodb")
    with pytest.raises(UserError, match="no column"):
        data_plots.plot_cue_boxes(cue_table(), source="iemocap", target="ravdess", shown=("pitch",))
    with pytest.raises(UserError, match="no column 'duration'"):
        data_plots.plot_durations(cue_table(), source="iemocap", target="ravdess")


def test_durations_overlay_source_and_target_in_their_colours():
    durations = pd.DataFrame(
        {"corpus": ["iemocap"] * 5 + ["ravdess"] * 3, "duration": [1, 2, 3, np.nan, 5, 3, 3.5, 4]}
    )
    ax = data_plots.plot_durations(durations, source="iemocap", target="ravdess").axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "source (iemocap), n=4",
        "target (ravdess), n=3",
    ]
    colours = {hex_colour(patch.get_facecolor()) for patch in ax.patches}
    assert colours == {SOURCE_COLOUR, TARGET_COLOUR}
    assert sum(patch.get_height() for patch in ax.patches) == 7


def test_course_colours_keep_domains_and_emotions_apart():
    domains = {SOURCE_COLOUR.upper(), TARGET_COLOUR.upper()}
    assert len(domains) == 2
    assert not domains & {colour.upper() for colour in EMOTION_PALETTE.values()}
    assert not domains & {colour.upper() for colour in figures.EXTRA_COLOURS}
    native = figures.emotion_colours(["ang", "anger", "hap", "exc", "ps", "oth"])
    assert native["ang"] == native["anger"] == EMOTION_PALETTE["angry"]
    assert native["exc"] == EMOTION_PALETTE["excited"]
    assert [native["ps"], native["oth"]] == list(figures.EXTRA_COLOURS[:2])  # unknown: in order
    assert figures.domain_of("target test") == "target"
    assert figures.domain_of("DANN source") == "source"
    assert figures.domain_of("source_test") == "source"
    assert figures.domain_of("sources of error") is None


def test_long_text_is_wrapped_to_fit_and_overflow_is_detected():
    note = "FALLBACK: tiny random encoder (not pretrained); its scores are not results. " * 2
    fig, axes = figures.new_figure(figsize=(4, 3))
    fig.text(0.01, 0.01, note, fontsize=10, va="bottom")
    assert figures.overflowing_texts(fig) == [note]
    wrapped = figures.wrap_text(note, 4 * 0.98, fontsize=10)
    assert wrapped.replace("\n", " ").split() == note.split()  # nothing dropped, only broken
    fig, axes = figures.new_figure(figsize=(4, 3))
    fig.text(0.01, 0.01, wrapped, fontsize=10, va="bottom")
    assert figures.overflowing_texts(fig) == []


def test_grl_schedule_ramp_and_cap():
    fig = plots.plot_grl_schedule(history=history_table())
    ax = fig.axes[0]
    ramp, uncapped, logged = ax.lines[:3]
    progress, values = ramp.get_xdata(), ramp.get_ydata()
    expected = np.minimum(2 / (1 + np.exp(-10 * progress)) - 1, 0.7)
    np.testing.assert_allclose(values, expected)
    assert values[0] == 0.0 and max(values) == pytest.approx(0.7)
    assert max(uncapped.get_ydata()) > 0.99
    np.testing.assert_allclose(logged.get_xdata(), [0.25, 0.5, 0.75, 1.0])
    stopped_early = plots.plot_grl_schedule(history=history_table(), epochs=8).axes[0].lines[2]
    np.testing.assert_allclose(stopped_early.get_xdata(), [0.125, 0.25, 0.375, 0.5])
    custom = plots.plot_grl_schedule(schedule=lambda p: 0.5 * p)
    assert len(custom.axes[0].lines) == 1
    assert custom.axes[0].lines[0].get_ydata()[-1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no column 'grl_coeff'"):
        plots.plot_grl_schedule(history=history_table(), column="grl_coeff")


def test_domain_accuracy_plots_one_line_per_run_against_the_half_line():
    swinging = pd.DataFrame({"epoch": [1, 2, 3], "train_domain_acc": [0.5, 0.1, 0.9]})
    steady = pd.DataFrame({"epoch": [1, 2], "train_domain_acc": [0.7, 0.6]})
    fig = plots.plot_domain_accuracy({"reversal": swinging, "confusion": steady})
    half, *runs = fig.axes[0].lines
    np.testing.assert_allclose(half.get_ydata(), [0.5, 0.5])
    assert [line.get_label() for line in runs] == ["reversal", "confusion"]
    np.testing.assert_allclose(runs[0].get_ydata(), [0.5, 0.1, 0.9])
    with pytest.raises(ValueError, match="not a DANN run"):
        plots.plot_domain_accuracy({"crnn": history_table()})
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_domain_accuracy({})


def test_save_figure_writes_a_small_png(tmp_path):
    fig = plots.plot_confusion_matrix(CONFUSION, LABELS)
    path = figures.save_figure(fig, "cm_crnn_target", tmp_path / "figures")
    assert path == tmp_path / "figures" / "cm_crnn_target.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert path.stat().st_size < 30_000
    assert PIL.Image.open(path).mode == "P"  # palette PNG: small enough to commit
    assert sorted(p.name for p in path.parent.iterdir()) == ["cm_crnn_target.png"]  # no temp left
    assert figures.save_figure(fig, "again.png", tmp_path).name == "again.png"
    with pytest.raises(UserError, match="plain file name"):
        figures.save_figure(fig, "../escape", tmp_path)
    with pytest.raises(TypeError, match="Figure"):
        figures.save_figure("not a figure", "x", tmp_path)
