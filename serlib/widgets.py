"""A clickable confusion-matrix explorer for the notebooks, built from core ipywidgets only.

Pick a run, an evaluation set, and counts or row-normalised values; click a cell of the matrix to
list the clips behind it (true label, prediction, class probabilities), each with a small log-mel
image and an audio player, a page at a time. Choose a second run under "compare" to see both
matrices side by side and the same cell's clips under each run, every clip saying what the other
run predicted for it. Order the clips by confidence or at random (seeded), keep one speaker, and
read the recall per speaker. Synthetic clips also say the cue parameters they were made with.

    explorer = ConfusionExplorer.from_run_dirs({"crnn": crnn_dir, "dann": dann_dir}, compare="dann")
    explorer          # last expression of a cell: shows the explorer
    explorer.picture()  # the same view as a static figure, for readers without a kernel

The explorer works on DataFrames, so it can be built and driven without any run folder:
``ConfusionExplorer({"crnn": {"target_test": predictions}}, labels)`` where ``predictions`` has the
columns ``path, label, pred`` and optionally ``speaker`` and ``prob_<class>`` per class (the layout of
a run folder's ``predictions/<set>.csv``). What it shows is computed by ``serlib.explorer_data``.
Its state is plain attributes for tests and curious users: ``selected_cell``, ``listed_paths``,
``selected_clips``, ``compare_listed_paths``, ``compare_clips``, ``page``, ``cell_buttons``,
``compare_buttons``, ``skipped``.

The CSS classes a browser test finds each piece by are listed in ``serlib.explorer_parts``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from serlib.errors import UserError
from serlib.explorer_data import (
    ALL_SPEAKERS,
    ORDERS,
    SynthParameters,
    cell_clips,
    check_compare,
    check_order,
    check_predictions,
    check_runs,
    clip_under_run,
    describe_synth_parameters,
    only_speaker,
    per_speaker_recall,
    predictions_confusion,
    read_run_predictions,
    sort_clips,
    speakers_of,
)
from serlib.explorer_figure import plot_explorer
from serlib.explorer_parts import (
    SEPARATOR,
    ClipColumn,
    ClipSound,
    MatrixGrid,
    clip_row,
    other_run_text,
    speaker_recall_html,
)

__all__ = [
    "ConfusionExplorer",
    "check_predictions",
    "predictions_confusion",
    "read_run_predictions",
]

MODES = (("counts", "counts"), ("row-normalised", "normalised"))
"""The value toggle's options: (text on the button, value)."""

NO_COMPARISON = ""
"""The compare picker's value for "one run only"."""

PICKER = {"layout": {"width": "230px"}, "style": {"description_width": "60px"}}


class ConfusionExplorer:
    """Explore confusion matrices of one or more runs and listen to the clips in each cell.

    ``runs`` maps run name -> evaluation-set name -> predictions DataFrame. ``labels`` is the class
    list (the matrix order), shared by all runs, or a mapping run name -> labels when runs use
    different label schemes. ``max_clips`` is how many clips a page lists; ``max_seconds`` caps each
    audio player's length. ``compare`` names a second run to show beside the first (it must use the
    same labels); ``order`` is one of ``explorer_data.ORDERS`` and ``seed`` draws the "random" order.
    """

    def __init__(
        self,
        runs: Mapping[str, Mapping[str, pd.DataFrame]],
        labels: Sequence[str] | Mapping[str, Sequence[str]],
        *,
        max_clips: int = 12,
        sample_rate: int = 16000,
        max_seconds: float = 10.0,
        compare: str | None = None,
        order: str = "most confident",
        seed: int = 0,
    ):
        if max_clips < 1:
            raise UserError(f"max_clips must be at least 1, got {max_clips}")
        if max_seconds <= 0:
            raise UserError(f"max_seconds must be positive, got {max_seconds}")
        check_order(order)
        self.max_clips = int(max_clips)
        self.runs, self.labels = check_runs(runs, labels)
        first_run = next(iter(self.runs))
        if compare is not None:
            check_compare(self.labels, first_run, str(compare))

        self.selected_cell: tuple[str, str] | None = None
        self.sound = ClipSound(sample_rate, max_seconds)
        self.synth = SynthParameters()
        self._quiet = False
        self._build_controls(first_run, order, int(seed))
        self.grids = [MatrixGrid(self._clicked), MatrixGrid(self._clicked)]
        self.columns = [
            ClipColumn(lambda clip, index=index: self._clip_row(clip, index), self.max_clips)
            for index in (0, 1)
        ]
        self.columns[1].box.add_class("serlib-clip-list-compare")
        self.speaker_recall = widgets.HTML()
        wrap = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        self.matrices = widgets.HBox(layout=wrap)
        self.listings = widgets.HBox(layout=wrap)
        self.widget = widgets.VBox(
            [*self.control_rows, self.matrices, self.speaker_recall, self.listings]
        )
        self.widget.add_class("serlib-confusion-explorer")
        if compare is not None:
            self._quietly(lambda: setattr(self.compare_picker, "value", str(compare)))
        self._refresh_speakers()
        self._arrange()
        self._observe()
        self._redraw(clear=True)

    def _build_controls(self, first_run: str, order: str, seed: int) -> None:
        """The pickers: run, compared run, set, counts or fractions; order, seed, speaker."""
        self.run_picker = widgets.Dropdown(
            options=list(self.runs), value=first_run, description="run", **PICKER
        )
        self.compare_picker = widgets.Dropdown(
            options=self._compare_options(first_run), description="compare", **PICKER
        )
        self.compare_picker.add_class("serlib-compare-picker")
        self.set_picker = widgets.Dropdown(
            options=list(self.runs[first_run]), description="set", **PICKER
        )
        self.mode_picker = widgets.ToggleButtons(
            options=list(MODES), value="counts", style={"button_width": "125px"}
        )
        self.order_picker = widgets.Dropdown(
            options=list(ORDERS), value=order, description="order", **PICKER
        )
        self.seed_picker = widgets.IntText(value=seed, description="seed", **PICKER)
        self.speaker_picker = widgets.Dropdown(description="speaker", **PICKER)
        row = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.control_rows = [
            widgets.HBox(
                [self.run_picker, self.compare_picker, self.set_picker, self.mode_picker],
                layout=row,
            ),
            widgets.HBox([self.order_picker, self.seed_picker, self.speaker_picker], layout=row),
        ]

    def _observe(self) -> None:
        self.run_picker.observe(self._on_run_change, names="value")
        self.compare_picker.observe(self._on_compare_change, names="value")
        self.set_picker.observe(self._on_set_change, names="value")
        self.mode_picker.observe(self._on_mode_change, names="value")
        self.order_picker.observe(self._on_order_change, names="value")
        self.seed_picker.observe(self._on_order_change, names="value")
        self.speaker_picker.observe(self._on_speaker_change, names="value")

    @classmethod
    def from_run_dirs(
        cls,
        run_dirs: Sequence[str | Path] | Mapping[str, str | Path],
        **options,
    ) -> ConfusionExplorer:
        """Build the explorer from run folders (``config.json`` + ``predictions/<set>.csv``).

        Runs are named after their folders; pass a mapping name -> folder when two folders share a
        name. Options (``max_clips``, ``compare``, ``order``, ``seed``, ``sample_rate``,
        ``max_seconds``) go to the constructor.
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
        """The run whose matrix is shown first."""
        return self.run_picker.value

    @property
    def compare(self) -> str | None:
        """The run shown beside it, or None."""
        return self.compare_picker.value or None

    @property
    def eval_set(self) -> str:
        """The evaluation set whose matrices are shown."""
        return self.set_picker.value

    @property
    def mode(self) -> str:
        """``"counts"`` or ``"normalised"`` (row-normalised)."""
        return self.mode_picker.value

    @property
    def order(self) -> str:
        """How a cell's clips are ordered (one of ``explorer_data.ORDERS``)."""
        return self.order_picker.value

    @property
    def seed(self) -> int:
        """The seed of the "random" order."""
        return int(self.seed_picker.value)

    @property
    def speaker(self) -> str:
        """The speaker the matrices and listings are restricted to; empty for every speaker."""
        return self.speaker_picker.value or ALL_SPEAKERS

    @property
    def predictions(self) -> pd.DataFrame:
        """The predictions table of the current run and set (every speaker)."""
        return self.runs[self.run][self.eval_set]

    @property
    def confusion(self) -> np.ndarray:
        """Counts of the first matrix shown (speaker filter applied), rows = true labels."""
        return predictions_confusion(self._table(self.run), self.labels[self.run])

    @property
    def shown_runs(self) -> list[str]:
        """The run, and the compared run when one is chosen."""
        return [self.run] + ([self.compare] if self.compare else [])

    # Backward-compatible names for the first run's pieces.
    matrix = property(lambda self: self.grids[0].grid, doc="The first run's grid of cells.")
    summary = property(lambda self: self.grids[0].summary, doc="The first run's summary line.")
    clip_list = property(lambda self: self.columns[0].box, doc="The first run's clip listing.")
    cell_buttons = property(lambda self: self.grids[0].buttons, doc="(true, pred) -> cell button")
    compare_buttons = property(lambda self: self.grids[1].buttons, doc="The compared run's cells.")
    skipped = property(lambda self: self.sound.skipped, doc="(path, reason) of unreadable clips.")
    selected_clips = property(lambda self: self.columns[0].clips, doc="The cell's clips, ordered.")
    compare_clips = property(lambda self: self.columns[1].clips, doc="Same, the compared run.")
    page = property(lambda self: self.columns[0].page, doc="The first run's page (0 = first).")
    listed_paths = property(lambda self: _paths(self.columns[0]), doc="Paths on the first page.")
    compare_listed_paths = property(lambda self: _paths(self.columns[1]), doc="Same, compared.")

    def cell_text(self, true_label: str, predicted: str) -> str:
        """The text a cell shows in the current mode (a count, or a row fraction to 2 decimals)."""
        return self.cell_buttons[(true_label, predicted)].description

    def _repr_mimebundle_(self, **kwargs):
        """Show the explorer's widget when the explorer is a cell's last expression."""
        return self.widget._repr_mimebundle_(**kwargs)

    def _table(self, run: str) -> pd.DataFrame | None:
        """``run``'s predictions on the current set, for the chosen speaker; None if it has none."""
        table = self.runs[run].get(self.eval_set)
        return None if table is None else only_speaker(table, self.speaker)

    # ----- choosing runs -----------------------------------------------------------------------

    def _compare_options(self, run: str) -> list[tuple[str, str]]:
        """Every other run with the same labels (a cell means the same thing in both)."""
        others = [
            name for name in self.runs if name != run and self.labels[name] == self.labels[run]
        ]
        return [("none", NO_COMPARISON)] + [(name, name) for name in others]

    def _quietly(self, change) -> None:
        """Change controls without their observers redrawing half-updated state."""
        self._quiet = True
        try:
            change()
        finally:
            self._quiet = False

    def _refresh_speakers(self) -> None:
        """Offer the speakers of the shown runs' current set; keep the chosen one if still there."""
        tables = [self.runs[run][self.eval_set] for run in self.shown_runs if self._has_set(run)]
        speakers = speakers_of(*tables)
        previous = self.speaker

        def update() -> None:
            self.speaker_picker.options = [("all speakers", ALL_SPEAKERS)] + [
                (speaker, speaker) for speaker in speakers
            ]
            self.speaker_picker.value = previous if previous in speakers else ALL_SPEAKERS

        self._quietly(update)

    def _has_set(self, run: str) -> bool:
        return self.eval_set in self.runs[run]

    def _arrange(self) -> None:
        """One matrix and one listing, or two side by side in compare mode."""
        shown = len(self.shown_runs)
        self.matrices.children = [grid.box for grid in self.grids[:shown]]
        self.listings.children = [column.box for column in self.columns[:shown]]

    def _on_run_change(self, change) -> None:
        if self._quiet:
            return
        run, previous_set, previous_compare = change["new"], self.eval_set, self.compare
        sets = list(self.runs[run])

        def update() -> None:
            self.set_picker.options = sets
            self.set_picker.value = previous_set if previous_set in sets else sets[0]
            options = self._compare_options(run)
            self.compare_picker.options = options
            valid = previous_compare in [value for _, value in options]
            self.compare_picker.value = previous_compare if valid else NO_COMPARISON

        self._quietly(update)
        self._refresh_speakers()
        self._arrange()
        self._redraw(clear=True)

    def _on_compare_change(self, change) -> None:
        if not self._quiet:
            self._refresh_speakers()
            self._arrange()
            self._redraw(clear=False)

    def _on_set_change(self, change) -> None:
        if not self._quiet and change["new"] is not None:
            self._refresh_speakers()
            self._redraw(clear=True)

    def _on_speaker_change(self, change) -> None:
        if not self._quiet:
            self._redraw(clear=False)

    def _on_mode_change(self, change) -> None:
        self._draw_matrices()

    def _on_order_change(self, change) -> None:
        if not self._quiet and self.selected_cell is not None:
            self._list_cell()

    # ----- drawing -----------------------------------------------------------------------------

    def _redraw(self, clear: bool) -> None:
        """Matrices, per-speaker recall and listing; ``clear`` forgets the clicked cell."""
        if clear:
            self.selected_cell = None
        self._draw_matrices()
        self._draw_speaker_recall()
        if self.selected_cell is None:
            for column in self.columns:
                column.show_message("Click a cell of the matrix to list its clips.")
        else:
            self._list_cell()

    def _draw_matrices(self) -> None:
        labels = self.labels[self.run]
        for grid, run in zip(self.grids, self.shown_runs, strict=False):
            table = self._table(run)
            if table is None:
                grid.summary.value = f"<i>{html.escape(run)} has no {self.eval_set} predictions</i>"
                grid.grid.layout.display = "none"
                continue
            grid.grid.layout.display = None
            name = f"{run} on {self.eval_set}" + (
                f", speaker {self.speaker}" if self.speaker else ""
            )
            counts = predictions_confusion(table, labels)
            grid.draw(name, counts, labels, self.mode == "normalised", self.selected_cell)

    def _draw_speaker_recall(self) -> None:
        labels = self.labels[self.run]
        recalls = {
            run: per_speaker_recall(self.runs[run][self.eval_set], labels)
            for run in self.shown_runs
            if self._has_set(run)
        }
        true_label = self.selected_cell[0] if self.selected_cell else None
        self.speaker_recall.value = speaker_recall_html(recalls, true_label, self.speaker)

    def _clicked(self, true_label: str, predicted: str) -> None:
        self.select_cell(true_label, predicted)  # looked up at click time, so it can be replaced

    # ----- the listing -------------------------------------------------------------------------

    def select_cell(self, true_label: str, predicted: str) -> list[str]:
        """List the clips with this true label and prediction; return the first run's listed paths.

        This is what a click on a cell does, in either matrix. Clips are ordered by the order
        picker and listed a page of ``max_clips`` at a time, for each run shown.
        """
        labels = self.labels[self.run]
        for name, value in (("true label", true_label), ("predicted label", predicted)):
            if value not in labels:
                raise UserError(f"{name} {value!r} is not one of {labels}")
        self.selected_cell = (true_label, predicted)
        self._draw_matrices()
        self._draw_speaker_recall()
        self._list_cell()
        return self.listed_paths

    def _list_cell(self) -> None:
        true_label, predicted = self.selected_cell
        cell = f"<b>true {html.escape(true_label)}, predicted {html.escape(predicted)}</b>"
        for column, run in zip(self.columns, self.shown_runs, strict=False):
            table = self._table(run)
            if table is None:
                column.show_message(f"{html.escape(run)} has no {self.eval_set} predictions")
                continue
            clips = sort_clips(cell_clips(table, true_label, predicted), self.order, self.seed)
            heading = f"<b>{html.escape(run)}</b>{SEPARATOR}{cell}" if self.compare else cell
            column.show(clips, heading)

    def next_page(self, compare: bool = False) -> list[str]:
        """Show the next page of the first run's listing (the compared run's with ``compare``)."""
        self.columns[int(compare)].turn(+1)
        return _paths(self.columns[int(compare)])

    def previous_page(self, compare: bool = False) -> list[str]:
        """Show the previous page of the first run's listing (the compared run's with ``compare``)."""
        self.columns[int(compare)].turn(-1)
        return _paths(self.columns[int(compare)])

    def _clip_row(self, clip: Mapping[str, object], index: int) -> widgets.HBox:
        """One clip: details, the other run's prediction, cue parameters, log-mel and player."""
        path = str(clip["path"])
        notes = {}
        if self.compare:
            other = self.shown_runs[1 - index]
            table = self.runs[other].get(self.eval_set)
            found = None if table is None else clip_under_run(table, path)
            notes["serlib-clip-other"] = other_run_text(other, self.eval_set, found)
        notes["serlib-clip-synth"] = html.escape(describe_synth_parameters(self.synth.lookup(path)))
        return clip_row(clip, self.labels[self.run], notes, self.sound.widgets_for(path))

    # ----- a static picture --------------------------------------------------------------------

    def picture(self, clips: int = 3) -> Figure:
        """What the explorer shows, as a matplotlib figure (for a notebook read without a kernel).

        The matrices of the shown runs with the clicked cell framed (the biggest confusion when no
        cell was clicked), and the log-mels of that cell's first ``clips`` clips under each run, in
        the explorer's order, speaker filter and seed.
        """
        tables = {
            run: self.runs[run][self.eval_set] for run in self.shown_runs if self._has_set(run)
        }
        return plot_explorer(
            tables,
            self.labels[self.run],
            cell=self.selected_cell,
            clips=clips,
            order=self.order,
            seed=self.seed,
            speaker=self.speaker,
            set_name=self.eval_set,
            sample_rate=self.sound.sample_rate,
            max_seconds=self.sound.max_seconds,
        )


def _paths(column: ClipColumn) -> list[str]:
    listed = column.listed
    return listed["path"].tolist() if "path" in listed.columns else []
