"""The exercises of the five course notebooks and their worked solutions in notebooks/solutions/.

Every course notebook has 2-4 Markdown cells tagged ``exercise``, each headed with its id, its kind
(predict, then run; explain; extend) and stating how long it takes on a 2-core laptop in the words
of ``serlib.course_plan.expected_time``. Every exercise has a worked answer under the same heading
in the notebook's solution notebook, and every answer has its exercise. The solution notebooks
set up like the course notebooks, are paired with jupytext, committed small and stripped, state no
measured result in Markdown, give every run with changed options its own run folder, and each
runs alone under nbval in the tiny profile on a new and empty SERLIB_HOME.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_notebooks import DECIMAL, METHOD_CONSTANTS, PERCENTAGE, STUDY_PAIR, run_nbval

from serlib import colab, course, course_runner
from serlib.course_plan import COURSE_RUN_PLAN, WORKSHOP_SECONDS, expected_time

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
MAX_NOTEBOOK_BYTES = 2 * 1024 * 1024
SOLUTION_SECONDS = 420
"""The most one solution notebook may take alone on a fresh SERLIB_HOME, tiny profile, 2 CPU
cores: it trains its course notebook's runs and the exercises' own."""

KINDS = ("predict, then run", "explain", "extend")
HEADING = re.compile(r"^#{2,3} Exercise (\d)([a-d]) · (predict, then run|explain|extend): \S", re.M)
"""``### Exercise 3a · predict, then run: a title`` (``##`` in the solution notebooks)."""

NO_TRAINING = "a minute or less (no training)"
"""How an exercise that trains nothing says how long it takes."""


def solution_path(name: str, suffix: str = ".ipynb") -> Path:
    return SOLUTIONS / f"{name}_solutions{suffix}"


def cells_of(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def exercise_cells(name: str) -> list:
    cells = cells_of(NOTEBOOKS / f"{name}.ipynb")
    return [cell for cell in cells if "exercise" in cell.metadata.get("tags", [])]


def headings(text: str) -> list[tuple[str, str]]:
    """(id, kind) of every exercise heading in ``text``: ("3a", "explain")."""
    return [(number + letter, kind) for number, letter, kind in HEADING.findall(text)]


def flat(text: str) -> str:
    """Markdown with its line breaks and repeated spaces folded, for phrase checks."""
    return " ".join(text.split())


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_every_course_notebook_has_two_to_four_exercises(name):
    cells = exercise_cells(name)
    assert 2 <= len(cells) <= 4, f"{name}: {len(cells)} cells tagged 'exercise' (want 2-4)"
    for cell in cells:
        assert cell.cell_type == "markdown", f"{name}: an exercise is a Markdown cell"
        found = headings(cell.source)
        assert len(found) == 1, f"{name}: one exercise heading per cell, found {found}"
        assert found[0][0][0] == name[1], f"{name}: exercise {found[0][0]} is numbered elsewhere"


def test_the_exercises_cover_the_three_kinds():
    kinds = {
        kind
        for name in course.NOTEBOOKS
        for c in exercise_cells(name)
        for _, kind in headings(c.source)
    }
    assert kinds == set(KINDS), kinds


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_every_exercise_says_how_long_it_takes(name):
    """Either it trains nothing, or it names a course run of the same size ("like `dann`") and that
    run's measured time, in serlib.course_plan's words (so the text follows the measurement)."""
    measured = [expected_time(run, "workshop") for run in WORKSHOP_SECONDS]
    for cell in exercise_cells(name):
        text = flat(cell.source)
        if NO_TRAINING in text:
            continue
        like = re.findall(r"like `([\w-]+)`: ([^.]*\))", text)
        assert like or any(time in text for time in measured), (
            f"{name}: {headings(cell.source)} says no time in serlib.course_plan's words"
        )
        for run, said in like:
            assert run in WORKSHOP_SECONDS, f"{name}: `{run}` is not a measured course run"
            assert said == expected_time(run, "workshop"), f"{name}: {said!r} for `{run}`"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_every_exercise_has_a_worked_answer_and_every_answer_an_exercise(name):
    asked = [found for cell in exercise_cells(name) for found in headings(cell.source)]
    solution = cells_of(solution_path(name))
    answered = [
        f for cell in solution if cell.cell_type == "markdown" for f in headings(cell.source)
    ]
    assert answered == asked, f"{name}: exercises {asked}, answers {answered}"
    ids = [exercise for exercise, _ in asked]
    assert len(set(ids)) == len(ids), f"{name}: an exercise id is used twice: {ids}"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_solution_notebook_and_script_are_in_sync(name):
    script = solution_path(name, ".py")
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupytext",
            "--to",
            "py:percent",
            "-o",
            "-",
            str(solution_path(name)),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert script.read_text(encoding="utf-8") == printed, (
        f"{script.name} and its .ipynb differ: run `jupytext --sync {script.relative_to(ROOT)}`"
    )


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_solution_notebook_sets_up_like_the_course(name):
    """Install cell for Colab, one parameters cell, then one course.setup call, as the course."""
    cells = cells_of(solution_path(name))
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "google.colab" in cells[1].source and course.REPO_URL in cells[1].source
    parameters = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1, "exactly one cell tagged 'parameters'"
    for variable in ("PROFILE", "SOURCE_ROOT", "TARGET_ROOT", "SEED", "HOME"):
        assert f"{variable} = " in parameters[0].source
    script = solution_path(name, ".py").read_text(encoding="utf-8")  # the one repository setting
    assert colab.repository_links(script) == {colab.repository_path(colab.REPO_URL)}
    assert colab.install_requirement() in solution_path(name).read_text(encoding="utf-8")
    after = cells[cells.index(parameters[0]) + 1]
    assert (
        "course.setup(PROFILE, SEED, source_root=SOURCE_ROOT, target_root=TARGET_ROOT, home=HOME)"
        in after.source
    )


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_solution_markdown_states_no_measured_result(name):
    """As in the course: outcomes are printed by code; Markdown reasons and says what to look for."""
    for index, cell in enumerate(cells_of(solution_path(name))):
        if cell.cell_type != "markdown":
            continue
        where = f"{name} solutions, cell {index}"
        assert not PERCENTAGE.search(cell.source), f"{where}: {PERCENTAGE.search(cell.source)}"
        assert not STUDY_PAIR.search(cell.source), where
        for number in DECIMAL.findall(cell.source):
            assert number in METHOD_CONSTANTS, f"{where}: {number!r} looks like a measurement"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_solution_notebook_is_small_and_stripped(name):
    path = solution_path(name)
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert "widgets" not in notebook.metadata
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert not course_runner.is_audio_output(output), f"{name}: embedded audio"
            assert course_runner.WIDGET_MIME not in output.get("data", {}), f"{name}: a widget"


def run_names(source: str) -> tuple[list[ast.Call], list[str]]:
    """The ``course.course_run`` calls of a script, and every ``name=`` it gives a call as a string
    literal or as a variable assigned one."""
    tree = ast.parse(source)
    strings = {
        node.targets[0].id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    course_runs = [
        call
        for call in calls
        if isinstance(call.func, ast.Attribute)
        and call.func.attr == "course_run"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "course"
    ]
    names = []
    for call in calls:
        for keyword in call.keywords:
            if keyword.arg != "name":
                continue
            if isinstance(keyword.value, ast.Constant):
                names.append(keyword.value.value)
            elif isinstance(keyword.value, ast.Name) and keyword.value.id in strings:
                names.append(strings[keyword.value.id])
    return course_runs, names


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_runs_with_changed_options_get_their_own_folder(name):
    """A solution that changes an option names its run, never after a course run, so the
    course's own run folders are never asked to hold another run."""
    course_runs, names = run_names(solution_path(name, ".py").read_text(encoding="utf-8"))
    for call in course_runs:
        assert any(keyword.arg == "name" for keyword in call.keywords), (
            f"{name}: course.course_run(...) at line {call.lineno} needs name="
        )
    clashes = sorted(set(names) & set(COURSE_RUN_PLAN))
    assert not clashes, f"{name}: runs named after course runs: {clashes}"
    assert len(set(names)) == len(names), f"{name}: a run name is used twice: {names}"


def test_run_name_check_finds_an_unnamed_run():
    """The checker itself: an unnamed course_run call and a course run's name are both seen."""
    calls, names = run_names(
        'course.course_run("dann", c, "tiny", 0, domain_weight=0)\nf(name="dann")\n'
        'RUN = "crnn"\ng(name=RUN)'
    )
    assert len(calls) == 1 and not any(k.arg == "name" for k in calls[0].keywords)
    assert names == ["dann", "crnn"]


def test_heading_pattern_reads_ids_and_kinds():
    text = "### Exercise 3a · predict, then run: a cap\n\n## Exercise 5d · extend: speakers"
    assert headings(text) == [("3a", "predict, then run"), ("5d", "extend")]
    assert headings("### Exercise 3a: no kind") == []


@pytest.mark.slow
@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_solution_runs_alone_on_a_fresh_home(name, tmp_path):
    """nbval over one solution notebook in the tiny profile, in its own new and empty
    SERLIB_HOME: it trains its course notebook's runs and its exercises' runs itself."""
    result = run_nbval(solution_path(name), tmp_path, SOLUTION_SECONDS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
