"""Figures of the data, before any model: one clip three ways, a log-mel thumbnail, class balance.

Each ``plot_*`` function returns a detached matplotlib Figure (``serlib.figures``): show it as a
cell's last expression or save it with ``serlib.figures.save_figure``.

- ``plot_clip``           waveform, linear spectrogram and log-mel of one clip.
- ``plot_class_balance``  how many clips each class has, per corpus or label scheme.
- ``log_mel_png``         a small log-mel thumbnail (PNG bytes) for widgets.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import librosa
import matplotlib.image
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from serlib.errors import UserError
from serlib.features import FrontendConfig, log_mel
from serlib.figures import compact_png, new_figure, panel_grid


def log_mel_db(waveform: np.ndarray, sample_rate: int, n_mels: int = 128) -> np.ndarray:
    """The log-mel the models see (``serlib.features``, the study's settings), [n_mels, frames] in dB."""
    waveform = _check_waveform(waveform)
    return log_mel(waveform, FrontendConfig(sample_rate=sample_rate, n_mels=n_mels))


def _check_waveform(waveform: np.ndarray) -> np.ndarray:
    """A waveform must be a non-empty, finite 1-D array (mono)."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise UserError(
            f"waveform must be a non-empty 1-D (mono) array, got shape {waveform.shape}"
        )
    if not np.isfinite(waveform).all():
        raise UserError("waveform contains NaN or infinite samples")
    return waveform


def log_mel_png(waveform: np.ndarray, sample_rate: int, cmap: str = "magma") -> bytes:
    """A log-mel thumbnail as PNG bytes (one pixel per frame and mel band, low bands at the bottom).

    Small on purpose: the confusion explorer shows one per listed clip, and every byte ends up in the
    notebook file.
    """
    image = log_mel_db(waveform, sample_rate)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, cmap=cmap, origin="lower", format="png")
    return compact_png(buffer.getvalue())


def plot_clip(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    title: str | None = None,
    n_mels: int = 128,
) -> Figure:
    """Show one clip three ways: waveform, linear-frequency spectrogram and log-mel spectrogram.

    The linear spectrogram shows harmonics evenly spaced; the mel scale stretches the low frequencies
    where pitch and the first formants live, which is what the CRNN sees.
    """
    waveform = _check_waveform(waveform)
    frontend = FrontendConfig(sample_rate=sample_rate, n_mels=n_mels)
    fig, axes = new_figure(3, 2, figsize=(8, 6.5), gridspec_kw={"width_ratios": [40, 1]})
    (wave_ax, blank_ax), (spec_ax, spec_bar), (mel_ax, mel_bar) = axes
    blank_ax.axis("off")  # keeps the waveform as wide as the spectrograms beside their colour bars
    duration = waveform.size / sample_rate

    wave_ax.plot(np.arange(waveform.size) / sample_rate, waveform, linewidth=0.5)
    wave_ax.set_xlim(0.0, duration)
    wave_ax.set_ylabel("amplitude")
    wave_ax.set_title("waveform")

    stft = librosa.stft(waveform, n_fft=frontend.n_fft, hop_length=frontend.hop_length)
    linear_db = librosa.power_to_db(np.abs(stft) ** 2, ref=frontend.ref, top_db=frontend.top_db)
    extent = (0.0, duration, 0.0, sample_rate / 2000.0)
    image = spec_ax.imshow(linear_db, origin="lower", aspect="auto", cmap="magma", extent=extent)
    spec_ax.set_ylabel("frequency (kHz)")
    spec_ax.set_title("spectrogram (linear frequency)")
    fig.colorbar(image, cax=spec_bar, label="dB")

    mel_db = log_mel(waveform, frontend)
    image = mel_ax.imshow(
        mel_db, origin="lower", aspect="auto", cmap="magma", extent=(0.0, duration, 0, n_mels)
    )
    mel_ax.set_ylabel("mel band")
    mel_ax.set_xlabel("time (s)")
    mel_ax.set_title(f"log-mel spectrogram ({n_mels} bands)")
    fig.colorbar(image, cax=mel_bar, label="dB")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _as_counts(data: pd.DataFrame | pd.Series | Mapping[str, int], column: str) -> pd.Series:
    """Turn a table (count its ``column``), a Series or a mapping into counts per class."""
    if isinstance(data, pd.DataFrame):
        if column not in data.columns:
            raise UserError(f"table has no column {column!r}; it has {list(data.columns)}")
        return data[column].astype(str).value_counts()
    counts = pd.Series(data, dtype=float)
    counts.index = counts.index.astype(str)
    return counts


def plot_class_balance(
    tables: Mapping[str, pd.DataFrame | pd.Series | Mapping[str, int]],
    *,
    column: str = "label",
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Bar charts of clips per class, one panel per corpus (or corpus/scheme pair).

    Each entry is a table whose ``column`` is counted, or ready-made counts. Each panel shows its own
    classes (sorted) unless ``labels`` fixes one list for all. Bars are annotated with their share of
    the corpus, because imbalance (IEMOCAP's many neutral clips against RAVDESS's even classes) is
    what makes WA and UA disagree.
    """
    if not tables:
        raise UserError("plot_class_balance needs at least one corpus")
    counts = {name: _as_counts(data, column) for name, data in tables.items()}
    shown = {
        name: [str(label) for label in labels] if labels is not None else sorted(series.index)
        for name, series in counts.items()
    }
    widest = max(len(names) for names in shown.values())
    fig, axes = panel_grid(len(counts), (max(3.0, 0.55 * widest + 1.5), 3.4))
    for ax, (name, series) in zip(axes, counts.items(), strict=True):
        labels_here = shown[name]
        values = series.reindex(labels_here, fill_value=0).to_numpy(dtype=float)
        total = values.sum()
        bars = ax.bar(np.arange(len(labels_here)), values, color="tab:blue")
        for bar, value in zip(bars, values, strict=True):
            share = f"{value / total:.0%}" if total > 0 else "0%"
            ax.annotate(
                share,
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(np.arange(len(labels_here)), labels_here, rotation=45, ha="right")
        ax.set_title(f"{name} (n={int(total)})")
        ax.set_ylabel("clips")
        ax.margins(y=0.15)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
