"""Figures of the data, before any model: clips three ways, class balance, durations, cues.

Each ``plot_*`` function returns a detached matplotlib Figure (``serlib.figures``): show it as a
cell's last expression or save it with ``serlib.figures.save_figure``. Source and target wear the
course's pair colours, emotions the emotion palette (``serlib.figures``).

- ``plot_clips``          waveform, linear spectrogram and log-mel of clips side by side, one dB scale.
- ``plot_clip``           the same for one clip.
- ``plot_class_balance``  how many clips each class has, per corpus or label scheme.
- ``plot_durations``      clip durations of the source and the target corpus.
- ``plot_cue_boxes``      acoustic cues per emotion, source vs target, with the clips per box.
- ``log_mel_png``         a small log-mel thumbnail (PNG bytes) for widgets.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import librosa
import matplotlib.image
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from serlib.analysis import CUES
from serlib.errors import UserError
from serlib.features import FrontendConfig, log_mel
from serlib.figures import (
    DOMAIN_COLOURS,
    SPECTROGRAM_CMAP,
    compact_png,
    domain_of,
    emotion_colours,
    new_figure,
    panel_grid,
    wrap_text,
)


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


def log_mel_png(waveform: np.ndarray, sample_rate: int, cmap: str = SPECTROGRAM_CMAP) -> bytes:
    """A log-mel thumbnail as PNG bytes (one pixel per frame and mel band, low bands at the bottom).

    Small on purpose: the confusion explorer shows one per listed clip, and every byte ends up in the
    notebook file.
    """
    image = log_mel_db(waveform, sample_rate)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, image, cmap=cmap, origin="lower", format="png")
    return compact_png(buffer.getvalue())


MEL_TICKS_HZ = (250, 500, 1000, 2000, 4000, 8000, 16000)
"""Frequencies marked on a log-mel's axis (those inside its range): round numbers a reader knows."""


def mel_band_centres(config: FrontendConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of ``config``'s filter bank, lowest first.

    librosa places ``n_mels + 2`` points evenly on the mel scale; band i peaks at point i + 1.
    """
    fmax = config.sample_rate / 2 if config.fmax is None else config.fmax
    return librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=fmax)[1:-1]


def label_mel_axis_in_hz(ax: Axes, config: FrontendConfig) -> None:
    """Tick a log-mel image's band axis (band i spans [i, i + 1]) with frequencies in Hz.

    A tick's height is interpolated between the band centres, so "1000" sits exactly where the mel
    scale puts 1 kHz: the reader sees the low frequencies stretched and the high ones squeezed.
    """
    centres = mel_band_centres(config)
    shown = [hz for hz in MEL_TICKS_HZ if centres[0] <= hz <= centres[-1]]
    positions = np.interp(shown, centres, np.arange(config.n_mels) + 0.5)
    ax.set_yticks(positions, [str(hz) for hz in shown])
    ax.set_ylabel("frequency (Hz, mel scale)")


def _spectrograms(waveform: np.ndarray, frontend: FrontendConfig) -> tuple[np.ndarray, np.ndarray]:
    """The linear-frequency power spectrogram and the log-mel of one clip, both in dB."""
    stft = librosa.stft(waveform, n_fft=frontend.n_fft, hop_length=frontend.hop_length)
    linear = librosa.power_to_db(np.abs(stft) ** 2, ref=frontend.ref, top_db=frontend.top_db)
    return linear, log_mel(waveform, frontend)


def shared_db_range(images: Sequence[np.ndarray], top_db: float | None) -> tuple[float, float]:
    """One colour scale for several spectrograms: from the loudest cell down ``top_db`` dB.

    With one scale, a quiet clip looks darker than a loud one, as it should; with a scale per
    figure every clip would look equally loud.
    """
    loudest = max(float(np.max(image)) for image in images)
    quietest = min(float(np.min(image)) for image in images)
    return (quietest if top_db is None else loudest - top_db), loudest


def plot_clips(
    clips: Mapping[str, np.ndarray],
    sample_rate: int,
    *,
    title: str | None = None,
    n_mels: int = 128,
) -> Figure:
    """Clips side by side, each three ways: waveform, linear spectrogram, log-mel spectrogram.

    ``clips`` maps a column title (e.g. "source (iemocap): angry") to a mono waveform. All columns
    share one time axis, one amplitude axis and, per spectrogram row, one dB colour scale with one
    colour bar, so speaking rate, loudness and background noise compare at a glance. The mel axis
    is labelled in Hz. A title that names "source" or "target" draws its waveform in that domain's
    colour.
    """
    if not clips:
        raise UserError("plot_clips needs at least one clip")
    waveforms = {name: _check_waveform(wave) for name, wave in clips.items()}
    frontend = FrontendConfig(sample_rate=sample_rate, n_mels=n_mels)
    pictures = {name: _spectrograms(wave, frontend) for name, wave in waveforms.items()}
    linear_range = shared_db_range([linear for linear, _ in pictures.values()], frontend.top_db)
    mel_range = shared_db_range([mel for _, mel in pictures.values()], frontend.top_db)
    peak = max(float(np.abs(wave).max()) for wave in waveforms.values()) * 1.05 or 1.0
    longest = max(wave.size for wave in waveforms.values()) / sample_rate

    columns = len(waveforms)
    width = 7.6 if columns == 1 else 4.8
    fig, axes = new_figure(
        3,
        columns + 1,
        figsize=(width * columns + 0.6, 6.8),
        gridspec_kw={"width_ratios": [40] * columns + [1]},
    )
    axes[0, -1].axis("off")  # keeps the waveforms as wide as the spectrograms
    for column, (name, wave) in enumerate(waveforms.items()):
        duration = wave.size / sample_rate
        wave_ax, spec_ax, mel_ax = axes[:, column]
        wave_ax.plot(
            np.arange(wave.size) / sample_rate,
            wave,
            linewidth=0.5,
            color=DOMAIN_COLOURS.get(domain_of(name) or "", "#444444"),
        )
        wave_ax.set_ylim(-peak, peak)
        linear, mel = pictures[name]
        shown = dict(origin="lower", aspect="auto", cmap=SPECTROGRAM_CMAP)
        spec_image = spec_ax.imshow(
            linear, extent=(0.0, duration, 0.0, sample_rate / 2000.0), clim=linear_range, **shown
        )
        mel_image = mel_ax.imshow(mel, extent=(0.0, duration, 0, n_mels), clim=mel_range, **shown)
        for ax in (wave_ax, spec_ax, mel_ax):
            ax.set_xlim(0.0, longest)  # one time axis: rate and pauses compare by eye
        label_mel_axis_in_hz(mel_ax, frontend)
        mel_ax.set_xlabel("time (s)")
        wave_ax.set_title("waveform" if columns == 1 else wrap_text(name, width - 0.8, fontsize=11))
        spec_ax.set_title("spectrogram (linear frequency)")
        mel_ax.set_title(f"log-mel spectrogram ({n_mels} bands)")
        if column == 0:
            wave_ax.set_ylabel("amplitude")
            spec_ax.set_ylabel("frequency (kHz)")
        else:
            mel_ax.set_ylabel("")
    fig.colorbar(spec_image, cax=axes[1, -1], label="dB")
    fig.colorbar(mel_image, cax=axes[2, -1], label="dB")
    if title:
        fig.suptitle(wrap_text(title, fig.get_figwidth(), fontsize=12))
    fig.tight_layout()
    for row in (1, 2):  # tight_layout spaces every column alike: pull the colour bars in
        beside, bar = axes[row, columns - 1].get_position(), axes[row, -1].get_position()
        axes[row, -1].set_position((beside.x1 + 0.01, bar.y0, bar.width, bar.height))
    return fig


def plot_clip(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    title: str | None = None,
    n_mels: int = 128,
) -> Figure:
    """Show one clip three ways: waveform, linear-frequency spectrogram and log-mel spectrogram.

    The linear spectrogram shows harmonics evenly spaced; the mel scale stretches the low frequencies
    where pitch and the first formants live, which is what the CRNN sees. To compare two clips, use
    ``plot_clips``: one figure, one dB scale.
    """
    return plot_clips({title or "clip": waveform}, sample_rate, title=title, n_mels=n_mels)


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
    what makes WA and UA disagree. Bars wear the emotion palette's colours.
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
        colours = emotion_colours(labels_here)
        bars = ax.bar(
            np.arange(len(labels_here)), values, color=[colours[label] for label in labels_here]
        )
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


def _domain_corpora(table: pd.DataFrame, source: str, target: str) -> dict[str, str]:
    """Corpus name -> "source"/"target" for a table with a ``corpus`` column holding both."""
    if "corpus" not in table.columns:
        raise UserError(f"table has no column 'corpus'; it has {list(table.columns)}")
    if source == target:
        raise UserError(f"source and target must be different corpora, both are {source!r}")
    present = set(table["corpus"].astype(str))
    absent = [name for name in (source, target) if name not in present]
    if absent:
        raise UserError(f"table has no clips of corpus {absent}; it has {sorted(present)}")
    return {source: "source", target: "target"}


def _domain_legend(fig: Figure, corpora: Mapping[str, str]) -> None:
    """One legend for the figure: which colour is which corpus, under the title."""
    handles = [
        Patch(color=DOMAIN_COLOURS[domain], label=f"{domain} ({corpus})")
        for corpus, domain in corpora.items()
    ]
    height = fig.get_figheight()
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0 - 0.36 / height),
        ncol=len(handles),
        fontsize=9,
        frameon=False,
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.6 / height))


def plot_durations(
    durations: pd.DataFrame,
    *,
    source: str,
    target: str,
    column: str = "duration",
    bins: int = 30,
) -> Figure:
    """Histograms of clip durations (seconds) of the source and the target corpus, overlaid.

    ``durations`` has a ``corpus`` column and ``column``; unreadable clips (NaN) are left out and
    the legend counts the clips drawn. The CRNN crops or pads every clip to one length, so the
    overlap of the two histograms says how much of a typical clip it sees.
    """
    corpora = _domain_corpora(durations, source, target)
    if column not in durations.columns:
        raise UserError(f"table has no column {column!r}; it has {list(durations.columns)}")
    fig, axes = new_figure(figsize=(6.0, 3.4))
    ax = axes[0, 0]
    values = durations[column].astype(float)
    edges = np.histogram_bin_edges(values.dropna(), bins=bins)
    for corpus, domain in corpora.items():
        seconds = values[durations["corpus"].astype(str) == corpus].dropna()
        ax.hist(
            seconds,
            bins=edges,
            alpha=0.6,
            color=DOMAIN_COLOURS[domain],
            label=f"{domain} ({corpus}), n={len(seconds)}",
        )
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("clips")
    ax.legend(fontsize=8)
    ax.set_title("clip durations")
    fig.tight_layout()
    return fig


DEFAULT_CUES = ("f0_median_hz", "f0_range_st", "loudness_db", "syllable_rate")
"""The cues notebook 01 compares: pitch level and range, loudness, speaking rate."""


def _box_counts(ax: Axes, positions: Sequence[float], counts: Sequence[int], colour: str) -> None:
    """Write "n=..." under each box, inside the axes, in its domain's colour."""
    below = blended_transform_factory(ax.transData, ax.transAxes)
    for position, count in zip(positions, counts, strict=True):
        ax.text(
            position,
            0.02,
            f"n={count}",
            transform=below,
            ha="center",
            va="bottom",
            fontsize=6.5,
            color=colour,
        )


def plot_cue_boxes(
    cues: pd.DataFrame,
    *,
    source: str,
    target: str,
    shown: Sequence[str] = DEFAULT_CUES,
    labels: Sequence[str] | None = None,
    title: str | None = "acoustic cues per emotion: source vs target",
) -> Figure:
    """Boxplots of acoustic cues per emotion, source and target side by side, one panel per cue.

    ``cues`` is ``serlib.analysis.cue_table`` output (``corpus``, ``label`` and the cue columns).
    Each box says how many clips it holds ("n=..." under it): a cue the tracker could not measure
    on a clip (NaN) leaves that clip out of that box only, so boxes of one emotion can differ.
    With ten clips a box is a rough picture: compare medians, not whiskers.
    """
    corpora = _domain_corpora(cues, source, target)
    missing = [name for name in (*shown, "label") if name not in cues.columns]
    if missing:
        raise UserError(f"cue table has no column(s) {missing}; it has {list(cues.columns)}")
    labels = sorted(cues["label"].astype(str).unique()) if labels is None else list(labels)
    panel_width = max(3.0, 0.8 * len(labels) + 0.8)
    fig, axes = panel_grid(len(shown), (panel_width, 3.2))
    corpus_of = cues["corpus"].astype(str)
    label_of = cues["label"].astype(str)
    for ax, cue in zip(axes, shown, strict=True):
        values = cues[cue].astype(float)
        measured = values.dropna()
        low, high = (measured.min(), measured.max()) if len(measured) else (0.0, 1.0)
        spread = (high - low) or 1.0
        for offset, (corpus, domain) in zip((-0.2, 0.2), corpora.items(), strict=True):
            groups = [
                values[(corpus_of == corpus) & (label_of == label)].dropna().to_numpy()
                for label in labels
            ]
            positions = np.arange(len(labels)) + offset
            ax.boxplot(
                groups,
                positions=positions,
                widths=0.34,
                patch_artist=True,
                boxprops={"facecolor": DOMAIN_COLOURS[domain], "alpha": 0.75},
                medianprops={"color": "black"},
                flierprops={"markersize": 3},
                manage_ticks=False,
            )
            _box_counts(ax, positions, [len(group) for group in groups], DOMAIN_COLOURS[domain])
        ax.set_ylim(low - 0.22 * spread, high + 0.06 * spread)  # room for the n= labels
        ax.set_xticks(np.arange(len(labels)), labels, fontsize=9)
        ax.set_title(wrap_text(CUES.get(cue, cue), panel_width, fontsize=9), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(wrap_text(title, fig.get_figwidth(), fontsize=12))
    _domain_legend(fig, corpora)
    return fig
