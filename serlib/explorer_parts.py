"""The pieces the confusion explorer is built from: a clickable matrix, a paged clip listing, a clip.

``serlib.widgets.ConfusionExplorer`` wires these together; what they show is computed by the plain
functions of ``serlib.explorer_data``. Only core ipywidgets are used (GridBox of Buttons, HTML,
Image, Audio), so everything renders in JupyterLab, Notebook 7, VS Code and Colab without a
front-end extension.

Stable CSS classes for browser tests: ``serlib-confusion-explorer`` (the whole widget),
``serlib-compare-picker``, ``serlib-cm`` (one matrix with its summary), ``serlib-cm-cell`` and
``serlib-cm-cell-nonempty`` (matrix cells), ``serlib-cm-cell-selected``, ``serlib-clip-list`` (one
run's listing; the compared run's also has ``serlib-clip-list-compare``), ``serlib-pager``,
``serlib-page-previous``, ``serlib-page-next``, ``serlib-clip`` (one listed clip),
``serlib-clip-audio``, ``serlib-clip-logmel``, ``serlib-clip-error`` (audio that could not be read),
``serlib-clip-other`` (the clip under the other run), ``serlib-clip-synth`` (its cue parameters).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib
import numpy as np
import pandas as pd
import soundfile as sf

from serlib import metrics
from serlib.audio import AudioError, load_audio
from serlib.data_plots import log_mel_png
from serlib.explorer_data import clip_page, page_count
from serlib.explorer_figure import HIGHLIGHT_COLOUR
from serlib.figures import CONFUSION_CMAP
from serlib.plots import row_normalise

CELL_WIDTH = "64px"
ROW_WIDTH = "450px"
"""A listed clip's width: two runs' listings side by side fit a notebook's output area."""
SEPARATOR = " \u00b7 "
PAD = "'padding:0 8px; text-align:right'"
"""The style of a number in the per-speaker table: right-aligned, with room between columns."""


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """Encode a mono float waveform as 16-bit PCM WAV bytes (what ipywidgets.Audio plays)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(waveform, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def close_tree(widget: widgets.Widget) -> None:
    """Close a widget and everything inside it (closing a box leaves its children open)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


def summary_text(name: str, counts: np.ndarray) -> str:
    """One line above a matrix: clip count, UA and WA of what it shows."""
    total = int(counts.sum())
    if total == 0:
        return f"{html.escape(name)}: no clips"
    recalls = metrics.per_class_recall(counts)
    return (
        f"{html.escape(name)}: {total} clip{'' if total == 1 else 's'}, "
        f"UA {np.nanmean(recalls):.1%}, WA {np.trace(counts) / total:.1%} (rows = true labels)"
    )


class MatrixGrid:
    """One confusion matrix as a grid of buttons, rows = true labels; a click calls ``on_click``.

    ``box`` holds a summary line (``summary``) above the grid (``grid``); ``buttons`` maps
    (true, predicted) to the cell's button. The grid is rebuilt only when the labels change.
    """

    def __init__(self, on_click: Callable[[str, str], None]):
        self.on_click = on_click
        self.summary = widgets.HTML()
        self.grid = widgets.GridBox()
        self.buttons: dict[tuple[str, str], widgets.Button] = {}
        self.labels: list[str] | None = None
        self.box = widgets.VBox(
            [self.summary, self.grid], layout=widgets.Layout(margin="0 16px 0 0")
        )
        self.box.add_class("serlib-cm")

    def draw(
        self,
        name: str,
        counts: np.ndarray,
        labels: Sequence[str],
        normalised: bool,
        selected: tuple[str, str] | None,
    ) -> None:
        """Show ``counts`` (as counts or row fractions), shaded like the course's figures."""
        if self.labels != list(labels):
            self._build(labels)
        fractions = row_normalise(counts)
        shade = fractions if normalised else counts / max(counts.max(), 1)
        colours = matplotlib.colormaps[CONFUSION_CMAP]
        for row, true_label in enumerate(labels):
            for column, predicted in enumerate(labels):
                count, fraction = int(counts[row, column]), float(fractions[row, column])
                button = self.buttons[(true_label, predicted)]
                button.description = f"{fraction:.2f}" if normalised else str(count)
                button.tooltip = (
                    f"true {true_label}, predicted {predicted}: {count} clip"
                    f"{'' if count == 1 else 's'} ({fraction:.0%} of {true_label})"
                )
                button.disabled = count == 0
                level = 0.08 + 0.85 * float(shade[row, column])
                button.style.button_color = matplotlib.colors.to_hex(colours(level))
                button.style.text_color = "white" if level > 0.55 else "black"
                _toggle_class(button, "serlib-cm-cell-nonempty", count > 0)
                is_selected = selected == (true_label, predicted)
                _toggle_class(button, "serlib-cm-cell-selected", is_selected)
                button.style.font_weight = "bold" if is_selected else ""
                button.layout.border = f"3px solid {HIGHLIGHT_COLOUR}" if is_selected else None
        self.summary.value = summary_text(name, counts)

    def _build(self, labels: Sequence[str]) -> None:
        """Create the header labels and one button per (true, predicted) cell."""
        for child in self.grid.children:
            child.close()
        cells: list[widgets.Widget] = [widgets.HTML("<i>true \u2193 / predicted \u2192</i>")]
        cells.extend(_header(predicted) for predicted in labels)
        self.buttons = {}
        for true_label in labels:
            cells.append(_header(true_label))
            for predicted in labels:
                button = widgets.Button(layout=widgets.Layout(width=CELL_WIDTH, height="34px"))
                button.add_class("serlib-cm-cell")
                button.on_click(self._click_handler(true_label, predicted))
                self.buttons[(true_label, predicted)] = button
                cells.append(button)
        self.grid.children = cells
        self.grid.layout = widgets.Layout(
            grid_template_columns=f"auto repeat({len(labels)}, {CELL_WIDTH})",
            grid_gap="2px",
            width="max-content",
        )
        self.labels = list(labels)

    def _click_handler(self, true_label: str, predicted: str):
        def on_click(_button: widgets.Button) -> None:
            self.on_click(true_label, predicted)

        return on_click


def _header(label: str) -> widgets.HTML:
    header = widgets.HTML(f"<b>{html.escape(label)}</b>")
    header.add_class("serlib-cm-header")
    return header


def _toggle_class(widget: widgets.DOMWidget, name: str, on: bool) -> None:
    if on:
        widget.add_class(name)
    else:
        widget.remove_class(name)


class ClipColumn:
    """The clips of one cell under one run, a page at a time, with previous/next buttons.

    ``make_row`` turns one clip (a dict of its table row) into a widget. ``box`` (CSS class
    ``serlib-clip-list``) holds the header, the pager (only when there is more than one page) and
    the rows. ``clips`` is the whole ordered cell, ``page`` the page shown (0 = the first).
    """

    def __init__(self, make_row: Callable[[Mapping[str, object]], widgets.Widget], page_size: int):
        self.make_row = make_row
        self.page_size = int(page_size)
        self.clips = pd.DataFrame()
        self.page = 0
        self.heading = ""
        self.box = widgets.VBox(layout=widgets.Layout(margin="0 16px 0 0"))
        self.box.add_class("serlib-clip-list")
        self.previous_button = widgets.Button(description="\u25c0 previous")
        self.next_button = widgets.Button(description="next \u25b6")
        self.previous_button.add_class("serlib-page-previous")
        self.next_button.add_class("serlib-page-next")
        self.previous_button.on_click(lambda _button: self.turn(-1))
        self.next_button.on_click(lambda _button: self.turn(+1))
        self.page_label = widgets.HTML()
        self.pager = widgets.HBox([self.previous_button, self.page_label, self.next_button])
        self.pager.add_class("serlib-pager")

    @property
    def pages(self) -> int:
        """How many pages the cell's clips fill."""
        return page_count(len(self.clips), self.page_size)

    @property
    def listed(self) -> pd.DataFrame:
        """The clips on the page shown."""
        return clip_page(self.clips, self.page, self.page_size) if len(self.clips) else self.clips

    def show_message(self, text: str) -> None:
        """Replace the listing by one line (a hint, or why there is nothing to list)."""
        self.clips, self.page = pd.DataFrame(), 0
        self._set_children([widgets.HTML(f"<i>{text}</i>")])

    def show(self, clips: pd.DataFrame, heading: str, page: int = 0) -> None:
        """List ``clips`` (already filtered and ordered) from page ``page``."""
        self.clips, self.heading = clips, heading
        self.page = min(max(page, 0), self.pages - 1)
        self._render()

    def turn(self, step: int) -> None:
        """Go ``step`` pages forward (or back, when negative); the first and last page stop it."""
        page = min(max(self.page + step, 0), self.pages - 1)
        if page != self.page:
            self.page = page
            self._render()

    def _render(self) -> None:
        listed, total = self.listed, len(self.clips)
        first = self.page * self.page_size + 1
        where = f", clips {first}-{first + len(listed) - 1}" if self.pages > 1 else ""
        header = (
            f"{self.heading}: showing {len(listed)} of {total} clip{'' if total == 1 else 's'}"
            f"{where}"
        )
        children: list[widgets.Widget] = [widgets.HTML(header)]
        if self.pages > 1:
            self.page_label.value = f"&nbsp;page {self.page + 1} of {self.pages}&nbsp;"
            self.previous_button.disabled = self.page == 0
            self.next_button.disabled = self.page == self.pages - 1
            children.append(self.pager)
        children.extend(self.make_row(clip) for clip in listed.to_dict("records"))
        self._set_children(children)

    def _set_children(self, children: list[widgets.Widget]) -> None:
        """Replace the listing, closing old rows (not the pager) so their audio leaves the kernel."""
        old = self.box.children
        self.box.children = children
        for child in old:
            if child is not self.pager and child not in children:
                close_tree(child)


def probabilities_text(clip: Mapping[str, object], labels: Sequence[str]) -> str:
    """The class probabilities of a clip, the predicted one in bold ("no probabilities" if none)."""
    parts = []
    for label in labels:
        value = clip.get(f"prob_{label}")
        if value is not None and pd.notna(value):
            text = f"{html.escape(label)} {float(value):.2f}"
            parts.append(f"<b>{text}</b>" if label == clip["pred"] else text)
    return SEPARATOR.join(parts) or "no probabilities"


def clip_details(clip: Mapping[str, object], labels: Sequence[str]) -> str:
    """File name, speaker, true label, prediction and probabilities of one clip, as HTML."""
    name = str(clip["path"]).replace("\\", "/").rsplit("/", 1)[-1]
    return (
        f"<b>{html.escape(name)}</b><br>"
        f"speaker {html.escape(str(clip.get('speaker', '')) or '?')}{SEPARATOR}"
        f"true {html.escape(str(clip['label']))}{SEPARATOR}"
        f"predicted {html.escape(str(clip['pred']))}<br>"
        f"<small>{probabilities_text(clip, labels)}</small>"
    )


def note(text: str, css_class: str) -> widgets.HTML:
    """A small line of text under a clip's details, with a CSS class for browser tests."""
    line = widgets.HTML(f"<small>{text}</small>", layout=widgets.Layout(width=ROW_WIDTH))
    line.add_class(css_class)
    return line


def clip_row(
    clip: Mapping[str, object],
    labels: Sequence[str],
    notes: Mapping[str, str],
    media: Sequence[widgets.Widget],
) -> widgets.VBox:
    """One listed clip: its details and notes (CSS class -> HTML, empty ones left out) above its
    log-mel image and player (``media``, from ``ClipSound.widgets_for``).

    Stacked rather than side by side, so two runs' listings fit next to each other in a notebook.
    """
    details = [widgets.HTML(clip_details(clip, labels), layout=widgets.Layout(width=ROW_WIDTH))]
    details.extend(note(text, css_class) for css_class, text in notes.items() if text)
    media_row = widgets.HBox(list(media), layout=widgets.Layout(align_items="center"))
    row = widgets.VBox([*details, media_row], layout=widgets.Layout(margin="4px 0 8px 0"))
    row.add_class("serlib-clip")
    return row


def other_run_text(other: str, set_name: str, found: Mapping[str, object] | None) -> str:
    """ "under dann: predicted sad (0.71), right": a clip under the other run, as HTML.

    ``found`` is ``explorer_data.clip_under_run``'s answer (None: that run never saw the clip).
    """
    if found is None:
        return f"not in {html.escape(other)}'s {html.escape(set_name)}"
    verdict = "right" if found["pred"] == found["label"] else "wrong"
    sure = found["confidence"]
    sure_text = "" if pd.isna(sure) else f" ({float(sure):.2f})"
    return (
        f"under <b>{html.escape(other)}</b>: predicted "
        f"<b>{html.escape(str(found['pred']))}</b>{sure_text}, {verdict}"
    )


class ClipSound:
    """Reads clips for the listing: a log-mel image and a player per clip, or why it cannot.

    Audio is read only for listed clips, resampled to ``sample_rate`` mono 16-bit WAV and cut to
    ``max_seconds`` so the notebook stays small. ``skipped`` keeps (path, reason) of each unreadable
    file once. Players never autoplay or loop.
    """

    def __init__(self, sample_rate: int, max_seconds: float):
        self.sample_rate = int(sample_rate)
        self.max_seconds = float(max_seconds)
        self.skipped: list[tuple[str, str]] = []

    def widgets_for(self, path: str) -> list[widgets.Widget]:
        """[log-mel image, audio player], or [one line saying why the audio is unavailable]."""
        try:
            waveform = load_audio(path, sample_rate=self.sample_rate)
        except AudioError as error:
            if (path, error.reason) not in self.skipped:
                self.skipped.append((path, error.reason))
            problem = widgets.HTML(f"<i>audio unavailable: {html.escape(error.reason)}</i>")
            problem.add_class("serlib-clip-error")
            return [problem]
        waveform = waveform[: int(self.max_seconds * self.sample_rate)]
        image = widgets.Image(
            value=log_mel_png(waveform, self.sample_rate),
            format="png",
            layout=widgets.Layout(width="200px", height="80px", object_fit="fill"),
        )
        image.add_class("serlib-clip-logmel")
        player = widgets.Audio(
            value=wav_bytes(waveform, self.sample_rate),
            format="wav",
            autoplay=False,
            loop=False,
            controls=True,
            layout=widgets.Layout(width="240px"),
        )
        player.add_class("serlib-clip-audio")
        return [image, player]


def speaker_recall_html(
    recalls: Mapping[str, pd.DataFrame], true_label: str | None, speaker: str
) -> str:
    """A table of recall per speaker: clips and UA per run, and the recall of ``true_label``.

    ``recalls`` maps run name -> ``explorer_data.per_speaker_recall`` table; the row of the
    speaker the explorer is filtered on (``speaker``, empty for none) is bold.
    """
    speakers = sorted(set().union(*(table.index for table in recalls.values())))
    if not speakers:
        return "<i>no speaker column: per-speaker recall is not available</i>"
    head = "<th style='text-align:left; padding:0 8px 0 0'>speaker</th>"
    for run in recalls:
        head += f"<th style={PAD}>{html.escape(run)}: clips</th>"
        head += f"<th style={PAD}>{html.escape(run)}: UA</th>"
        if true_label is not None:
            head += f"<th style={PAD}>{html.escape(run)}: recall {html.escape(true_label)}</th>"
    rows = []
    for name in speakers:
        cells = [f"<td style='text-align:left'>{html.escape(name)}</td>"]
        for table in recalls.values():
            row = table.loc[name] if name in table.index else None
            columns = ["clips", "ua"] + ([true_label] if true_label is not None else [])
            for column in columns:
                value = None if row is None else row[column]
                cells.append(f"<td style={PAD}>{_recall_cell(column, value)}</td>")
        style = " style='font-weight:bold'" if name == speaker else ""
        rows.append(f"<tr{style}>{''.join(cells)}</tr>")
    return (
        "<b>recall per speaker</b> (UA = mean recall over the classes the speaker has)"
        f"<table class='serlib-speaker-recall'><tr>{head}</tr>{''.join(rows)}</table>"
    )


def _recall_cell(column: str, value: object) -> str:
    if value is None or pd.isna(value):
        return "\u2013"
    return str(int(value)) if column == "clips" else f"{float(value):.0%}"
