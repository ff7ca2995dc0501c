"""A clickable confusion-matrix explorer for the notebooks, built from core ipywidgets only.

Pick a run, an evaluation set, and counts or row-normalised values; click a cell of the matrix to
list the clips behind it (true label, prediction, class probabilities), each with a small log-mel
image and an audio player. Core widgets (Dropdown, ToggleButtons, GridBox of Buttons, Image, Audio)
render in JupyterLab, Notebook 7, VS Code and Colab without any front-end extension.

    explorer = ConfusionExplorer.from_run_dirs(["data/runs/crnn", "data/runs/dann"])
    explorer          # last expression of a cell: shows the explorer

The explorer works on DataFrames, so it can be built and driven without any run folder:
``ConfusionExplorer({"crnn": {"target_test": predictions}}, labels)`` where ``predictions`` has the
columns ``path, label, pred`` and optionally ``speaker`` and ``prob_<class>`` per class (the layout of
a run folder's ``predictions/<set>.csv``). Its state is plain attributes for tests and curious users:
``selected_cell``, ``listed_paths``, ``selected_clips``, ``cell_buttons``, ``skipped``.

Audio is read lazily, only for the clips listed (at most ``max_clips``), resampled to 16 kHz mono
16-bit WAV and cut to ``max_seconds`` so the notebook file stays small. Players never autoplay or loop.

Stable CSS classes for browser tests: ``serlib-confusion-explorer`` (the whole widget),
``serlib-cm-cell`` and ``serlib-cm-cell-nonempty`` (matrix cells), ``serlib-cm-cell-selected``,
``serlib-clip-list`` (the listing), ``serlib-clip`` (one listed clip), ``serlib-clip-audio``,
``serlib-clip-logmel``, ``serlib-clip-error`` (a clip whose audio could not be read).
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import matplotlib
import numpy as np
import pandas as pd
import soundfile as sf

from serlib import metrics
from serlib.audio import AudioError, load_audio
from serlib.data_plots import log_mel_png
from serlib.errors import UserError
from serlib.figures import CONFUSION_CMAP
from serlib.plots import row_normalise

REQUIRED_COLUMNS = ("path", "label", "pred")
"""Columns every predictions table needs; ``speaker`` and ``prob_<class>`` are optional."""

MODES = (("counts", "counts"), ("row-normalised", "normalised"))
"""The value toggle's options: (text on the button, value)."""

SET_ORDER = ("source_test", "target_test", "target_all", "source_val")
"""How a run folder's evaluation sets are offered: test sets first, the rest alphabetically after."""

CELL_WIDTH = "68px"


def predictions_confusion(predictions: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """Count clips per (true label, predicted label); rows = true, columns = predicted."""
    index = {label: i for i, label in enumerate(labels)}
    return metrics.confusion_matrix(
        predictions["label"].map(index).to_numpy(dtype=np.int64),
        predictions["pred"].map(index).to_numpy(dtype=np.int64),
        num_classes=len(labels),
    )


def check_predictions(predictions: pd.DataFrame, labels: Sequence[str], where: str) -> pd.DataFrame:
    """Validate one predictions table and return a clean copy with string labels.

    Every true and predicted label must be one of ``labels``: a mismatch means the table and the
    label list come from different runs or schemes, and the matrix would silently be wrong.
    """
    if not isinstance(predictions, pd.DataFrame):
        raise TypeError(f"{where}: predictions must be a pandas DataFrame, got {type(predictions)}")
    missing = [column for column in REQUIRED_COLUMNS if column not in predictions.columns]
    if missing:
        raise UserError(
            f"{where}: predictions lack column(s) {missing}; they have {list(predictions.columns)}"
        )
    if predictions.empty:
        raise UserError(f"{where}: predictions table has no rows")
    table = predictions.reset_index(drop=True).copy()
    for column in ("path", "label", "pred"):
        if table[column].isna().any():
            raise UserError(f"{where}: column {column!r} has missing values")
        table[column] = table[column].astype(str)
    table["speaker"] = table["speaker"].fillna("").astype(str) if "speaker" in table.columns else ""
    unknown = sorted((set(table["label"]) | set(table["pred"])) - set(labels))
    if unknown:
        raise UserError(f"{where}: labels {unknown} are not among the run's labels {list(labels)}")
    return table


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """Encode a mono float waveform as 16-bit PCM WAV bytes (what ipywidgets.Audio plays)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(waveform, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class ConfusionExplorer:
    """Explore confusion matrices of one or more runs and listen to the clips in each cell.

    ``runs`` maps run name -> evaluation-set name -> predictions DataFrame. ``labels`` is the class
    list (the matrix order), shared by all runs, or a mapping run name -> labels when runs use
    different label schemes. ``max_clips`` caps how many clips a click lists (those the model was
    most confident about first); ``max_seconds`` caps each audio player's length.
    """

    def __init__(
        self,
        runs: Mapping[str, Mapping[str, pd.DataFrame]],
        labels: Sequence[str] | Mapping[str, Sequence[str]],
        *,
        max_clips: int = 12,
        sample_rate: int = 16000,
        max_seconds: float = 10.0,
    ):
        if not runs:
            raise UserError("ConfusionExplorer needs at least one run")
        if isinstance(labels, str):
            raise TypeError(f"labels must be a list of class names, not the string {labels!r}")
        if max_clips < 1:
            raise UserError(f"max_clips must be at least 1, got {max_clips}")
        if max_seconds <= 0:
            raise UserError(f"max_seconds must be positive, got {max_seconds}")
        self.max_clips = int(max_clips)
        self.sample_rate = int(sample_rate)
        self.max_seconds = float(max_seconds)
        self.labels: dict[str, list[str]] = {}
        self.runs: dict[str, dict[str, pd.DataFrame]] = {}
        for run, sets in runs.items():
            run = str(run)
            if isinstance(labels, Mapping) and run not in labels:
                raise UserError(f"no labels given for run {run!r}")
            run_labels = labels[run] if isinstance(labels, Mapping) else labels
            run_labels = [str(label) for label in run_labels]
            if len(run_labels) < 2 or len(set(run_labels)) != len(run_labels):
                raise UserError(f"run {run!r}: labels must be at least 2 distinct names")
            if not sets:
                raise UserError(f"run {run!r} has no evaluation sets")
            self.labels[run] = run_labels
            self.runs[run] = {
                str(name): check_predictions(table, run_labels, f"run {run!r}, set {name!r}")
                for name, table in sets.items()
            }

        self.selected_cell: tuple[str, str] | None = None
        self.selected_clips: pd.DataFrame = pd.DataFrame()
        self.listed_paths: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self.cell_buttons: dict[tuple[str, str], widgets.Button] = {}
        self._grid_labels: list[str] | None = None
        self._switching_run = False

        first_run = next(iter(self.runs))
        picker_layout = {"width": "230px"}
        picker_style = {"description_width": "30px"}
        self.run_picker = widgets.Dropdown(
            options=list(self.runs),
            value=first_run,
            description="run",
            layout=picker_layout,
            style=picker_style,
        )
        self.set_picker = widgets.Dropdown(
            options=list(self.runs[first_run]),
            description="set",
            layout=picker_layout,
            style=picker_style,
        )
        self.mode_picker = widgets.ToggleButtons(
            options=list(MODES), value="counts", style={"button_width": "125px"}
        )
        self.summary = widgets.HTML()
        self.matrix = widgets.GridBox()
        self.clip_list = widgets.VBox()
        self.clip_list.add_class("serlib-clip-list")
        controls = widgets.HBox(
            [self.run_picker, self.set_picker, self.mode_picker],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.widget = widgets.VBox([controls, self.summary, self.matrix, self.clip_list])
        self.widget.add_class("serlib-confusion-explorer")

        self.run_picker.observe(self._on_run_change, names="value")
        self.set_picker.observe(self._on_set_change, names="value")
        self.mode_picker.observe(self._on_mode_change, names="value")
        self._draw_matrix()
        self._show_hint()

    @classmethod
    def from_run_dirs(
        cls,
        run_dirs: Sequence[str | Path] | Mapping[str, str | Path],
        **options,
    ) -> ConfusionExplorer:
        """Build the explorer from run folders (``config.json`` + ``predictions/<set>.csv``).

        Runs are named after their folders; pass a mapping name -> folder when two folders share a
        name. Options (``max_clips``, ``sample_rate``, ``max_seconds``) go to the constructor.
        """
        if isinstance(run_dirs, Mapping):
            named = {str(name): Path(folder) for name, folder in run_dirs.items()}
        else:
            folders = [Path(folder) for folder in run_dirs]
            names = [folder.resolve().name for folder in folders]
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise UserError(
                    f"run folders share the name(s) {duplicates}; pass a mapping name -> folder"
                )
            named = dict(zip(names, folders, strict=True))
        runs, labels = {}, {}
        for name, folder in named.items():
            labels[name], runs[name] = read_run_predictions(folder)
        return cls(runs, labels, **options)

    # ----- what the explorer shows -------------------------------------------------------------

    @property
    def run(self) -> str:
        """The run whose matrix is shown."""
        return self.run_picker.value

    @property
    def eval_set(self) -> str:
        """The evaluation set whose matrix is shown."""
        return self.set_picker.value

    @property
    def mode(self) -> str:
        """``"counts"`` or ``"normalised"`` (row-normalised)."""
        return self.mode_picker.value

    @property
    def predictions(self) -> pd.DataFrame:
        """The predictions table of the current run and set."""
        return self.runs[self.run][self.eval_set]

    @property
    def confusion(self) -> np.ndarray:
        """Counts of the current matrix, rows = true labels, columns = predictions."""
        return predictions_confusion(self.predictions, self.labels[self.run])

    def cell_text(self, true_label: str, predicted: str) -> str:
        """The text a cell shows in the current mode (a count, or a row fraction to 2 decimals)."""
        return self.cell_buttons[(true_label, predicted)].description

    def _repr_mimebundle_(self, **kwargs):
        """Show the explorer's widget when the explorer is a cell's last expression."""
        return self.widget._repr_mimebundle_(**kwargs)

    # ----- reacting to the controls ------------------------------------------------------------

    def _on_run_change(self, change) -> None:
        sets = list(self.runs[change["new"]])
        previous = self.set_picker.value
        self._switching_run = True
        try:
            self.set_picker.options = sets
            self.set_picker.value = previous if previous in sets else sets[0]
        finally:
            self._switching_run = False
        self._reset()

    def _on_set_change(self, change) -> None:
        if not self._switching_run and change["new"] is not None:
            self._reset()

    def _on_mode_change(self, change) -> None:
        self._draw_matrix()

    def _reset(self) -> None:
        """A new matrix: redraw it and clear the listing (the old cell belongs to another matrix)."""
        self.selected_cell = None
        self.selected_clips = pd.DataFrame()
        self.listed_paths = []
        self._draw_matrix()
        self._show_hint()

    # ----- the matrix --------------------------------------------------------------------------

    def _draw_matrix(self) -> None:
        """Show the current run, set and mode; the grid is rebuilt only when the labels change."""
        labels = self.labels[self.run]
        if self._grid_labels != labels:
            self._build_grid(labels)
        counts = self.confusion
        fractions = row_normalise(counts)
        normalised = self.mode == "normalised"
        shade = fractions if normalised else counts / max(counts.max(), 1)
        colours = matplotlib.colormaps[CONFUSION_CMAP]  # the same shading as the figures
        for row, true_label in enumerate(labels):
            for column, predicted in enumerate(labels):
                count = int(counts[row, column])
                fraction = float(fractions[row, column])
                button = self.cell_buttons[(true_label, predicted)]
                button.description = f"{fraction:.2f}" if normalised else str(count)
                button.tooltip = (
                    f"true {true_label}, predicted {predicted}: {count} clip"
                    f"{'' if count == 1 else 's'} ({fraction:.0%} of {true_label})"
                )
                button.disabled = count == 0
                level = 0.08 + 0.85 * float(shade[row, column])
                button.style.button_color = matplotlib.colors.to_hex(colours(level))
                button.style.text_color = "white" if level > 0.55 else "black"
                if count > 0:
                    button.add_class("serlib-cm-cell-nonempty")
                else:
                    button.remove_class("serlib-cm-cell-nonempty")
                selected = self.selected_cell == (true_label, predicted)
                if selected:
                    button.add_class("serlib-cm-cell-selected")
                else:
                    button.remove_class("serlib-cm-cell-selected")
                button.style.font_weight = "bold" if selected else ""
        self.summary.value = self._summary_html(counts)

    def _build_grid(self, labels: Sequence[str]) -> None:
        """Create the header labels and one button per (true, predicted) cell."""
        for child in self.matrix.children:
            child.close()
        cells: list[widgets.Widget] = [widgets.HTML("<i>true \u2193 / predicted \u2192</i>")]
        cells.extend(self._header(predicted) for predicted in labels)
        self.cell_buttons = {}
        for true_label in labels:
            cells.append(self._header(true_label))
            for predicted in labels:
                button = widgets.Button(layout=widgets.Layout(width=CELL_WIDTH, height="34px"))
                button.add_class("serlib-cm-cell")
                button.on_click(self._click_handler(true_label, predicted))
                self.cell_buttons[(true_label, predicted)] = button
                cells.append(button)
        self.matrix.children = cells
        self.matrix.layout = widgets.Layout(
            grid_template_columns=f"auto repeat({len(labels)}, {CELL_WIDTH})",
            grid_gap="2px",
            width="max-content",
        )
        self._grid_labels = list(labels)

    @staticmethod
    def _header(label: str) -> widgets.HTML:
        header = widgets.HTML(f"<b>{html.escape(label)}</b>")
        header.add_class("serlib-cm-header")
        return header

    def _summary_html(self, counts: np.ndarray) -> str:
        """One line above the matrix: clip count, UA and WA of the current run and set."""
        recalls = metrics.per_class_recall(counts)
        return (
            f"{html.escape(self.run)} on {html.escape(self.eval_set)}: "
            f"{int(counts.sum())} clips, UA {np.nanmean(recalls):.1%}, "
            f"WA {np.trace(counts) / counts.sum():.1%} (rows = true labels)"
        )

    def _click_handler(self, true_label: str, predicted: str):
        def on_click(_button: widgets.Button) -> None:
            self.select_cell(true_label, predicted)

        return on_click

    # ----- the listing -------------------------------------------------------------------------

    def _set_listing(self, rows: list[widgets.Widget]) -> None:
        """Replace the listing, closing the old rows so their audio bytes leave the kernel."""
        old = self.clip_list.children
        self.clip_list.children = rows
        for row in old:
            _close_tree(row)

    def _show_hint(self) -> None:
        self._set_listing([widgets.HTML("<i>Click a cell of the matrix to list its clips.</i>")])

    def select_cell(self, true_label: str, predicted: str) -> list[str]:
        """List the clips with this true label and prediction; return the listed paths.

        This is what a click on a cell does. Clips are ordered by the model's probability for the
        predicted class (most confident first) when probabilities are present, and at most
        ``max_clips`` are listed.
        """
        labels = self.labels[self.run]
        for name, value in (("true label", true_label), ("predicted label", predicted)):
            if value not in labels:
                raise UserError(f"{name} {value!r} is not one of {labels}")
        table = self.predictions
        chosen = table[(table["label"] == true_label) & (table["pred"] == predicted)]
        probability = f"prob_{predicted}"
        if probability in chosen.columns:
            chosen = chosen.sort_values(probability, ascending=False, kind="stable")
        self.selected_cell = (true_label, predicted)
        self.selected_clips = chosen
        listed = chosen.head(self.max_clips)
        self.listed_paths = listed["path"].tolist()
        self._draw_matrix()

        plural = "" if len(chosen) == 1 else "s"
        header = (
            f"<b>true {html.escape(true_label)}, predicted {html.escape(predicted)}</b>: "
            f"showing {len(listed)} of {len(chosen)} clip{plural}"
        )
        rows: list[widgets.Widget] = [widgets.HTML(header)]
        rows.extend(self._clip_row(clip, labels) for clip in listed.to_dict("records"))
        self._set_listing(rows)
        return self.listed_paths

    def _clip_row(self, clip: Mapping[str, object], labels: Sequence[str]) -> widgets.HBox:
        """One listed clip: its details and probabilities, a log-mel image and an audio player."""
        path = str(clip["path"])
        probabilities = []
        for label in labels:
            value = clip.get(f"prob_{label}")
            if value is not None and pd.notna(value):
                text = f"{html.escape(label)} {float(value):.2f}"
                probabilities.append(f"<b>{text}</b>" if label == clip["pred"] else text)
        separator = " \u00b7 "
        details = (
            f"<b>{html.escape(Path(path).name)}</b><br>"
            f"speaker {html.escape(str(clip['speaker']) or '?')}{separator}"
            f"true {html.escape(str(clip['label']))}{separator}"
            f"predicted {html.escape(str(clip['pred']))}<br>"
            f"<small>{separator.join(probabilities) or 'no probabilities'}</small>"
        )
        children: list[widgets.Widget] = [
            widgets.HTML(details, layout=widgets.Layout(width="320px"))
        ]
        try:
            waveform = load_audio(path, sample_rate=self.sample_rate)
        except AudioError as error:
            if (path, error.reason) not in self.skipped:  # count each bad file once
                self.skipped.append((path, error.reason))
            problem = widgets.HTML(f"<i>audio unavailable: {html.escape(error.reason)}</i>")
            problem.add_class("serlib-clip-error")
            children.append(problem)
        else:
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
            )
            player.add_class("serlib-clip-audio")
            children.extend([image, player])
        row = widgets.HBox(children, layout=widgets.Layout(align_items="center"))
        row.add_class("serlib-clip")
        return row


def _close_tree(widget: widgets.Widget) -> None:
    """Close a widget and everything inside it (closing a box leaves its children open)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def read_run_predictions(run_dir: str | Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """Read a run folder's labels (``config.json``) and its ``predictions/<set>.csv`` tables."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.json)")
    try:
        labels = json.loads(config_path.read_text())["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{config_path}: cannot read the run's labels ({error!r})") from None
    files = sorted(
        (run_dir / "predictions").glob("*.csv"),
        key=lambda file: (
            SET_ORDER.index(file.stem) if file.stem in SET_ORDER else len(SET_ORDER),
            file.stem,
        ),
    )
    if not files:
        raise UserError(f"{run_dir}: no predictions/<set>.csv (evaluate the run first)")
    text_columns = {"path": str, "speaker": str, "label": str, "pred": str}
    sets = {file.stem: pd.read_csv(file, dtype=text_columns) for file in files}
    return [str(label) for label in labels], sets
