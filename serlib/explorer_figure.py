"""The confusion explorer as a static figure, for a notebook read on GitHub (no kernel, no widget).

``plot_explorer`` draws what the explorer shows for one cell: the confusion matrix of each run
(one, or two side by side) with that cell framed, and under each matrix the log-mels of the cell's
first clips in the explorer's order, each titled with its file, speaker, confidence and, when two
runs are shown, what the other run predicted for the same clip. A notebook calls it (or
``ConfusionExplorer.picture``) next to the widget, so the committed notebook shows the picture
while the widget needs a running kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from serlib.audio import AudioError, load_audio
from serlib.data_plots import label_mel_axis_in_hz, log_mel_db
from serlib.errors import UserError
from serlib.explorer_data import (
    ALL_SPEAKERS,
    biggest_confusion,
    cell_clips,
    check_order,
    check_predictions,
    clip_under_run,
    confidence,
    only_speaker,
    predictions_confusion,
    sort_clips,
)
from serlib.features import FrontendConfig
from serlib.figures import SPECTROGRAM_CMAP, new_figure, wrap_text
from serlib.plots import plot_confusion_matrix

HIGHLIGHT_COLOUR = "#D55E00"
"""The frame around the chosen cell (Okabe-Ito vermilion: visible on every shade of blue)."""

COLUMN_WIDTH = 4.8
CLIP_HEIGHT = 1.45


def plot_explorer(
    tables: Mapping[str, pd.DataFrame],
    labels: Sequence[str],
    *,
    cell: tuple[str, str] | None = None,
    clips: int = 3,
    order: str = "most confident",
    seed: int = 0,
    speaker: str = ALL_SPEAKERS,
    set_name: str = "",
    normalise: bool = False,
    sample_rate: int = 16000,
    max_seconds: float = 10.0,
) -> Figure:
    """One or two runs' confusion matrices with ``cell`` framed, and that cell's first clips.

    ``tables`` maps run name -> predictions table of one evaluation set (``path, label, pred``,
    optionally ``speaker`` and ``prob_<class>``); at most two runs. ``cell`` is (true, predicted);
    None picks the first run's biggest confusion. ``order``/``seed``/``speaker`` are those of the
    explorer; ``clips`` log-mels are drawn per run (0 draws the matrices only).
    """
    if not 1 <= len(tables) <= 2:
        raise UserError(f"plot_explorer shows one or two runs, got {len(tables)}")
    if clips < 0:
        raise UserError(f"clips must be 0 or more, got {clips}")
    check_order(order)
    labels = [str(label) for label in labels]
    shown = {
        str(run): only_speaker(check_predictions(table, labels, f"run {run!r}"), speaker)
        for run, table in tables.items()
    }
    counts = {run: predictions_confusion(table, labels) for run, table in shown.items()}
    if cell is None:
        cell = biggest_confusion(next(iter(counts.values())), labels)
    true_label, predicted = cell
    for name, value in (("true label", true_label), ("predicted label", predicted)):
        if value not in labels:
            raise UserError(f"cell: {name} {value!r} is not one of {labels}")

    matrix_height = 1.6 + 0.55 * len(labels)
    fig, axes = new_figure(
        1 + clips,
        len(shown),
        figsize=(COLUMN_WIDTH * len(shown), matrix_height + CLIP_HEIGHT * clips + 0.6),
        gridspec_kw={"height_ratios": [matrix_height] + [CLIP_HEIGHT] * clips},
    )
    for column, (run, table) in enumerate(shown.items()):
        title = f"{run}" + (f" on {set_name}" if set_name else "")
        plot_confusion_matrix(
            counts[run], labels, normalise=normalise, title=title, ax=axes[0, column]
        )
        frame_cell(axes[0, column], labels.index(true_label), labels.index(predicted))
        ordered = sort_clips(cell_clips(table, true_label, predicted), order, seed)
        others = {name: other for name, other in shown.items() if name != run}
        for row in range(clips):
            ax = axes[1 + row, column]
            if row < len(ordered):
                clip = ordered.iloc[row : row + 1]
                draw_clip(ax, clip, others, sample_rate, max_seconds)
            else:
                ax.axis("off")
                if row == len(ordered):
                    ax.text(
                        0.5,
                        0.5,
                        f"{run}: {'no more' if len(ordered) else 'no'} clips in this cell",
                        ha="center",
                        va="center",
                        transform=ax.transAxes,
                        fontsize=9,
                    )
    who = f", speaker {speaker}" if speaker else ""
    ordering = f"in random order (seed {seed})" if order == "random" else f"{order} first"
    heading = f"true {true_label}, predicted {predicted}{who}: the first clips, {ordering}"
    fig.suptitle(wrap_text(heading, fig.get_figwidth(), fontsize=11), fontsize=11)
    fig.tight_layout()
    return fig


def frame_cell(ax: Axes, row: int, column: int) -> None:
    """Draw a thick frame around one cell of an ``imshow`` matrix (the cell being looked at)."""
    ax.add_patch(
        Rectangle(
            (column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=HIGHLIGHT_COLOUR, linewidth=3
        )
    )


def clip_title(clip: pd.DataFrame, others: Mapping[str, pd.DataFrame]) -> str:
    """File, speaker and confidence of one clip, and what each other run predicted for it."""
    row = clip.iloc[0]
    name = str(row["path"]).replace("\\", "/").rsplit("/", 1)[-1]
    sure = confidence(clip).iloc[0]
    parts = [name if len(name) <= 30 else "..." + name[-27:]]
    if str(row.get("speaker", "")):
        parts.append(f"speaker {row['speaker']}")
    if not np.isnan(sure):
        parts.append(f"p={sure:.2f}")
    lines = [" \u00b7 ".join(parts)]
    for other, table in others.items():
        found = clip_under_run(table, str(row["path"]))
        if found is None:
            lines.append(f"not in {other}")
        else:
            other_sure = "" if pd.isna(found["confidence"]) else f" ({found['confidence']:.2f})"
            verdict = "right" if found["pred"] == found["label"] else "wrong"
            lines.append(f"under {other}: {found['pred']}{other_sure}, {verdict}")
    return "\n".join(lines)


def draw_clip(
    ax: Axes,
    clip: pd.DataFrame,
    others: Mapping[str, pd.DataFrame],
    sample_rate: int,
    max_seconds: float,
) -> None:
    """One clip's log-mel (what the model read), titled by ``clip_title``; or why it is missing."""
    path = str(clip.iloc[0]["path"])
    ax.set_title(clip_title(clip, others), fontsize=8)
    try:
        waveform = load_audio(path, sample_rate=sample_rate)
    except AudioError as error:
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"audio unavailable: {error.reason}",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=8,
        )
        return
    waveform = waveform[: int(max_seconds * sample_rate)]
    image = log_mel_db(waveform, sample_rate)
    duration = waveform.size / sample_rate
    ax.imshow(
        image,
        origin="lower",
        aspect="auto",
        cmap=SPECTROGRAM_CMAP,
        extent=(0.0, duration, 0, image.shape[0]),
    )
    label_mel_axis_in_hz(ax, FrontendConfig(sample_rate=sample_rate, n_mels=image.shape[0]))
    ax.set_ylabel("Hz (mel)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("time (s)", fontsize=8)
