"""Making and saving figures: the blank figure every ``plot_*`` function starts from, and small PNGs.

Every figure function builds its figure with pyplot and then detaches it (``plt.close``), so a
notebook shows it exactly once (make it the cell's last expression, or ``display(fig)``) and a loop
that builds fifty figures does not keep fifty alive. ``save_figure(fig, name)`` writes
``figures/<name>.png`` (100 dpi, 256-colour palette: tens of kB), small enough to commit.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from serlib.errors import UserError

FIGURE_DPI = 100
"""Resolution of saved figures: readable on screen, a few tens of kB per PNG."""

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
