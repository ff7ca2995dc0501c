"""Making and saving figures: the blank figure every ``plot_*`` function starts from, and small PNGs.

Every figure function builds its figure with pyplot and then detaches it (``plt.close``), so a
notebook shows it exactly once (make it the cell's last expression, or ``display(fig)``) and a loop
that builds fifty figures does not keep fifty alive. ``save_figure(fig, name)`` writes
``figures/<name>.png`` (100 dpi, 256-colour palette: tens of kB), small enough to commit.

Colours mean one thing across the whole course: ``SOURCE_COLOUR`` and ``TARGET_COLOUR`` mark the two
domains in every figure, ``EMOTION_PALETTE`` gives each emotion its own colour, and the two sets
share no colour, so a reader never mistakes "target" for "sad". Both come from the Okabe-Ito
palette, chosen to stay distinct for the common forms of colour blindness.
"""

from __future__ import annotations

import io
import os
import re
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from serlib.errors import UserError

FIGURE_DPI = 100
"""Resolution of saved figures: readable on screen, a few tens of kB per PNG."""

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

SOURCE_COLOUR = "#009E73"
"""The source domain (the labelled training corpus) in every figure: Okabe-Ito bluish green."""

TARGET_COLOUR = "#CC79A7"
"""The target domain (the corpus adapted to and tested on) in every figure: Okabe-Ito reddish purple."""

DOMAIN_COLOURS = {"source": SOURCE_COLOUR, "target": TARGET_COLOUR}

EMOTION_PALETTE = {
    "angry": "#D55E00",
    "happy": "#E69F00",
    "neutral": "#999999",
    "sad": "#0072B2",
    "frustrated": "#000000",
    "calm": "#56B4E9",
    "surprised": "#F0E442",
    "fearful": "#332288",
    "disgust": "#999933",
    "excited": "#DDCC77",
    "boredom": "#882255",
}
"""One colour per emotion, never a domain colour; other corpora's spellings map by their first
three letters (``ang``, ``anger`` -> angry; ``fea``, ``fear`` -> fearful)."""

EXTRA_COLOURS = ("#661100", "#6699CC", "#117733", "#AA4466", "#444444")
"""Colours for labels the palette does not know, handed out in order of first appearance."""

HATCHES = (None, "//", "..", "xx", "\\\\")
"""How a second, third, ... series of the same domain differs from the first (same colour)."""

CONFUSION_CMAP = "Blues"
"""Confusion matrices, in figures and in the explorer widget alike."""

SPECTROGRAM_CMAP = "magma"
"""Spectrograms and log-mel images: bright is loud."""

REFERENCE_COLOUR = "#333333"
"""Reference lines (chance, oracle, 0.5): dark grey, so they never read as a domain or an emotion."""


def emotion_colours(labels: Iterable[str]) -> dict[str, str]:
    """The colour of each label: the palette's for known emotions, an extra colour for the rest."""
    by_prefix = {name[:3]: colour for name, colour in EMOTION_PALETTE.items()}
    colours: dict[str, str] = {}
    extras = 0
    for label in labels:
        label = str(label)
        if label in colours:
            continue
        known = by_prefix.get(label.lower()[:3])
        if known is None:
            known = EXTRA_COLOURS[extras % len(EXTRA_COLOURS)]
            extras += 1
        colours[label] = known
    return colours


def domain_of(name: str) -> str | None:
    """The domain a series name names ("target test" -> "target", "CRNN source"), else None."""
    found = re.search(r"(?<![a-z])(source|target)(?![a-z])", str(name).lower())
    return found.group(1) if found else None


def series_styles(names: Sequence[str]) -> dict[str, dict]:
    """Bar styles (``color``, ``hatch``) per series: the domain's colour, hatched for a repeat.

    "source test" and "target test" get the pair colours; a second target series ("target all")
    keeps the target colour with a hatch. Names that name no domain get the extra colours.
    """
    styles: dict[str, dict] = {}
    repeats: dict[str | None, int] = {}
    for name in names:
        domain = domain_of(name)
        index = repeats.get(domain, 0)
        repeats[domain] = index + 1
        if domain is None:
            styles[name] = {"color": EXTRA_COLOURS[index % len(EXTRA_COLOURS)], "hatch": None}
        else:
            styles[name] = {"color": DOMAIN_COLOURS[domain], "hatch": HATCHES[index % len(HATCHES)]}
    return styles


def wrap_text(text: str, width_inches: float, fontsize: float = 10.0) -> str:
    """Break ``text`` into lines that fit ``width_inches`` at ``fontsize`` points, so none is cut.

    Assumes an average character 0.6 em wide (generous for DejaVu Sans): a long title or note
    becomes two lines instead of running past the figure's edge.
    """
    per_line = max(12, int(width_inches * 72 / (0.6 * fontsize)))
    return "\n".join(
        textwrap.fill(line, per_line, break_on_hyphens=False) if line else line
        for line in str(text).split("\n")
    )


def overflowing_texts(fig: Figure, tolerance: float = 1.0) -> list[str]:
    """Texts of ``fig`` that reach past its edges once drawn: the ones a reader would see cut off."""
    fig.draw_without_rendering()  # lays out ticks and texts; works on a detached figure too
    width, height = fig.bbox.width, fig.bbox.height
    undrawn = _undrawn_tick_labels(fig)
    cut = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in undrawn:
            continue
        box = text.get_window_extent()
        if (
            box.x0 < -tolerance
            or box.y0 < -tolerance
            or box.x1 > width + tolerance
            or box.y1 > height + tolerance
        ):
            cut.append(text.get_text())
    return cut


def save_figure(
    fig: Figure, name: str, folder: str | Path = "figures", dpi: int = FIGURE_DPI
) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` and return the path.

    Names are plain file stems (letters, digits, ``_ . -``) so a figure cannot land outside
    ``folder`` by accident; the folder is created if needed.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"save_figure expects a matplotlib Figure, got {type(fig).__name__}")
    stem = name[:-4] if name.endswith(".png") else name
    if not _NAME_PATTERN.match(stem):
        raise UserError(
            f"figure name {name!r} must be a plain file name (letters, digits, '_', '.', '-')"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(compact_png(buffer.getvalue()))
    os.replace(partial, path)  # a reader never sees a half-written figure
    return path


def compact_png(png: bytes) -> bytes:
    """Re-encode a PNG with a 256-colour palette: about 2.5x smaller, no visible change for plots.

    Figures and widget thumbnails end up in git and in notebook files, so every byte counts.
    """
    image = PIL.Image.open(io.BytesIO(png)).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(256, method=PIL.Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def new_figure(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6, 4), **kwargs
) -> tuple[Figure, np.ndarray]:
    """Create a figure with pyplot (so notebook display works) and detach it from pyplot's registry.

    The axes always come back as a 2-D array (``squeeze=False``), so callers index them one way.
    """
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)
    plt.close(fig)
    return fig, axes


def panel_grid(n_panels: int, panel_size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A figure of ``n_panels`` panels, at most 3 per row (4 as 2 x 2), so it fits a notebook."""
    ncols = 2 if n_panels == 4 else min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    width, height = panel_size
    fig, axes = new_figure(nrows, ncols, figsize=(width * ncols, height * nrows))
    for unused in axes.flat[n_panels:]:
        unused.remove()
    return fig, list(axes.flat[:n_panels])


def finish_axes(ax: Axes, xlabel: str, ylabel: str, ylim: tuple[float, float], title: str) -> None:
    """The house style of a line plot's axes: labels, a fixed y range, a light grid, a small legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)


def _undrawn_tick_labels(fig: Figure) -> set[int]:
    """Ids of tick labels matplotlib keeps but does not draw: their tick lies outside the view."""
    undrawn = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            margin = 1e-9 * max(abs(low), abs(high), 1.0)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                where = tick.get_loc()
                if where is None or not low - margin <= where <= high + margin:
                    undrawn.update({id(tick.label1), id(tick.label2)})
    return undrawn
