"""``python -m serlib.course_runner``: run the five course notebooks in order, as ``make course`` does.

It makes sure the corpora exist, trains the CRNN and DANN runs the notebooks read in ``--jobs``
processes (``serlib.course_training``; ``--jobs 1``: each notebook trains its own), executes
notebooks 01..05 in order into ``$SERLIB_HOME/course/<profile>/`` (the committed notebooks are
left alone unless ``--update-notebooks`` is given), prints one line per notebook with the time it
took, then prints the results table of the course runs. Executed notebooks are stripped of
embedded audio, widget state and progress bars before they are written, so what gets committed
stays small.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ipykernel.kernelspec
import jupytext
import nbformat
import pandas as pd
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from serlib.config import PROFILE_NAMES, check_profile, serlib_home
from serlib.course import (
    FIGURES_ENV,
    NOTEBOOKS,
    CourseSetup,
    course_corpora,
    course_results,
    data_tag,
    figures_dir,
    run_dir,
)
from serlib.course_plan import COURSE_RUN_PLAN, NOTEBOOK_RUNS
from serlib.course_training import compute_features_once, runs_trained_ahead, train_ahead
from serlib.errors import UserError
from serlib.results import format_results

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
AUDIO_PLACEHOLDER = "[audio player: run the notebook to listen]"
WIDGET_PLACEHOLDER = "[interactive widget: run the notebook to use it]"


def notebooks_folder() -> Path:
    """The checkout's ``notebooks/`` folder (the notebooks are not part of the installed package)."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise UserError(
            f"no notebooks/ folder next to serlib ({folder}); run the course from a git checkout "
            f"or pass --notebooks DIR"
        )
    return folder


def is_audio_output(output: dict) -> bool:
    """An output that embeds audio (IPython.display.Audio renders an <audio> tag with base64 data)."""
    data = output.get("data", {})
    html = data.get("text/html", "")
    html = "".join(html) if isinstance(html, list) else html
    return "<audio" in html or any(key.startswith("audio/") for key in data)


PROGRESS_BAR = re.compile(r"\d+%\||\[\d\d:\d\d[,<]")
"""tqdm's text form ("epoch 1/2:  50%|#####     | 1/2 [00:01<00:01", "0file [00:00, ?file/s]"),
which is also the text of its notebook widget."""


def is_progress_bar(data: dict) -> bool:
    """A tqdm progress-bar widget: in a saved notebook it only ever shows its first state (0%)."""
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return bool(PROGRESS_BAR.search(text)) or "FloatProgress(" in text or "IntProgress(" in text


def strip_heavy_outputs(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """Remove embedded audio, widget state and timing metadata from an executed notebook, in place.

    What is committed must stay small and reviewable: audio players and widget views only work
    in a live kernel anyway, so each is replaced by a one-line text placeholder; progress-bar
    widgets (which a saved notebook shows frozen at 0 %) are removed. Returns what was changed.
    """
    counts = {"audio": 0, "widgets": 0, "progress_bars": 0}
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None and WIDGET_MIME in data and is_progress_bar(data):
                counts["progress_bars"] += 1
                continue
            if data is not None and is_audio_output(output):
                output["data"] = {"text/plain": AUDIO_PLACEHOLDER}
                output["metadata"] = {}
                counts["audio"] += 1
            elif data is not None and WIDGET_MIME in data:
                output["data"] = {"text/plain": WIDGET_PLACEHOLDER}
                output["metadata"] = {}
                counts["widgets"] += 1
            kept.append(output)
        cell["outputs"] = kept
    return counts


class CurrentPythonKernel(KernelSpecManager):
    """Kernel specs that always describe this very Python (the venv), whatever is installed."""

    def get_kernel_spec(self, kernel_name: str):
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES,
            **ipykernel.kernelspec.get_kernel_dict(),
        )


def current_python_kernel() -> KernelManager:
    """A kernel running this very Python (the venv), whatever kernels the user has installed."""
    return KernelManager(kernel_name="python3", kernel_spec_manager=CurrentPythonKernel())


def execute_notebook(
    source: Path, destination: Path, timeout: int | None = None, strip: bool = True
) -> float:
    """Execute ``source`` top to bottom (working directory: its folder) and write it to
    ``destination``; return the seconds it took. A failing cell raises with the cell's error."""
    notebook = nbformat.read(source, as_version=4)
    kernel = current_python_kernel()
    client = NotebookClient(
        notebook,
        km=kernel,
        timeout=timeout,
        resources={"metadata": {"path": str(source.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        # nbclient shuts down only the kernels it created itself: without this, every executed
        # notebook leaves its kernel running (and its torch threads busy) until the course ends.
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
    seconds = time.perf_counter() - start
    if strip:
        strip_heavy_outputs(notebook)
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, destination)
    return seconds


def sync_pair(notebook: Path) -> None:
    """Rewrite the jupytext percent script paired with ``notebook`` from the notebook.

    The pairing itself lives in ``notebooks/jupytext.toml``, not in each notebook's metadata, so
    the script is exactly what ``jupytext --to py:percent -o - NAME.ipynb`` prints.
    """
    text = jupytext.read(notebook)
    text.metadata.get("jupytext", {}).pop("formats", None)
    notebook.with_suffix(".py").write_text(jupytext.writes(text, fmt="py:percent"))


def select_notebooks(only: Sequence[str] | None) -> list[str]:
    """The course notebooks to run: all, or those whose name starts with one of ``only``."""
    if not only:
        return list(NOTEBOOKS)
    chosen = [name for name in NOTEBOOKS if any(name.startswith(prefix) for prefix in only)]
    if not chosen:
        raise UserError(f"--only {','.join(only)} matches none of {', '.join(NOTEBOOKS)}")
    return chosen


def default_jobs() -> int:
    """Training processes for the runs trained ahead: 2 where the machine has 2 or more cores."""
    return min(2, os.cpu_count() or 1)


def remove_course_runs(
    names: Sequence[str], setup: CourseSetup, log: Callable[[str], None]
) -> None:
    """Delete the folders of the course runs ``names`` of this profile, seed and data
    (``--retrain``), so that they are trained again: ahead, or by the notebooks."""
    for name in names:
        folder = run_dir(name, setup.profile, setup.seed, setup.tag)
        if folder.exists():
            shutil.rmtree(folder)
            log(f"  removed {name}")


def run_course(
    profile: str,
    seed: int = 0,
    *,
    notebooks: Sequence[str] | None = None,
    folder: Path | None = None,
    out: Path | None = None,
    update_notebooks: bool = False,
    timeout: int | None = None,
    jobs: int = 1,
    retrain: bool = False,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Execute the course notebooks in order and return the results table of the course models.

    Executed copies go to ``out`` (default ``$SERLIB_HOME/course/<profile>``); with
    ``update_notebooks`` the executed notebooks (audio and widget state stripped) replace the
    committed ones and their jupytext scripts are re-synced. With ``jobs`` > 1 the CRNN-family
    runs the chosen notebooks read are trained first, in that many processes
    (``serlib.course_training``). ``retrain`` first deletes the runs the chosen notebooks read.
    """
    check_profile(profile)
    if jobs < 1:
        raise UserError(
            f"--jobs must be 1 or more (got {jobs}); 1 lets each notebook train its runs"
        )
    folder = notebooks_folder() if folder is None else Path(folder)
    names = select_notebooks(notebooks)
    home = serlib_home().resolve()
    out = (home / "course" / profile) if out is None else Path(out)
    # The kernels inherit this environment; absolute paths because they run inside notebooks/.
    os.environ["SERLIB_HOME"] = str(home)
    os.environ["SERLIB_PROFILE"] = profile
    os.environ["SERLIB_SEED"] = str(seed)
    os.environ.setdefault(FIGURES_ENV, str(figures_dir().resolve()))
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    start = time.perf_counter()
    corpora = course_corpora(profile)
    log(f"corpora ({profile} profile), ready in {time.perf_counter() - start:.1f} s:")
    for role, corpus in corpora.items():
        log(f"  {role}: {corpus.describe()}")
    setup = CourseSetup(profile, seed, corpora)
    needed = [run for run in COURSE_RUN_PLAN if any(run in NOTEBOOK_RUNS[nb] for nb in names)]
    if retrain:
        log("retraining: removing the runs these notebooks read")
        remove_course_runs(needed, setup, log)
        os.environ.pop("SERLIB_RETRAIN", None)  # removed once here; the notebooks retrain nothing
    ahead = runs_trained_ahead(needed)
    if jobs > 1 and ahead:
        started = time.perf_counter()
        clips = compute_features_once(setup, progress=False)
        log(f"log-mels of {clips} clips ready in {time.perf_counter() - started:.1f} s")
        log(f"training {len(ahead)} runs ahead in {jobs} processes (one torch thread each):")
        started = time.perf_counter()
        train_ahead(ahead, setup, jobs, out / "training-logs", log)
        log(f"runs trained in {time.perf_counter() - started:.0f} s")
    for index, name in enumerate(names, start=1):
        source = folder / f"{name}.ipynb"
        if not source.is_file():
            raise UserError(f"notebook not found: {source}")
        destination = source if update_notebooks else out / source.name
        log(f"[{index}/{len(names)}] {name}: running ...")
        seconds = execute_notebook(source, destination, timeout=timeout)
        if update_notebooks:
            sync_pair(destination)
        log(f"[{index}/{len(names)}] {name}: done in {seconds:.0f} s -> {destination}")
    log(f"course finished in {(time.perf_counter() - start) / 60:.1f} min")
    return course_results(profile, seed, data_tag(corpora))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serlib.course_runner",
        description="Run the five course notebooks in order, then print the results table.",
    )
    parser.add_argument(
        "--profile", default=os.environ.get("SERLIB_PROFILE", "workshop"), choices=PROFILE_NAMES
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated notebook prefixes, e.g. 01,02")
    parser.add_argument(
        "--notebooks", type=Path, help="folder of the notebooks (default: checkout)"
    )
    parser.add_argument(
        "--out", type=Path, help="where executed copies go (default: $SERLIB_HOME/course/<profile>)"
    )
    parser.add_argument(
        "--update-notebooks",
        action="store_true",
        help="write the executed notebooks (audio/widget state stripped) over the "
        "committed ones and re-sync their .py pairs",
    )
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="processes that train the CRNN and DANN runs before the notebooks run, one torch "
        "thread each (default: %(default)s on this machine; 1: each notebook trains its own)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="delete the course's runs first, so that every run is trained again",
    )
    parser.add_argument(
        "--results-only",
        action="store_true",
        help="print the results table of existing runs without running anything",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m serlib.course_runner``; exit 0 on success, 1 if a notebook fails, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    only = [part.strip() for part in args.only.split(",")] if args.only else None
    try:
        if args.results_only:
            corpora = course_corpora(args.profile)
            table = course_results(args.profile, args.seed, data_tag(corpora))
        else:
            table = run_course(
                args.profile,
                args.seed,
                notebooks=only,
                folder=args.notebooks,
                out=args.out,
                update_notebooks=args.update_notebooks,
                timeout=args.timeout,
                jobs=args.jobs,
                retrain=args.retrain or os.environ.get("SERLIB_RETRAIN", "") == "1",
                log=lambda line: print(line, flush=True),
            )
    except (UserError, FileNotFoundError) as error:
        print(f"serlib.course_runner: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except CellExecutionError as error:  # a failing notebook cell: say which, not a traceback
        print(f"\nserlib.course_runner: a notebook failed:\n{error}", file=sys.stderr)
        return 1
    print()
    print(f"results ({args.profile} profile, seed {args.seed}; UA/WA/F1 in %):")
    print(format_results(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
