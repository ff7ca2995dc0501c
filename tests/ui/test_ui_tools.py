"""The UI test's own machinery, without a browser: process cleanup, notebooks, error checks.

These run in the normal suite (a few seconds, no chromium needed). The browser run itself is
``make test-ui``; set SERLIB_UI_TEST=1 to also run it from pytest (``test_browser_run``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import run_ui_test
from ui_checks import check_no_errors
from ui_explorer import CELL_TITLE, SHOWING, fullest_shared_cell
from ui_lab import (
    Deadline,
    UICheckFailed,
    alive,
    descendants,
    find_chromium,
    lab_environment,
    processes_mentioning,
    stop_process_tree,
)
from ui_notebooks import (
    BROKEN_CASES,
    BROKEN_EXPLORER_LINES,
    DISABLED_EXTENSIONS,
    broken_notebook,
    demo_notebook,
    prepare_notebook,
)

HERE = Path(__file__).resolve().parent

# A parent that starts a child in a session of its own (as jupyter_client starts kernels), prints
# the child's pid, and ignores SIGTERM, so that only the tree walk and SIGKILL can stop both.
STUBBORN_TREE = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def start_tree(script: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(process.stdout.readline())
    return process, child


def test_stop_process_tree_reaches_children_in_their_own_session():
    process, child = start_tree(STUBBORN_TREE)
    try:
        assert child in descendants(process.pid)
        started = time.monotonic()
        left = stop_process_tree(process, grace=0.5)
        assert left == []
        assert not alive(child)
        assert process.poll() is not None
        assert time.monotonic() - started < 5
    finally:
        for pid in (process.pid, child):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_processes_mentioning_finds_detached_helpers_by_their_command_line(tmp_path):
    marker = str(tmp_path / "profile-marker")
    helper = subprocess.Popen(
        [sys.executable, "-c", "import time, sys; time.sleep(60)", marker],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10  # a loaded machine may take a moment to exec the child
        while processes_mentioning(marker) != [helper.pid] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_mentioning(marker) == [helper.pid]
    finally:
        helper.kill()
        helper.wait()
    assert processes_mentioning(marker) == []


def test_watchdog_kills_children_and_exits_124(tmp_path):
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        sys.path.insert(0, {str(HERE)!r})
        from ui_lab import watchdog
        with watchdog(0.5, on_fire="demo"):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                     start_new_session=True)
            print(child.pid, flush=True)
            time.sleep(60)
        """
    )
    process, child = start_tree(script)
    try:
        assert process.wait(timeout=10) == 124
        time.sleep(0.2)
        assert not alive(child)
    finally:
        for pid in (process.pid, child):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_demo_and_broken_notebooks_are_valid_and_each_breaks_something():
    demo = demo_notebook()
    nbformat.validate(demo)
    sources = {"demo": [cell.source for cell in demo.cells]}
    for case in BROKEN_CASES:
        notebook = broken_notebook(case)
        nbformat.validate(notebook)
        sources[case] = [cell.source for cell in notebook.cells]
        if case in DISABLED_EXTENSIONS:  # broken in JupyterLab, not in the notebook
            assert sources[case] == sources["demo"], case
        else:
            assert sources[case] != sources["demo"], case
    assert "select_cell = lambda" in "".join(sources["click-lists-nothing"])
    for case, line in BROKEN_EXPLORER_LINES.items():
        explorer_cell = sources[case][-1]
        assert line in explorer_cell and explorer_cell.endswith("\nexplorer"), case
    assert not any("ConfusionExplorer(" in source for source in sources["no-explorer"])
    with pytest.raises(ValueError, match="unknown broken case"):
        broken_notebook("no-such-case")


def test_prepare_notebook_serves_a_cleared_copy_and_leaves_the_original(tmp_path):
    notebook = demo_notebook()
    code = notebook.cells[1]
    code.execution_count = 7
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
    notebook.metadata["widgets"] = {"state": {}}
    original = tmp_path / "02_demo.ipynb"
    nbformat.write(notebook, original)
    before = original.read_bytes()

    served = prepare_notebook(original, tmp_path / "lab")

    assert served == "notebooks/02_demo.ipynb"
    assert original.read_bytes() == before
    copy = nbformat.read(tmp_path / "lab" / served, as_version=4)
    assert all(cell.get("outputs", []) == [] for cell in copy.cells)
    assert all(cell.get("execution_count") is None for cell in copy.cells)
    assert "widgets" not in copy.metadata
    with pytest.raises(FileNotFoundError, match="missing.ipynb"):
        prepare_notebook(tmp_path / "missing.ipynb", tmp_path / "lab")


def status(**changes) -> dict:
    """A finished run's status as RUN_STATUS_JS reports it, with ``changes`` applied."""
    base = {"kernel": "idle", "code": 3, "running": [], "pending": [], "errors": [], "stderr": []}
    return {**base, "widgets": 1, **changes}


def test_check_no_errors_fails_on_errors_and_tracebacks_but_keeps_warnings():
    warning = {"cell": 2, "text": "UserWarning: small sample\n"}
    assert check_no_errors(status(stderr=[warning])) == ["cell 2: UserWarning: small sample"]

    error = {"cell": 3, "text": "RuntimeError: boom", "trace": "\x1b[31mRuntimeError\x1b[0m"}
    with pytest.raises(UICheckFailed, match="cell 3: RuntimeError: boom") as failure:
        check_no_errors(status(errors=[error], pending=[4]))
    assert failure.value.check == "no-error-output"

    printed = {"cell": 1, "text": "Traceback (most recent call last):\n  ...\nKeyError: 'x'"}
    with pytest.raises(UICheckFailed, match="printed a traceback"):
        check_no_errors(status(stderr=[printed]))

    with pytest.raises(UICheckFailed, match=r"cells \[4\] never ran") as failure:
        check_no_errors(status(pending=[4]))
    assert failure.value.check == "run-completes"


def test_deadline_names_what_was_waited_for():
    with pytest.raises(UICheckFailed, match="limit reached while running cells") as failure:
        Deadline(0).check("running cells")
    assert failure.value.check == "time-limit"
    assert Deadline(60).ms(cap_seconds=2) == pytest.approx(2000, abs=50)


def test_find_chromium_explains_a_bad_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SERLIB_CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(FileNotFoundError, match="no-chromium"):
        find_chromium()
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium(str(fake)) == fake


def test_lab_environment_is_offline_tiny_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_TOKEN", "inherited")
    env = lab_environment(tmp_path / "work", tmp_path / "home", "tiny")
    assert env["SERLIB_PROFILE"] == "tiny"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["SERLIB_HOME"] == str(tmp_path / "home")
    assert "JUPYTER_TOKEN" not in env
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTERLAB_SETTINGS_DIR"):
        assert Path(env[name]).is_relative_to(tmp_path / "work"), name
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"])
    notification = settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    assert json.loads(notification.read_text())["fetchNews"] == "false"


def test_cli_refuses_a_missing_notebook_with_status_2(tmp_path, capsys):
    status_code = run_ui_test.main(["--notebook", str(tmp_path / "nope.ipynb")])
    assert status_code == 2
    assert "nope.ipynb not found" in capsys.readouterr().err


def test_reset_output_removes_only_what_the_test_writes(tmp_path):
    shots = tmp_path / "shots"
    ours = [
        shots / "report.json",
        shots / "02_crnn_baseline" / "notebook.png",
        shots / "self-check" / "no-audio" / "failure.png",
    ]
    theirs = [shots / "notes.txt", shots / "02_crnn_baseline" / "keep.png"]
    for path in ours + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    run_ui_test.reset_output(shots, "02_crnn_baseline")
    assert not any(path.exists() for path in ours)
    assert all(path.exists() for path in theirs)
    assert not (shots / "self-check").exists()


@pytest.mark.skipif(
    os.environ.get("SERLIB_UI_TEST") != "1", reason="browser run: set SERLIB_UI_TEST=1"
)
def test_browser_run_of_the_demo_notebook_with_self_check(tmp_path):
    """The whole UI test on the demo notebook, including the broken variants (about 2 minutes)."""
    assert run_ui_test.main(["--demo", "--screenshots", str(tmp_path / "shots")]) == 0
    report = json.loads((tmp_path / "shots" / "report.json").read_text())
    assert report["course"]["passed"]
    assert all(result["caught"] for result in report["self_check"].values())
    assert report["leftover_processes"] == []


def run_demo(monkeypatch, tmp_path, case: str | None = None) -> dict:
    """Execute the demo notebook's code cells here (no browser); return their namespace."""
    monkeypatch.setenv("SERLIB_HOME", str(tmp_path))
    notebook = broken_notebook(case) if case else demo_notebook()
    namespace: dict = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            exec(cell.source, namespace)
    return namespace


def page_text(widget) -> str:
    """A listing header as the browser shows it: the HTML without its tags."""
    return re.sub(r"<[^>]+>", "", widget.value)


def test_demo_offers_a_second_run_and_a_shared_cell_longer_than_a_page(monkeypatch, tmp_path):
    """What the required comparison and page turn rely on, and the texts the browser parses."""
    explorer = run_demo(monkeypatch, tmp_path)["explorer"]
    assert [name for name, _ in explorer.compare_picker.options] == ["none", "after"]
    explorer.compare_picker.value = "after"
    cells = [
        [{"title": button.tooltip} for button in grid.buttons.values()] for grid in explorer.grids
    ]
    index = fullest_shared_cell(*cells)
    title = cells[0][index]["title"]
    true_label, predicted, count = CELL_TITLE.match(title).groups()
    assert int(count) > explorer.max_clips == 6
    explorer.select_cell(true_label, predicted)
    header = page_text(explorer.clip_list.children[0])
    assert f"true {true_label}, predicted {predicted}" in header
    assert SHOWING.search(header).groups() == ("6", count, "1", "6")
    explorer.next_page()
    shown = SHOWING.search(page_text(explorer.clip_list.children[0])).groups()
    assert shown[2] == "7" and len(explorer.listed_paths) == int(shown[0])
    assert explorer.compare_listed_paths


def test_fullest_shared_cell_prefers_cells_both_runs_fill():
    def cells(*counts):
        return [{"title": f"true a, predicted b{i}: {n} clips (x)"} for i, n in enumerate(counts)]

    assert fullest_shared_cell(cells(9, 3, 7), cells(0, 3, 7)) == 2
    assert fullest_shared_cell(cells(3, 5), cells(5, 3)) == 1  # tie on both: more in the first
    assert fullest_shared_cell(cells(4, 0), cells(0, 2)) is None  # each run in its own cell


@pytest.mark.parametrize("case", sorted(BROKEN_EXPLORER_LINES))
def test_broken_explorer_lines_break_what_they_say(monkeypatch, tmp_path, case):
    explorer = run_demo(monkeypatch, tmp_path, case)["explorer"]
    explorer.compare_picker.value = "after"
    listed = explorer.select_cell("neutral", "neutral")
    if case == "click-lists-nothing":
        assert listed == [] and explorer.listed_paths == []
    elif case == "compare-lists-one-run":
        assert explorer.listed_paths and explorer.compare_listed_paths == []
    else:  # pager-stuck
        first = explorer.listed_paths
        explorer.columns[0].next_button.click()
        assert explorer.listed_paths == first
