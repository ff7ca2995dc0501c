"""Figures of training and evaluation: one function per figure, each returning a matplotlib Figure.

Each ``plot_*`` function returns a detached figure (``serlib.figures``): show it as a cell's last
expression or save it with ``serlib.figures.save_figure``. Source and target always wear
``figures.SOURCE_COLOUR`` / ``TARGET_COLOUR``, emotions ``figures.EMOTION_PALETTE``. Figures of the
data itself (a clip, the class balance) are in ``serlib.data_plots``; results per model, against
chance and the oracle, in ``serlib.result_plots``.

- ``plot_confusion_matrix``  counts or row-normalised confusion matrix (rows = true labels).
- ``plot_learning_curves``   losses, scores and schedules from a training history table.
- ``plot_recall_shift``      per-class recall on the source versus the target domain.
- ``plot_embedding``         a 2-D embedding (t-SNE/UMAP output) coloured by domain and by emotion.
- ``plot_grl_schedule``      the gradient-reversal coefficient ramp over training.
- ``plot_domain_accuracy``   the domain head's training accuracy per epoch, against 50 %.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from serlib import metrics
from serlib.errors import UserError
from serlib.figures import (
    CONFUSION_CMAP,
    REFERENCE_COLOUR,
    emotion_colours,
    finish_axes,
    new_figure,
    panel_grid,
    series_styles,
    wrap_text,
)
from serlib.models.dann import grl_coefficient


def _check_labels(labels: Sequence[str], size: int, what: str) -> list[str]:
    """Labels must be distinct strings, one per row/column of ``what``."""
    labels = [str(label) for label in labels]
    if len(labels) != size:
        raise UserError(f"{what} has {size} rows/columns but {len(labels)} labels were given")
    if len(set(labels)) != len(labels):
        raise UserError(f"labels must be distinct, got {labels}")
    return labels


def row_normalise(confusion: np.ndarray) -> np.ndarray:
    """Divide each row by its total so a row reads as recall per predicted class; empty rows stay 0."""
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def plot_confusion_matrix(
    confusion: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    normalise: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
    cmap: str = CONFUSION_CMAP,
) -> Figure:
    """Draw a confusion matrix of counts (rows = true, columns = predicted), annotated per cell.

    With ``normalise=True`` each row is divided by its total, so the diagonal is the per-class recall
    and the mean of the diagonal is the UA. Pass ``ax`` to draw into an existing figure (e.g. source
    and target side by side); the figure holding ``ax`` is returned.
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise UserError(f"confusion must be a square, non-empty matrix, got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise UserError("confusion must hold finite, non-negative counts")
    labels = _check_labels(labels, counts.shape[0], "confusion")
    values = row_normalise(counts) if normalise else counts

    if ax is None:
        side = 1.6 + 0.55 * len(labels)
        fig, axes = new_figure(figsize=(side + 1.0, side))
        ax = axes[0, 0]
    else:
        fig = ax.figure
    vmax = 1.0 if normalise else max(values.max(), 1.0)
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for row in range(len(labels)):
        for column in range(len(labels)):
            value = values[row, column]
            text = f"{value:.2f}" if normalise else f"{int(round(value))}"
            colour = "white" if value > 0.6 * vmax else "black"
            ax.text(column, row, text, ha="center", va="center", color=colour, fontsize=9)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    default_title = (
        "confusion matrix (row-normalised)" if normalise else "confusion matrix (counts)"
    )
    title = title if title is not None else default_title
    ax.set_title(wrap_text(title, ax.get_position().width * fig.get_figwidth()))
    return fig


HISTORY_PANELS = (
    ("loss", r"loss"),
    ("score", r"(^|_)(ua|wa|f1|acc|accuracy|recall)($|_)"),
    ("gradient reversal", r"(grl|coeff|lambda)"),
    ("learning rate", r"(^|_)lr($|_)"),
)
"""History panels and the column names they take (first match wins); the rest go to "other"."""

UNPLOTTED_COLUMNS = ("seconds",)
"""History columns left out by default: timings say nothing about learning."""

SCHEDULE_PANELS = ("gradient reversal", "learning rate")
"""Panels of values the trainer sets rather than learns. When every series in one stayed constant,
the panel is a flat line: it is left out and its value given in the figure's title instead. A flat
*score* stays drawn: a model stuck at chance is a finding."""


def _history_panels(columns: Sequence[str]) -> dict[str, list[str]]:
    """Group history columns into panels by name, e.g. val_ua -> score, lr_heads -> learning rate."""
    panels: dict[str, list[str]] = {title: [] for title, _ in HISTORY_PANELS}
    panels["other"] = []
    for column in columns:
        title = next(
            (title for title, pattern in HISTORY_PANELS if re.search(pattern, column.lower())),
            "other",
        )
        panels[title].append(column)
    return {title: names for title, names in panels.items() if names}


def constant_value(values: np.ndarray) -> float | None:
    """The one value a series kept through training (NaN gaps ignored), or None if it changed."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or not np.allclose(finite, finite[0], rtol=1e-9, atol=0.0):
        return None
    return float(finite[0])


def _flat_schedule_notes(history: pd.DataFrame, panels: dict[str, list[str]]) -> dict[str, str]:
    """Schedule panels whose every series stayed constant, each with the sentence that replaces it."""
    notes = {}
    for panel in SCHEDULE_PANELS:
        columns = panels.get(panel, [])
        kept = [constant_value(history[column].to_numpy(dtype=float)) for column in columns]
        if columns and all(value is not None for value in kept):
            values = ", ".join(
                f"{column} = {value:.3g}" for column, value in zip(columns, kept, strict=True)
            )
            notes[panel] = f"{panel} stayed at {values}"
    return notes


def plot_learning_curves(
    history: pd.DataFrame,
    *,
    x: str = "epoch",
    columns: Sequence[str] | None = None,
    best: str | None = "val_ua",
    title: str | None = None,
) -> Figure:
    """Plot a training history (``history.csv``): losses, scores, GRL coefficient, learning rates.

    Columns are grouped by name (see ``HISTORY_PANELS``), so the domain classifier's accuracy sits
    beside the emotion scores and the GRL coefficient and learning rates get their own panels.
    ``best`` marks the epoch with the highest value of that column (model selection on source
    validation UA) when it is present. A schedule panel whose every series stayed constant (an
    unchanged learning rate) is not drawn; the title says what value it kept.
    """
    if not isinstance(history, pd.DataFrame) or history.empty:
        raise UserError("history must be a non-empty pandas DataFrame")
    steps = history[x].to_numpy() if x in history.columns else np.arange(1, len(history) + 1)
    if columns is None:
        columns = [
            column
            for column in history.columns
            if column != x
            and column not in UNPLOTTED_COLUMNS
            and pd.api.types.is_numeric_dtype(history[column])
        ]
    missing = [column for column in columns if column not in history.columns]
    if missing:
        raise UserError(f"history has no column(s) {missing}; it has {list(history.columns)}")
    panels = _history_panels(columns)
    if not panels:
        raise UserError("history has no numeric columns to plot")
    flat = _flat_schedule_notes(history, panels)
    if len(flat) < len(panels):  # keep a flat panel rather than draw nothing at all
        panels = {name: names for name, names in panels.items() if name not in flat}
    else:
        flat = {}

    fig, axes = panel_grid(len(panels), (4.2, 3.2))
    best_step = None
    if best is not None and best in history.columns and history[best].notna().any():
        best_step = steps[int(np.nanargmax(history[best].to_numpy(dtype=float)))]
    for ax, (panel, panel_columns) in zip(axes, panels.items(), strict=True):
        for column in panel_columns:
            ax.plot(steps, history[column].to_numpy(dtype=float), marker=".", label=column)
        if panel in ("score", "gradient reversal"):
            ax.set_ylim(0.0, 1.02)
        if panel == "learning rate":
            ax.set_yscale("log")
        if best_step is not None:
            ax.axvline(
                best_step, color=REFERENCE_COLOUR, linestyle="--", linewidth=1, label=f"best {best}"
            )
        ax.set_xlabel(x)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    heading = "\n".join(([title] if title else []) + [f"({note})" for note in flat.values()])
    if heading:
        fig.suptitle(wrap_text(heading, fig.get_figwidth(), fontsize=12))
    fig.tight_layout()
    return fig


def per_class_recall(confusion: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Recall of each class by name, from a confusion matrix (rows = true); NaN for an empty class."""
    counts = np.asarray(confusion, dtype=float)
    labels = _check_labels(labels, counts.shape[0], "confusion")
    return {
        label: float(value)
        for label, value in zip(labels, metrics.per_class_recall(counts), strict=True)
    }


def plot_recall_shift(
    recalls: Mapping[str, Mapping[str, float | None]] | pd.DataFrame,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = "per-class recall: source vs target",
) -> Figure:
    """Grouped bars of per-class recall, one bar per evaluation set (e.g. source vs target test).

    ``recalls`` maps a set name to its class -> recall dict (the ``recall`` of ``metrics.json``;
    None or NaN where a class has no clips, drawn as an empty slot), or is the table of
    ``serlib.analysis.recall_shift`` (columns ``class``, ``source``, ``target``, ``shift``), whose
    class order is kept. Bars wear the domain colours (a set named "... source" or "... target"; a
    second model's bars of the same domain are hatched). The dashed line is chance (1 / number of
    classes): a class whose target bar falls to it has been lost to the domain shift.
    """
    if isinstance(recalls, pd.DataFrame):
        if "class" not in recalls.columns:
            raise UserError(
                f"a recall table needs a 'class' column; it has {list(recalls.columns)}"
            )
        classes = recalls["class"].astype(str).tolist()
        labels = classes if labels is None else labels
        recalls = {
            str(column): dict(zip(classes, recalls[column], strict=True))
            for column in recalls.columns
            if column not in ("class", "shift")
        }
    if not recalls:
        raise UserError("plot_recall_shift needs at least one set of recalls")
    if labels is None:
        labels = sorted(set().union(*(set(values) for values in recalls.values())))
    labels = [str(label) for label in labels]
    width = 0.8 / len(recalls)
    fig, axes = new_figure(figsize=(1.2 + 0.9 * len(labels) * max(1, len(recalls) / 2), 3.6))
    ax = axes[0, 0]
    positions = np.arange(len(labels))
    styles = series_styles(list(recalls))
    for index, (name, values) in enumerate(recalls.items()):
        heights = [
            np.nan if values.get(label) is None else float(values[label]) for label in labels
        ]
        offset = (index - (len(recalls) - 1) / 2) * width
        ax.bar(
            positions + offset,
            np.nan_to_num(heights),
            width=width,
            label=name,
            edgecolor="white",
            linewidth=0.5,
            **styles[name],
        )
    chance = 1.0 / len(labels)
    ax.axhline(chance, color=REFERENCE_COLOUR, linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(positions, labels)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("recall")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(wrap_text(title, ax.get_position().width * fig.get_figwidth()))
    fig.tight_layout()
    return fig


def _scatter_by(
    ax: Axes, points: np.ndarray, groups: np.ndarray, title: str, colours: Mapping[str, str]
) -> None:
    """Scatter ``points`` with one colour per group (sorted names, so the legend order is stable)."""
    for group in sorted(set(groups.tolist())):
        chosen = groups == group
        ax.scatter(
            points[chosen, 0],
            points[chosen, 1],
            s=10,
            alpha=0.7,
            color=colours[group],
            label=f"{group} ({int(chosen.sum())})",
        )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=1.5)


def plot_embedding(
    points: np.ndarray,
    domain: Sequence[str],
    emotion: Sequence[str],
    *,
    title: str | None = None,
) -> Figure:
    """Two views of a 2-D embedding (t-SNE/UMAP output): coloured by domain and by emotion.

    Before adaptation the domains form separate islands; DANN's aim is that the left panel mixes
    while the right panel keeps its emotion clusters. Domains wear the source/target pair colours,
    emotions the emotion palette, so the two panels never share a colour.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise UserError(f"points must have shape [N, 2], got {points.shape}")
    domain_array = np.asarray([str(value) for value in domain])
    emotion_array = np.asarray([str(value) for value in emotion])
    for name, values in (("domain", domain_array), ("emotion", emotion_array)):
        if len(values) != len(points):
            raise UserError(f"{name} has {len(values)} entries but there are {len(points)} points")
    styles = series_styles(sorted(set(domain_array.tolist())))
    domain_colours = {name: style["color"] for name, style in styles.items()}
    fig, axes = new_figure(1, 2, figsize=(10, 4.6))
    _scatter_by(axes[0, 0], points, domain_array, "coloured by domain", domain_colours)
    emotions = emotion_colours(sorted(set(emotion_array.tolist())))
    _scatter_by(axes[0, 1], points, emotion_array, "coloured by emotion", emotions)
    if title:
        fig.suptitle(wrap_text(title, fig.get_figwidth(), fontsize=12))
    fig.tight_layout()
    return fig


def history_epochs(history: pd.DataFrame) -> np.ndarray:
    """The epoch numbers of a history's rows: its ``epoch`` column, else 1, 2, 3, ..."""
    if "epoch" in history.columns:
        return history["epoch"].to_numpy(dtype=float)
    return np.arange(1, len(history) + 1, dtype=float)


def plot_grl_schedule(
    *,
    cap: float | None = 0.7,
    gamma: float = 10.0,
    schedule: Callable[[float], float] | None = None,
    history: pd.DataFrame | None = None,
    column: str = "grl_coefficient",
    epochs: int | None = None,
    n_points: int = 201,
) -> Figure:
    """Plot the gradient-reversal coefficient against training progress (0 = start, 1 = end).

    The ramp (``serlib.models.dann.grl_coefficient``) starts at 0 so the domain head cannot wreck the
    features while the emotion head is still random, then rises quickly; the cap keeps the reversed
    gradient from dominating. ``schedule`` replaces the ramp with any function of progress.
    ``history`` overlays the coefficient a run logged at the end of each epoch, at progress
    epoch / ``epochs`` (default: the last logged epoch; pass the planned number when the run
    stopped early).
    """
    if n_points < 2:
        raise UserError("n_points must be at least 2")
    progress = np.linspace(0.0, 1.0, n_points)
    fig, axes = new_figure(figsize=(5.5, 3.4))
    ax = axes[0, 0]
    if schedule is None:
        limit = float("inf") if cap is None else cap
        values = [grl_coefficient(p, cap=limit, gamma=gamma) for p in progress]
        label = f"2/(1+exp(-{gamma:g}p))-1" + (f", cap {cap:g}" if cap is not None else "")
        ax.plot(progress, values, label=label)
        if cap is not None:
            uncapped = [grl_coefficient(p, cap=float("inf"), gamma=gamma) for p in progress]
            ax.plot(progress, uncapped, linestyle=":", color=REFERENCE_COLOUR, label="without cap")
    else:
        ax.plot(progress, [float(schedule(float(p))) for p in progress], label="schedule")
    if history is not None:
        if column not in history.columns:
            raise UserError(f"history has no column {column!r}; it has {list(history.columns)}")
        logged = history[column].to_numpy(dtype=float)
        done = history_epochs(history)
        total = float(epochs) if epochs is not None else done.max()
        if total <= 0:
            raise UserError(f"epochs must be positive, got {total:g}")
        ax.plot(done / total, logged, "o", label=f"logged {column}")
    finish_axes(
        ax, "training progress p", "GRL coefficient", (0, 1.05), "gradient-reversal schedule"
    )
    fig.tight_layout()
    return fig


def plot_domain_accuracy(
    histories: Mapping[str, pd.DataFrame], *, column: str = "train_domain_acc"
) -> Figure:
    """The domain head's accuracy per epoch for several DANN runs, against the 50 % line.

    Near 0.5 the head cannot tell the domains apart (what the encoder is after); far *below* 0.5
    the head is confidently wrong: the encoder has flipped the domains rather than hidden them,
    which the reversed cross-entropy rewards and the domain-confusion loss does not.
    """
    if not histories:
        raise UserError("give at least one history")
    fig, axes = new_figure(figsize=(5.5, 3.4))
    ax = axes[0, 0]
    ax.axhspan(0.0, 0.5, color=REFERENCE_COLOUR, alpha=0.06, label="below 0.5: domains flipped")
    ax.axhline(
        0.5, color=REFERENCE_COLOUR, linestyle="--", linewidth=1, label="0.5: indistinguishable"
    )
    for name, history in histories.items():
        if column not in history.columns:
            raise UserError(
                f"history {name!r} has no column {column!r} (not a DANN run?); "
                f"it has {list(history.columns)}"
            )
        ax.plot(history_epochs(history), history[column].to_numpy(dtype=float), "o-", label=name)
    title = "the domain head: fooled or confused?"
    finish_axes(ax, "epoch", "domain accuracy (training)", (0, 1), title)
    fig.tight_layout()
    return fig
