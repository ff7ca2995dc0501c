"""The course in a real browser: run a notebook in JupyterLab and use its confusion explorer.

    python tests/ui/run_ui_test.py                  # notebook 02, after the self-check
    python tests/ui/run_ui_test.py --demo           # a small generated notebook instead of 02
    python tests/ui/run_ui_test.py --notebook notebooks/03_dann.ipynb --no-self-check

It starts JupyterLab from this Python on 127.0.0.1 (random free port, random token, tiny profile,
a temporary SERLIB_HOME) serving a copy of the notebook, and drives Debian's chromium through
Playwright: Run All Cells, wait, no error output, find the explorer, click a non-empty cell,
expect listed clips with audio; then choose a second run to compare, click a cell, expect both
runs' clips with players and log-mels, and turn to the next page. The comparison and the page turn
are required on the generated demo notebook (two runs, more clips than a page), which runs before
the course notebook; on the course notebook they run when its explorer offers them. The self-check
first runs broken variants of the demo notebook and expects each to fail at its check, so a test
that can no longer fail is noticed.

Screenshots, the server log and report.json go to --screenshots (default ui-screenshots/).
Exit status: 0 passed, 1 a check failed, 2 cannot run here (no chromium, Playwright or notebook).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from ui_checks import check_notebook, screenshot_notebook
from ui_lab import (
    Browser,
    Deadline,
    LabServer,
    UICheckFailed,
    alive,
    chromium,
    descendants,
    find_chromium,
    kill_pids,
    processes_mentioning,
    running_lab,
    watchdog,
)
from ui_notebooks import (
    BROKEN_CASES,
    DISABLED_EXTENSIONS,
    broken_notebook,
    demo_notebook,
    prepare_notebook,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_NOTEBOOK = REPO / "notebooks" / "02_crnn_baseline.ipynb"
SELF_CHECK_SECONDS = 60.0
"""Time for one broken demo notebook (they run in seconds; the cap only bounds a hang)."""
SCREENSHOT_NAMES = (
    "notebook.png",
    "explorer-after-click.png",
    "explorer-compare.png",
    "failure.png",
)
DEMO_NAME = "ui-demo.ipynb"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--notebook",
        type=Path,
        default=Path(os.environ.get("SERLIB_UI_NOTEBOOK", DEFAULT_NOTEBOOK)),
        help="notebook to run (default: $SERLIB_UI_NOTEBOOK or notebooks/02_crnn_baseline.ipynb)",
    )
    which.add_argument(
        "--demo", action="store_true", help="run the generated demo notebook instead"
    )
    parser.add_argument(
        "--screenshots",
        type=Path,
        default=REPO / "ui-screenshots",
        help="folder for screenshots, server log and report.json (default: ui-screenshots/)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("SERLIB_UI_TIMEOUT", 600)),
        help="limit for the whole test in seconds (default: $SERLIB_UI_TIMEOUT or 600)",
    )
    parser.add_argument(
        "--self-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first run the broken demo notebooks and expect each to fail (default: on)",
    )
    parser.add_argument("--chromium", help="chromium binary (default: $SERLIB_CHROMIUM or PATH)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="Python whose JupyterLab and kernel to use (default: this one)",
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def raise_on_signal(signum: int, frame) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit, so every ``finally`` stops the server and browser."""
    print(f"UI test stopped by {signal.Signals(signum).name}; cleaning up", file=sys.stderr)
    raise SystemExit(128 + signum)


def reset_output(shots: Path, notebook_stem: str) -> None:
    """Remove what an earlier run wrote to the screenshot folder: only the files this test writes.

    Exact paths, never a recursive sweep: ``--screenshots`` may point anywhere.
    """
    shots.mkdir(parents=True, exist_ok=True)
    for name in ("report.json", "jupyterlab.log"):
        (shots / name).unlink(missing_ok=True)
    stems = {notebook_stem, DEMO_NAME.removesuffix(".ipynb")}
    folders = [shots / stem for stem in sorted(stems)]
    folders += [shots / "self-check" / case for case in BROKEN_CASES]
    for folder in [*folders, shots / "self-check"]:
        for name in SCREENSHOT_NAMES:
            (folder / name).unlink(missing_ok=True)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def run_one(
    browser: Browser,
    server: LabServer,
    notebook: str,
    shots: Path,
    deadline: Deadline,
    compare_required: bool = False,
) -> dict:
    """Check one notebook in a new tab; on failure save ``failure.png`` and say which check."""
    tab = browser.new_page()
    started = time.monotonic()
    try:
        seen = check_notebook(tab, server, notebook, shots, deadline, compare_required)
        result = {"passed": True, "failed_check": None, **seen}
    except Exception as error:
        if isinstance(error, UICheckFailed):
            check, message = error.check, error.message
        else:  # a Playwright error outside the named checks: still a failure, with its text
            check, message = "browser", f"{type(error).__name__}: {error}"
        result = {"passed": False, "failed_check": check, "message": message}
        try:
            result["screenshots"] = [str(screenshot_notebook(tab, shots / "failure.png"))]
        except Exception as error:  # the page itself may be what broke
            result["screenshots"] = [f"(no screenshot: {type(error).__name__}: {error})"]
    finally:
        result_errors = {"console_errors": tab.console_errors[:20], "blocked": tab.blocked[:20]}
        tab.close()
        try:
            server.shutdown_kernels()
        except OSError:
            pass
    seconds = round(time.monotonic() - started, 1)
    return {"notebook": notebook, "seconds": seconds, **result, **result_errors}


def self_check(browser: Browser, server: LabServer, root: Path, shots: Path, total: Deadline):
    """Run every broken demo notebook; each must fail, at the check that should catch it."""
    results = {}
    for case, expected in BROKEN_CASES.items():
        total.check(f"self-checking {case}")
        notebook = prepare_notebook(broken_notebook(case), root, f"broken-{case}.ipynb")
        deadline = Deadline(min(SELF_CHECK_SECONDS, total.remaining()))
        extension = DISABLED_EXTENSIONS.get(case)
        with server.without_extension(extension) if extension else contextlib.nullcontext():
            result = run_one(browser, server, notebook, shots / "self-check" / case, deadline, True)
        result["expected_check"] = expected
        result["caught"] = result["failed_check"] == expected
        results[case] = result
        verdict = "caught" if result["caught"] else "NOT CAUGHT"
        print(
            f"  self-check {case:<20} {verdict} by {result['failed_check']} ({result['seconds']} s)",
            flush=True,
        )
    return results


def leftover_processes(work: Path, wait: float = 10.0) -> list[int]:
    """Processes this test started that outlived the shutdown; they are killed and reported.

    Looks both down the process tree and for anything naming the temporary folder (chromium's
    detached helpers), after giving them ``wait`` seconds to exit on their own.
    """

    def still_running() -> list[int]:
        found = set(descendants(os.getpid())) | set(processes_mentioning(str(work)))
        return sorted(pid for pid in found if alive(pid))

    end = time.monotonic() + wait
    left = still_running()
    while left and time.monotonic() < end:
        time.sleep(0.2)
        left = still_running()
    kill_pids(left, signal.SIGKILL)
    return left


def describe(result: dict) -> str:
    """One line for a notebook's result (and one more for its comparison)."""
    if not result["passed"]:
        return f"FAILED at {result['failed_check']}: {result['message']}"
    line = (
        f"passed: {result['code_cells']} code cells, opened and ran in "
        f"{result['open_and_run_seconds']} s; explorer "
        f"{result['cells']} cells ({result['nonempty']} non-empty); clicked {result['clicked']!r}: "
        f"{result['clips']} clips listed, {result['audio_players']} audio players "
        f"({result['audio_seconds']} s loaded), {result['log_mel_images']} log-mel images"
    )
    comparison = result["comparison"]
    if not comparison["compared"]:
        return line + "\n    comparison: the explorer offers no second run"
    if comparison.get("shared_cell", True) is None:
        return line + (
            f"\n    comparison with {comparison['compared']!r}: no cell holds clips under both "
            "runs here, so the side-by-side listing is checked on the demo notebook only"
        )
    first, second = comparison["listing_1"], comparison["listing_2"]
    paging = comparison["paging"]
    paged = (
        f"next page: {paging['log_mel_images']} new clips with log-mels and players"
        if paging["paged"]
        else f"one page only ({paging['clips']} clips)"
    )
    return line + (
        f"\n    comparison with {comparison['compared']!r}, clicked "
        f"{comparison['compare_clicked']!r}: {first['clips']} and {second['clips']} clips, "
        f"{first['audio_players']} + {second['audio_players']} audio players, "
        f"{first['log_mel_images']} + {second['log_mel_images']} log-mel images; {paged}"
    )


def run(args: argparse.Namespace) -> int:
    """Start everything, run the checks, stop everything; return the exit status."""
    if not args.demo and not args.notebook.is_file():
        print(
            f"UI test cannot run: notebook {args.notebook} not found "
            "(pass --notebook PATH, or --demo for the generated demo notebook)",
            file=sys.stderr,
        )
        return 2
    try:
        chromium_path = find_chromium(args.chromium)
        import playwright  # noqa: F401  (fail here, before starting a server)
    except (FileNotFoundError, ImportError) as error:
        print(f"UI test cannot run: {error}", file=sys.stderr)
        return 2

    shots = args.screenshots.resolve()
    reset_output(shots, DEMO_NAME.removesuffix(".ipynb") if args.demo else args.notebook.stem)
    total = Deadline(args.timeout)
    report: dict = {"chromium": str(chromium_path), "screenshots": str(shots)}
    started = time.monotonic()
    with watchdog(args.timeout + 90), tempfile.TemporaryDirectory(prefix="serlib-ui-") as tmp:
        work = Path(tmp)
        root = work / "lab"
        root.mkdir()
        demo = prepare_notebook(demo_notebook(), root, DEMO_NAME)
        notebook = demo if args.demo else prepare_notebook(args.notebook.resolve(), root)
        print(f"UI test: {args.notebook if not args.demo else 'demo notebook'} in JupyterLab")
        with running_lab(
            root,
            work,
            shots / "jupyterlab.log",
            python=args.python,
            profile="tiny",
            serlib_home=work / "serlib-home",
            timeout=min(120.0, total.remaining()),
        ) as server:
            print(f"  JupyterLab on {server.base_url} (log: {server.log_path})", flush=True)
            with chromium(chromium_path, work / "chromium-profile") as browser:
                if args.self_check:
                    report["self_check"] = self_check(browser, server, root, shots, total)
                demo_shots = shots / Path(demo).stem
                report["compare_demo"] = run_one(browser, server, demo, demo_shots, total, True)
                print(f"  {demo}: {describe(report['compare_demo'])}", flush=True)
                if not args.demo:
                    course_shots = shots / Path(notebook).stem
                    report["course"] = run_one(browser, server, notebook, course_shots, total)
                else:
                    report["course"] = report["compare_demo"]
        report["leftover_processes"] = leftover_processes(work)
    report["seconds"] = round(time.monotonic() - started, 1)

    (shots / "report.json").write_text(json.dumps(report, indent=2))
    course = report["course"]
    missed = [case for case, result in report.get("self_check", {}).items() if not result["caught"]]
    if not args.demo:
        print(f"  {course['notebook']}: {describe(course)}")
    if course["blocked"]:
        print(f"  outside requests refused: {course['blocked'][:5]}")
    if course["console_errors"]:
        print(f"  browser console errors: {len(course['console_errors'])} (see report.json)")
    print(f"  screenshots: {shots}")
    for path in course.get("screenshots", []):
        print(f"    {path}")
    print(f"  leftover processes: {report['leftover_processes'] or 'none'}; {report['seconds']} s")
    if missed:
        print(f"UI test FAILED: the self-check did not catch {missed}", file=sys.stderr)
        return 1
    if report["leftover_processes"]:
        print("UI test FAILED: processes were left running", file=sys.stderr)
        return 1
    for name, result in (("comparison demo", report["compare_demo"]), ("course", course)):
        if not result["passed"]:
            print(f"UI test FAILED ({name}): {result['failed_check']}", file=sys.stderr)
            return 1
    print("UI test passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    previous = {sig: signal.signal(sig, raise_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(args)
    except UICheckFailed as failure:  # JupyterLab did not start, or the time limit was reached
        print(f"UI test FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
