"""Notebooks for the UI test: the copy JupyterLab serves, a demo, and deliberately broken variants.

The test never opens a committed notebook in place: ``prepare_notebook`` copies it, outputs
cleared, into the folder the server serves. The demo notebook builds the confusion explorer from a
fake predictions table and tiny tones, so the browser checks can be developed and self-checked in
seconds, without training anything. Each broken variant breaks one thing the test must catch; the
self-check runs them and expects each to fail at its named check.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

DEMO_SETUP = """\
import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from serlib.widgets import ConfusionExplorer

LABELS = ["angry", "happy", "neutral", "sad"]
PITCH_HZ = {"angry": 260.0, "happy": 330.0, "neutral": 150.0, "sad": 110.0}
clips = Path(os.environ.get("SERLIB_HOME", "data")) / "ui-demo-clips"
clips.mkdir(parents=True, exist_ok=True)"""

DEMO_PREDICTIONS = """\
rng = np.random.default_rng(0)
rate = 16000
time = np.arange(int(0.6 * rate)) / rate


def probabilities_for(pred):
    # random class probabilities in which the prediction is the most probable class
    values = rng.dirichlet(np.ones(4))
    values[LABELS.index(pred)] += 1.0
    return values / values.sum()


rows, after_rows = [], []
for index in range(48):
    label = LABELS[index % 4]
    tone = 0.3 * np.sin(2 * np.pi * PITCH_HZ[label] * time) * np.hanning(time.size)
    path = clips / f"clip{index:02d}.wav"
    sf.write(path, tone.astype(np.float32), rate)
    # two runs that err on different clips: every diagonal cell holds more than a page of six
    for table, pred in (
        (rows, label if index % 5 else LABELS[(index + 1) % 4]),
        (after_rows, label if index % 7 else LABELS[(index + 2) % 4]),
    ):
        row = {"path": str(path), "speaker": f"spk{index % 3}", "label": label, "pred": pred}
        row.update({f"prob_{name}": p for name, p in zip(LABELS, probabilities_for(pred))})
        table.append(row)
predictions, after = pd.DataFrame(rows), pd.DataFrame(after_rows)
predictions.head()"""

DEMO_EXPLORER = """\
explorer = ConfusionExplorer(
    {"before": {"test": predictions}, "after": {"test": after}}, LABELS, max_clips=6
)
explorer"""

BROKEN_CASES = {
    "no-explorer": "explorer-renders",
    "no-widget-manager": "explorer-renders",
    "click-lists-nothing": "click-lists-clips",
    "no-audio": "audio-plays",
    "error-output": "no-error-output",
    "compare-lists-one-run": "compare-lists-both",
    "pager-stuck": "page-turns",
}
"""Each broken variant of the demo notebook, and the check that must catch it."""

BROKEN_EXPLORER_LINES = {
    # The click handler calls self.select_cell: replace it with one that lists nothing.
    "click-lists-nothing": "explorer.select_cell = lambda true_label, predicted: []",
    # The compared run's listing never fills: it keeps its "click a cell" hint.
    "compare-lists-one-run": "explorer.columns[1].show = lambda clips, heading, page=0: None",
    # The previous/next buttons call the listing's turn: make it do nothing.
    "pager-stuck": "explorer.columns[0].turn = lambda step: None",
}
"""Cases broken by one line added to the explorer cell, before the explorer is shown."""

DISABLED_EXTENSIONS = {"no-widget-manager": "@jupyter-widgets/jupyterlab-manager"}
"""Cases broken in JupyterLab, not in the notebook: the front-end extension they switch off.

Without the widget manager the explorer's cell still runs without error, but JupyterLab can only
show its text form: exactly the "passes headless, blank in the browser" failure.
"""


def demo_notebook() -> nbformat.NotebookNode:
    """A three-cell notebook that shows the confusion explorer on two runs' fake predictions."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_markdown_cell(
            "# UI-test demo: the confusion explorer on two runs' fake predictions\n"
            "Written by `tests/ui/ui_notebooks.py`: the self-check breaks it, and the comparison "
            "mode and paging are checked on it (two runs, 48 tone clips, six per page)."
        ),
        nbformat.v4.new_code_cell(DEMO_SETUP),
        nbformat.v4.new_code_cell(DEMO_PREDICTIONS),
        nbformat.v4.new_code_cell(DEMO_EXPLORER),
    ]
    return notebook


def broken_notebook(case: str) -> nbformat.NotebookNode:
    """The demo notebook with one thing broken (``case`` is a key of ``BROKEN_CASES``)."""
    if case not in BROKEN_CASES:
        raise ValueError(f"unknown broken case {case!r}; choose one of {sorted(BROKEN_CASES)}")
    notebook = demo_notebook()
    setup, predictions, explorer = notebook.cells[1:]
    if case in DISABLED_EXTENSIONS:
        pass  # the notebook is fine; JupyterLab is what is broken
    elif case == "no-explorer":
        explorer.source = 'print("self-check: the explorer is not shown")'
    elif case in BROKEN_EXPLORER_LINES:
        shown = DEMO_EXPLORER.rindex("\nexplorer")
        explorer.source = (
            DEMO_EXPLORER[:shown] + "\n" + BROKEN_EXPLORER_LINES[case] + DEMO_EXPLORER[shown:]
        )
    elif case == "no-audio":
        predictions.source += '\npredictions["path"] = predictions["path"] + ".missing"'
    elif case == "error-output":
        failing = nbformat.v4.new_code_cell('raise RuntimeError("self-check: a cell that fails")')
        notebook.cells.insert(notebook.cells.index(setup) + 1, failing)
    return notebook


def cleared(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy with no outputs and no execution counts: every count seen later is from this run."""
    fresh = copy.deepcopy(notebook)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    fresh.metadata.pop("widgets", None)  # saved widget state would render without a kernel
    return fresh


def prepare_notebook(
    notebook: Path | nbformat.NotebookNode, lab_root: Path, name: str | None = None
) -> str:
    """Write a cleared copy of ``notebook`` under ``lab_root/notebooks``; return its served path.

    The copy sits in a ``notebooks/`` folder like the original, so relative paths the notebook
    uses (``../figures``) land inside the test's folder, not in the repository.
    """
    if isinstance(notebook, Path):
        if not notebook.is_file():
            raise FileNotFoundError(f"notebook {notebook} not found")
        name = name or notebook.name
        notebook = nbformat.read(notebook, as_version=4)
    if not name or not name.endswith(".ipynb"):
        raise ValueError(f"notebook name must end in .ipynb, got {name!r}")
    target = lab_root / "notebooks" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(cleared(notebook), target)
    return f"notebooks/{name}"
