"""The five course notebooks: their form (pairs in sync, small, no audio, badges, parameters) and a
full run of all of them under nbval in the tiny profile on the synthetic corpus.

The run executes every cell top to bottom (``--nbval-lax``) and compares the outputs of the cells
marked ``# NBVAL_CHECK_OUTPUT`` (label tables, parameter counts, shapes) with the committed ones.
It writes its corpora, runs and figures to a temporary folder, never into the checkout.
"""

from __future__ import annotations

import json
import os
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
SUITE_SECONDS = 300
"""The issue's budget for the whole notebook suite on 2 CPU cores."""


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
    for variable in ("PROFILE", "SOURCE_ROOT", "TARGET_ROOT", "SEED"):
        assert f"{variable} = " in parameters[0].source
    assert 'os.environ.get("SERLIB_PROFILE"' in parameters[0].source
    after_parameters = cells[cells.index(parameters[0]) + 1]
    assert "course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT)" in (
        after_parameters.source
    ), f"{name}: the cell after the parameters sets the course up with one course.setup call"
    for copied in ("check_profile(", "torch.manual_seed(", "course_corpora(", "IN_COLAB"):
        assert all(copied not in cell.source for cell in cells if cell.cell_type == "code"), (
            f"{name}: {copied} is course.setup's job"
        )
    checked = [cell for cell in cells if "NBVAL_CHECK_OUTPUT" in cell.source]
    for cell in checked:
        assert cell.outputs, f"{name}: a checked cell has no committed output to compare with"


def test_every_notebook_saves_its_figures_where_the_course_says():
    """Figures go through course.save_and_show (figures/ or $SERLIB_FIGURES), named NN_*."""
    for name in course.NOTEBOOKS:
        source = notebook_path(name).with_suffix(".py").read_text(encoding="utf-8")
        assert "save_figure(" not in source and "savefig(" not in source
        calls = [line for line in source.splitlines() if "course.save_and_show(" in line]
        assert calls, f"{name} saves no figure"
        for line in calls:
            assert f'"{name[:2]}_' in line, f"{name}: name figures NN_*: {line.strip()}"


@pytest.mark.slow
def test_all_notebooks_run_in_the_tiny_profile(tmp_path):
    """nbval over notebooks 01..05, in order, in a fresh SERLIB_HOME (about 3 min on 2 cores)."""
    env = {
        **os.environ,
        "SERLIB_PROFILE": "tiny",
        "SERLIB_HOME": str(tmp_path / "home"),
        course.FIGURES_ENV: str(tmp_path / "figures"),
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
        env.pop(variable, None)  # the suite runs on the synthetic corpus and the tiny encoder
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        "-p",
        "no:cacheprovider",
        "-q",
        "--durations=0",
        *[str(notebook_path(name)) for name in course.NOTEBOOKS],
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2 * SUITE_SECONDS,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    figures = sorted(path.name for path in (tmp_path / "figures").glob("*.png"))
    for number in ("01", "02", "03", "04", "05"):
        assert any(name.startswith(number) for name in figures), (number, figures)
    results = list((tmp_path / "home" / "runs").glob("*/results.csv"))
    assert len(results) == 1, "notebook 05 writes the results table into the runs folder"
    assert json.loads((results[0].parent / "crnn" / "config.json").read_text())["profile"] == "tiny"
