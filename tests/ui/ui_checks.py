"""What the UI test checks in the browser, one function per step a student takes.

Open the notebook, Run > Run All Cells, wait until every cell ran with no error output, find the
confusion explorer and check its matrices; then the explorer steps of ``ui_explorer``: click a
non-empty cell and see the clips it lists with a playable audio element, choose a second run to
compare, click a cell both runs fill, see both runs' clips (players, log-mels, what the other run
predicted), and turn to the next page of clips. Each step raises ``UICheckFailed`` naming the
check, with what the page showed instead, and the screenshots are taken on the way (whole
notebook, explorer after the click, explorer comparing two runs).

The notebook's state is read through ``window.jupyterapp`` (JupyterLab started with
``expose_app_in_browser``): execution counts and outputs come from the notebook model, which is
steadier than reading prompt text, while clicks and rendering checks go through the DOM as a
student's mouse and eyes would.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ui_explorer import EXPLORER, MATRIX, check_matrix, click_cell, compare_runs
from ui_lab import BrowserPage, Deadline, LabServer, UICheckFailed

NOTEBOOK_READY_JS = """(path) => {
  const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(widget && widget.context && widget.context.path === path && widget.context.isReady
            && widget.sessionContext && widget.sessionContext.kernelDisplayStatus === 'idle');
}"""

RUN_STATUS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const status = {kernel: panel.sessionContext.kernelDisplayStatus, code: 0, running: [],
                  pending: [], errors: [], stderr: [], widgets: 0};
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    status.code += 1;
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    if (prompt && prompt.textContent.includes('*')) status.running.push(index + 1);
    if (cell.model.executionCount === null) status.pending.push(index + 1);
    for (const output of cell.model.outputs.toJSON()) {
      if (output.data && output.data['application/vnd.jupyter.widget-view+json']) {
        status.widgets += 1;
      }
      if (output.output_type === 'error') {
        const trace = (output.traceback || []).join('\\n').slice(-1500);
        status.errors.push({cell: index + 1, text: `${output.ename}: ${output.evalue}`, trace});
      } else if (output.output_type === 'stream' && output.name === 'stderr') {
        const text = Array.isArray(output.text) ? output.text.join('') : String(output.text);
        status.stderr.push({cell: index + 1, text: text.slice(-1500)});
      }
    }
  });
  return status;
}"""

NOTEBOOK_HEIGHT_JS = """() => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  const scroller = notebook.node.querySelector('.jp-WindowedPanel-outer') || notebook.node;
  scroller.scrollTop = 0;
  const cells = notebook.widgets;
  const last = cells.length ? cells[cells.length - 1].node : scroller;
  const bottom = last.getBoundingClientRect().bottom - scroller.getBoundingClientRect().top;
  return {content: Math.ceil(bottom), visible: scroller.clientHeight};
}"""

WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class")
"""Texts JupyterLab shows in place of a widget that failed to render."""
WIDGET_AS_TEXT = re.compile(r"^[A-Z]\w*\((children|value|description|layout)=")
"""A widget's text form (``VBox(children=(...``): what JupyterLab shows with no widget manager."""

DEAD_KERNEL = ("dead", "autorestarting", "terminating", "unknown")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def open_notebook(browser: BrowserPage, server: LabServer, notebook: str, deadline: Deadline):
    """Open ``notebook`` in JupyterLab and wait until its kernel is idle; fold the side bar."""
    page = browser.page
    workspace = re.sub(r"[^A-Za-z0-9_-]", "-", Path(notebook).stem)
    page.goto(
        server.lab_url(notebook, workspace), wait_until="domcontentloaded", timeout=deadline.ms(60)
    )
    try:
        page.wait_for_function(NOTEBOOK_READY_JS, arg=notebook, timeout=deadline.ms(120))
    except Exception as error:  # Playwright's TimeoutError, or the page went away
        dialog = page.locator(".jp-Dialog")
        shown = dialog.first.inner_text() if dialog.count() else "no dialog"
        raise UICheckFailed(
            "notebook-opens",
            f"{notebook} did not open with an idle kernel ({type(error).__name__}); "
            f"dialog: {shown!r}; server log:\n{server.log_tail(15)}",
        ) from None
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def run_all_cells(browser: BrowserPage, deadline: Deadline) -> None:
    """Run > Run All Cells, through the menu as a student would."""
    page = browser.page
    page.locator(".lm-MenuBar-item", has_text="Run").first.click(timeout=deadline.ms(30))
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click(timeout=deadline.ms(30))


def wait_for_run(browser: BrowserPage, deadline: Deadline, poll: float = 1.0) -> dict:
    """Wait until no cell is queued or running and the kernel is idle; return the last status.

    Done means every code cell has an execution count, or a cell failed (Run All stops there).
    The same answer twice in a row is required, so a gap between two cells is not taken for the
    end. Cells that print progress keep the wait going; a dead kernel ends it at once.
    """
    page = browser.page
    settled = 0
    while True:
        status = page.evaluate(RUN_STATUS_JS)
        if status["kernel"] in DEAD_KERNEL:
            raise UICheckFailed(
                "run-completes", f"the kernel is {status['kernel']} (it died while running)"
            )
        finished = not status["pending"] or status["errors"]
        idle = status["kernel"] == "idle" and not status["running"]
        settled = settled + 1 if (finished and idle) else 0
        if settled >= 2:
            return status
        if deadline.remaining() <= 0:
            where = status["running"] or status["pending"]
            raise UICheckFailed(
                "run-completes",
                f"cells still running or queued after {deadline.seconds:.0f} s: cell(s) {where} "
                f"of {status['code']} code cells (kernel {status['kernel']})",
            )
        time.sleep(poll)


def check_no_errors(status: dict) -> list[str]:
    """Fail on any error output or traceback on stderr; return the other stderr texts (warnings)."""
    problems = [f"cell {error['cell']}: {error['text']}" for error in status["errors"]]
    warnings = []
    for stream in status["stderr"]:
        text = ANSI.sub("", stream["text"]).strip()
        if "Traceback (most recent call last)" in text:
            problems.append(f"cell {stream['cell']} printed a traceback: ...{text[-300:]}")
        elif text:
            warnings.append(f"cell {stream['cell']}: {text[-200:]}")
    if problems:
        trace = ANSI.sub("", status["errors"][0]["trace"]) if status["errors"] else ""
        raise UICheckFailed(
            "no-error-output",
            "the notebook shows error output:\n  " + "\n  ".join(problems) + f"\n{trace}",
        )
    if status["pending"]:
        raise UICheckFailed("run-completes", f"cells {status['pending']} never ran")
    return warnings


def tall_viewport(browser: BrowserPage) -> dict:
    """Grow the viewport until the whole notebook fits; return the old size to restore.

    JupyterLab scrolls inside the notebook panel, so a full-page screenshot of a normal window
    shows one screen only; a window as tall as the notebook shows every cell.
    """
    page = browser.page
    old = dict(page.viewport_size)
    size = page.evaluate(NOTEBOOK_HEIGHT_JS)
    height = min(16000, old["height"] + max(0, size["content"] - size["visible"]) + 40)
    page.set_viewport_size({"width": old["width"], "height": height})
    page.wait_for_timeout(500)  # let JupyterLab re-lay out the panels
    return old


def screenshot_notebook(browser: BrowserPage, path: Path) -> Path:
    """The whole notebook, every cell and output, in one image."""
    old = tall_viewport(browser)
    try:
        browser.page.screenshot(path=str(path))
    finally:
        browser.page.set_viewport_size(old)
    return path


def widget_trouble(browser: BrowserPage) -> str | None:
    """Why widgets are not drawn, if the outputs say so: widget errors, or their text form."""
    texts = [
        text.strip() for text in browser.page.locator(".jp-OutputArea-output").all_inner_texts()
    ]
    errors = [text[:120] for text in texts if any(sign in text for sign in WIDGET_ERRORS)]
    if errors:
        return f"widget errors: {errors}"
    as_text = [text[:120] for text in texts if WIDGET_AS_TEXT.match(text)]
    if as_text:
        return (
            f"widgets shown as text, not drawn ({as_text[0]!r}): JupyterLab has no ipywidgets "
            "front end (is jupyterlab_widgets installed in the same environment?)"
        )
    return None


def check_explorer(browser: BrowserPage, status: dict, deadline: Deadline) -> dict:
    """The explorer is drawn: each matrix a square grid of labelled, visible cells, some non-empty.

    ``status`` is the finished run's: with no widget output at all there is nothing to wait for,
    and widgets shown in their text form will not turn into drawn ones, so neither waits.
    """
    page = browser.page
    explorers = page.locator(EXPLORER)
    outputs = page.locator(".jp-OutputArea-output").count()
    if not status["widgets"]:
        raise UICheckFailed(
            "explorer-renders",
            f"no cell output holds a widget, so no explorer ({outputs} outputs in the notebook)",
        )
    end = time.monotonic() + min(30.0, deadline.remaining())
    while not (explorers.count() and explorers.first.is_visible()):
        trouble = widget_trouble(browser)
        if trouble or time.monotonic() > end:
            raise UICheckFailed(
                "explorer-renders",
                "no confusion explorer on the page; "
                + (trouble or f"{outputs} outputs, none of them the explorer"),
            )
        time.sleep(0.25)
    explorer = explorers.first
    shown = [check_matrix(matrix) for matrix in explorer.locator(MATRIX).all()]
    shown = [cells for cells in shown if cells is not None]
    if not shown:
        raise UICheckFailed("explorer-renders", "the explorer shows no matrix with visible cells")
    nonempty = sum(cell["nonempty"] for cells in shown for cell in cells)
    return {
        "explorers": explorers.count(),
        "matrices": len(shown),
        "cells": len(shown[0]),
        "nonempty": nonempty,
    }


def screenshot_explorer(browser: BrowserPage, path: Path) -> Path:
    """The explorer with its listing, in a window tall enough to hold it all."""
    old = tall_viewport(browser)
    try:
        browser.page.locator(EXPLORER).first.screenshot(path=str(path))
    finally:
        browser.page.set_viewport_size(old)
    return path


def check_notebook(
    browser: BrowserPage,
    server: LabServer,
    notebook: str,
    shots: Path,
    deadline: Deadline,
    compare_required: bool = False,
) -> dict:
    """All the steps on one notebook; return what was seen. Screenshots go to ``shots``.

    After the one-run click, the comparison: a second run chosen, a cell clicked, both runs'
    clips, and a page turn. ``compare_required`` fails a notebook whose explorer offers no second
    run or no cell longer than a page; otherwise those steps run when the explorer allows them.
    """
    shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    open_notebook(browser, server, notebook, deadline)
    run_all_cells(browser, deadline)
    status = wait_for_run(browser, deadline)
    seconds = round(time.monotonic() - started, 1)
    warnings = check_no_errors(status)
    notebook_shot = screenshot_notebook(browser, shots / "notebook.png")
    explorer = check_explorer(browser, status, deadline)
    clicked = click_cell(browser, deadline)
    explorer_shot = screenshot_explorer(browser, shots / "explorer-after-click.png")
    compared = compare_runs(browser, deadline, compare_required)
    shots_taken = [str(notebook_shot), str(explorer_shot)]
    if compared["compared"]:
        shots_taken.append(str(screenshot_explorer(browser, shots / "explorer-compare.png")))
    return {
        "notebook": notebook,
        "code_cells": status["code"],
        "open_and_run_seconds": seconds,
        "stderr_warnings": warnings,
        **explorer,
        **clicked,
        "comparison": compared,
        "screenshots": shots_taken,
    }
