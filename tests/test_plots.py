"""The figures (serlib.plots, serlib.data_plots, serlib.figures): right content, one clear error
on bad input, small PNGs on disk."""

from __future__ import annotations

import io

import matplotlib
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import PIL.Image
import pytest
from matplotlib.figure import Figure

from serlib import data_plots, figures, plots
from serlib.errors import UserError

LABELS = ["angry", "happy", "neutral", "sad"]
CONFUSION = np.array([[8, 1, 1, 0], [2, 5, 3, 0], [0, 1, 9, 0], [0, 0, 4, 6]])


def texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


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

    png = data_plots.log_mel_png(wave, rate)
    image = matplotlib.image.imread(io.BytesIO(png))
    assert image.shape[:2] == (128, 1 + rate // 256)
    with pytest.raises(ValueError, match="1-D"):
        data_plots.plot_clip(np.zeros((2, 100)), rate)
    with pytest.raises(ValueError, match="NaN"):
        data_plots.log_mel_png(np.array([0.0, np.nan, 0.0]), rate)


def test_class_balance_counts_tables_and_series():
    table = pd.DataFrame({"label": ["angry"] * 3 + ["neutral"] * 6 + ["sad"]})
    counts = {"angry": 5, "happy": 5, "neutral": 5, "sad": 5}
    fig = data_plots.plot_class_balance({"iemocap 4class": table, "ravdess 4class": counts})
    left, right = fig.axes
    assert [patch.get_height() for patch in left.patches] == [3, 6, 1]  # its own classes
    assert [patch.get_height() for patch in right.patches] == [5, 5, 5, 5]
    assert left.get_title() == "iemocap 4class (n=10)"
    assert texts(left) == ["30%", "60%", "10%"]
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


def test_results_table_cells():
    fig = plots.plot_results_table(results_table(), title="4class", note="target: test speakers")
    table = fig.axes[0].tables[0]
    cells = table.get_celld()
    assert cells[(0, 0)].get_text().get_text() == "source test\nUA"
    assert cells[(1, 0)].get_text().get_text() == "71.0"
    assert cells[(2, 3)].get_text().get_text() == "48.0"
    assert cells[(2, -1)].get_text().get_text() == "DANN-CRNN"
    assert "target: test speakers" in [text.get_text() for text in fig.texts]


def test_results_table_missing_values_and_errors():
    partial = results_table().iloc[:3]
    cells = plots.plot_results_table(partial).axes[0].tables[0].get_celld()
    assert cells[(2, 3)].get_text().get_text() == "-"
    with pytest.raises(ValueError, match="more than one row"):
        plots.plot_results_table(pd.concat([results_table(), results_table().iloc[:1]]))
    with pytest.raises(ValueError, match="macro_f1"):
        plots.plot_results_table(results_table().drop(columns="macro_f1"))


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
