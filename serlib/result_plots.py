"""Results as bar charts: one metric per model and evaluation set, against chance and the oracle.

A picture of a table makes the reader compare digits; bars put every model on one scale, between
the two numbers that give it meaning: chance (what guessing scores) and the oracle (a model that
saw labelled target speakers, which no real adaptation may do: the upper bound). The figure reads
``serlib.results.results_table`` output; ``plot_results_bars`` returns a detached figure
(``serlib.figures``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from serlib.errors import UserError
from serlib.figures import REFERENCE_COLOUR, new_figure, series_styles, wrap_text

RESULT_METRICS = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}
"""Result columns and how figures name them; UA first because it is the headline metric."""

ORACLE_LABEL = "oracle (upper bound, uses target labels)"
"""The oracle line's legend entry: it trained on labelled target speakers, which no real
adaptation may do, so it bounds what adaptation could reach and is never a competitor."""


def _check_results(table: pd.DataFrame, metric: str, sets: Sequence[str]) -> None:
    """A results table needs model, set and ``metric`` columns, one row per (model, set), and
    at least one row of every requested set."""
    required = ["model", "set", metric]
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise UserError(f"results has no column(s) {missing}; it has {list(table.columns)}")
    if table.empty:
        raise UserError("results is empty: no run has a metrics.json yet")
    duplicated = table.duplicated(subset=["model", "set"])
    if duplicated.any():
        pairs = table.loc[duplicated, ["model", "set"]].to_records(index=False).tolist()
        raise UserError(f"results has more than one row for (model, set) {pairs}")
    present = set(table["set"].astype(str))
    absent = [name for name in sets if name not in present]
    if absent:
        raise UserError(
            f"results has no rows for set(s) {absent}; pass sets= from {sorted(present)}"
        )


def _chance_per_model(chance: float | Mapping[str, float], models: Sequence[str]) -> list[float]:
    """Chance level for each model: one number for all, or a mapping (schemes differ in classes)."""
    if isinstance(chance, Mapping):
        missing = [model for model in models if model not in chance]
        if missing:
            raise UserError(f"chance has no value for model(s) {missing}")
        levels = [float(chance[model]) for model in models]
    else:
        levels = [float(chance)] * len(models)
    if not all(0.0 < level < 1.0 for level in levels):
        raise UserError(
            f"chance must be a fraction in (0, 1), e.g. 0.25 for 4 classes; got {levels}"
        )
    return levels


def plot_results_bars(
    table: pd.DataFrame,
    *,
    metric: str = "ua",
    chance: float | Mapping[str, float],
    oracle: float | None,
    sets: Sequence[str] = ("source test", "target test"),
    title: str | None = None,
    note: str | None = None,
) -> Figure:
    """Bars of one metric per model, one bar per evaluation set, against chance and the oracle.

    ``table`` is ``serlib.results.results_table`` output (columns ``model``, ``set`` and the metric
    as a fraction); models keep their order of appearance. Source and target bars wear the pair
    colours and carry their value in percent. The dashed line is chance (a float, or a mapping
    model -> chance when label schemes differ); the dotted line is the oracle's target-test score,
    an upper bound that used target labels (None when there is no oracle run to show). A model
    without a set's score leaves its slot empty, marked "no score". ``title`` and ``note`` (a second
    line, e.g. which rows are transductive) are wrapped to the figure's width, never cut.
    """
    sets = [str(name) for name in sets]
    _check_results(table, metric, sets)
    models = list(dict.fromkeys(table["model"].astype(str)))
    levels = _chance_per_model(chance, models)
    if oracle is not None and not 0.0 <= float(oracle) <= 1.0:
        raise UserError(f"oracle must be a fraction in [0, 1] or None, got {oracle}")
    scores = table.assign(model=table["model"].astype(str), set=table["set"].astype(str))
    scores = scores.set_index(["model", "set"])[metric]

    group_inches = 0.5 * len(sets) + 0.5  # room for the bars and a two-line model name
    fig, axes = new_figure(figsize=(max(5.0, 1.2 + group_inches * len(models)), 4.2))
    ax = axes[0, 0]
    width = 0.8 / len(sets)
    positions = np.arange(len(models))
    styles = series_styles(sets)
    for index, set_name in enumerate(sets):
        heights = np.array([scores.get((model, set_name), np.nan) for model in models], float)
        where = positions + (index - (len(sets) - 1) / 2) * width
        bars = ax.bar(
            where,
            np.nan_to_num(heights),
            width=width,
            label=set_name,
            edgecolor="white",
            linewidth=0.5,
            **styles[set_name],
        )
        labels = ["no score" if np.isnan(h) else f"{100 * h:.1f}" for h in heights]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
    ax.hlines(
        levels,
        positions - 0.45,
        positions + 0.45,
        colors=REFERENCE_COLOUR,
        linestyles="--",
        linewidth=1.2,
        label="chance",
    )
    if oracle is not None:
        ax.axhline(
            float(oracle), color=REFERENCE_COLOUR, linestyle=":", linewidth=1.6, label=ORACLE_LABEL
        )
    names = [wrap_text(model, group_inches - 0.1, fontsize=8) for model in models]
    ax.set_xticks(positions, names, fontsize=8)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylim(0.0, 1.2)  # room for the value above a bar at 100 %
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_ylabel(f"{RESULT_METRICS.get(metric, metric)} (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    heading = "\n".join(text for text in (title, note) if text)
    if heading:
        fig.suptitle(wrap_text(heading, fig.get_figwidth(), fontsize=10), fontsize=10)
    fig.tight_layout()
    return fig
