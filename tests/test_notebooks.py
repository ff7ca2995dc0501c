"""The five course notebooks: their form (pairs in sync, small, no audio, badges, parameters), the
course's contract (Markdown states no measured result; every notebook ends with its findings), and
a run of each notebook alone under nbval, in the tiny profile, on a new and empty SERLIB_HOME.

Each run executes every cell top to bottom (``--nbval-lax``) and compares the outputs of the cells
marked ``# NBVAL_CHECK_OUTPUT`` (label tables, parameter counts, shapes) with the committed ones.
It writes its corpora, runs and figures to a temporary folder, never into the checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from serlib import course, course_runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MAX_NOTEBOOK_BYTES = 2 * 1024 * 1024
NOTEBOOK_SECONDS = 300
"""The most one notebook may take alone on a fresh SERLIB_HOME, tiny profile, 2 CPU cores."""

PERCENTAGE = re.compile(r"\d+(?:\.\d+)?\s*%")
"""A percentage in Markdown is a measured result (or a quoted one): code prints those."""

DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
"""A decimal number in Markdown; only the method's own constants below may appear."""

METHOD_CONSTANTS = {
    "0.5": "the GRL example's lambda, DANN's domain-loss weight, a domain head's chance accuracy",
    "0.7": "the study's cap on the gradient-reversal coefficient",
    "0.25": "the domain weight of the gentler adversary notebook 05 suggests trying",
}
"""Decimals that describe how a method is set up, not what a run measured."""

STUDY_PAIR = re.compile(r"\b4[24]\s*/\s*\d\d\b")
"""The study's reported accuracies (source/target): printed by code from serlib.study only."""


def markdown_cells(name: str) -> list:
    return [
        c
        for c in nbformat.read(notebook_path(name), as_version=4).cells
        if c.cell_type == "markdown"
    ]


def notebook_path(name: str) -> Path:
    return NOTEBOOKS / f"{name}.ipynb"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_and_script_are_in_sync(name):
    """The committed .py must be exactly what `jupytext --to py:percent -o - NAME.ipynb` prints."""
    script = notebook_path(name).with_suffix(".py")
    assert script.is_file(), f"{script.name} is missing: run jupytext --sync"
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupytext",
            "--to",
            "py:percent",
            "-o",
            "-",
            str(notebook_path(name)),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert script.read_text(encoding="utf-8") == printed, (
        f"{name}.py and {name}.ipynb differ: run `jupytext --sync notebooks/{name}.ipynb`"
    )


def test_pairing_is_configured_for_the_whole_folder():
    """Pairing lives in notebooks/jupytext.toml, so no notebook carries its own formats entry."""
    config = (NOTEBOOKS / "jupytext.toml").read_text(encoding="utf-8")
    assert 'formats = "ipynb,py:percent"' in config
    for name in course.NOTEBOOKS:
        metadata = jupytext.read(notebook_path(name)).metadata.get("jupytext", {})
        assert "formats" not in metadata, f"{name} pairs itself; the folder's jupytext.toml does"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_reads_well_and_stays_small(name):
    path = notebook_path(name)
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert "widgets" not in notebook.metadata, "widget state must be stripped before committing"
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            assert not course_runner.is_audio_output(output), (
                f"{name}: embedded audio in a committed output"
            )
            assert course_runner.WIDGET_MIME not in data, (
                f"{name}: a widget view in a committed output"
            )
            assert "application/vnd.jupyter.widget-state+json" not in data


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_has_title_badge_setup_and_parameters(name):
    cells = nbformat.read(notebook_path(name), as_version=4).cells
    title = cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert course.colab_url(name) in title.source and "colab-badge.svg" in title.source
    assert "What you will learn" in title.source
    install = cells[1]
    assert "google.colab" in install.source and course.REPO_URL in install.source
    parameters = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1, "exactly one cell tagged 'parameters'"
    for variable in ("PROFILE", "SOURCE_ROOT", "TARGET_ROOT", "SEED", "HOME"):
        assert f"{variable} = " in parameters[0].source
    assert 'os.environ.get("SERLIB_PROFILE"' in parameters[0].source
    after_parameters = cells[cells.index(parameters[0]) + 1]
    setup_call = (
        "course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)"
    )
    assert setup_call in after_parameters.source, (
        f"{name}: the cell after the parameters sets the course up with one course.setup call"
    )
    assert "/content/drive" in parameters[0].source, f"{name}: say how to keep runs on Drive"
    for copied in ("check_profile(", "torch.manual_seed(", "course_corpora(", "IN_COLAB"):
        assert all(copied not in cell.source for cell in cells if cell.cell_type == "code"), (
            f"{name}: {copied} is course.setup's job"
        )
    checked = [cell for cell in cells if "NBVAL_CHECK_OUTPUT" in cell.source]
    for cell in checked:
        assert cell.outputs, f"{name}: a checked cell has no committed output to compare with"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_markdown_states_no_measured_result(name):
    """What a run showed is printed by code from that run; Markdown explains and says what to
    look for. So no Markdown cell holds a percentage, the study's numbers, or a decimal other
    than a method's constant."""
    for index, cell in enumerate(markdown_cells(name)):
        text = cell.source
        where = f"{name}, Markdown cell {index}"
        assert not PERCENTAGE.search(text), f"{where}: {PERCENTAGE.search(text).group()!r}"
        assert not STUDY_PAIR.search(text), (
            f"{where}: the study's numbers come from course.study_table()"
        )
        for number in DECIMAL.findall(text):
            assert number in METHOD_CONSTANTS, (
                f"{where}: {number!r} looks like a measurement; print it from code, or add it to "
                "METHOD_CONSTANTS with what it sets up"
            )


def test_markdown_patterns_catch_what_the_issue_found():
    """The patterns above flag the kinds of sentence issue 15 found in the old notebooks."""
    for text in (
        "the CRNN reaches 87.0 % on the source",
        "reported 44/14",
        "widest range, 9.10 st",
    ):
        flagged = (
            PERCENTAGE.search(text)
            or STUDY_PAIR.search(text)
            or (set(DECIMAL.findall(text)) - set(METHOD_CONSTANTS))
        )
        assert flagged, text
    assert DECIMAL.findall("sessions 1-3 train, lr 2e-5, lambda = 0.5") == ["0.5"]


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_ends_with_its_findings(name):
    """The last code cell is tagged `findings` and prints them with findings.report, under the
    course's title "What we found"."""
    cells = nbformat.read(notebook_path(name), as_version=4).cells
    code = [cell for cell in cells if cell.cell_type == "code"]
    tagged = [cell for cell in code if "findings" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one code cell tagged 'findings'"
    assert tagged[0] is code[-1], f"{name}: the findings cell is the last code cell"
    assert "findings.report(" in tagged[0].source
    assert 'title="What we found"' in tagged[0].source


def test_the_study_is_named_once_at_the_start_of_the_course():
    """Notebook 01 prints the study's reported numbers from serlib.study; no other notebook does."""
    for name in course.NOTEBOOKS:
        source = notebook_path(name).with_suffix(".py").read_text(encoding="utf-8")
        assert ("study_table()" in source) == (name == course.NOTEBOOKS[0]), name


@pytest.mark.parametrize("name", course.NOTEBOOKS[1:])
def test_notebooks_that_read_runs_train_what_is_missing(name):
    """Notebooks 02-05 get their runs from course.ensure_runs (so each stands alone), never by
    looking for a folder an earlier notebook may have left."""
    source = notebook_path(name).with_suffix(".py").read_text(encoding="utf-8")
    assert "course.ensure_runs(" in source
    for fragile in ("course.run_dir(", "not found (run notebook", "missing: run its notebook"):
        assert fragile not in source, f"{name}: {fragile}"


def test_every_notebook_saves_its_figures_where_the_course_says():
    """Figures go through course.save_and_show (figures/ or $SERLIB_FIGURES), named NN_*."""
    for name in course.NOTEBOOKS:
        source = notebook_path(name).with_suffix(".py").read_text(encoding="utf-8")
        assert "save_figure(" not in source and "savefig(" not in source
        calls = [line for line in source.splitlines() if "course.save_and_show(" in line]
        assert calls, f"{name} saves no figure"
        for line in calls:
            assert f'"{name[:2]}_' in line, f"{name}: name figures NN_*: {line.strip()}"


def run_nbval(path: Path, scratch: Path, seconds: float) -> subprocess.CompletedProcess:
    """nbval over one notebook in the tiny profile, with a new, empty SERLIB_HOME and figure folder
    under ``scratch``, on the synthetic corpus and the tiny encoder whatever the caller's
    environment says (its real-corpus and encoder variables are removed)."""
    env = {
        **os.environ,
        "SERLIB_PROFILE": "tiny",
        "SERLIB_HOME": str(scratch / "home"),
        course.FIGURES_ENV: str(scratch / "figures"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONHASHSEED": "0",
    }
    for variable in (
        "SERLIB_IEMOCAP_DIR",
        "SERLIB_RAVDESS_DIR",
        "SERLIB_W2V2",
        "SERLIB_W2V2_MODE",
        "SERLIB_SEED",
        "SERLIB_RETRAIN",
    ):
        env.pop(variable, None)
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env"]
    command += ["-p", "no:cacheprovider", "-q", str(path)]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_runs_alone_on_a_fresh_home(name, tmp_path):
    """nbval over one notebook in the tiny profile, in its own new and empty SERLIB_HOME, as in
    Colab where every notebook gets its own runtime: it must make or train all it needs."""
    result = run_nbval(notebook_path(name), tmp_path, NOTEBOOK_SECONDS)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    figures = sorted(path.name for path in (tmp_path / "figures").glob("*.png"))
    assert figures and all(figure.startswith(name[:2]) for figure in figures), figures
    if name == course.NOTEBOOKS[-1]:
        results = list((tmp_path / "home" / "runs").glob("*/results.csv"))
        assert len(results) == 1, "notebook 05 writes the results table into the runs folder"
        crnn = results[0].parent / "crnn" / "config.json"
        assert json.loads(crnn.read_text())["profile"] == "tiny"
