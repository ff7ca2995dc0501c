"""What the five course notebooks share, and ``python -m serlib.course``, which runs them all.

The notebooks share nothing but serlib and the run folders they write, so everything two of them
need lives here: where the corpora are (a real corpus from its environment variable, else the
synthetic one, generated once per profile and seed), where each model's run folder goes, where
figures are saved, and how the final results table is gathered from the run folders.

``python -m serlib.course --profile workshop`` (what ``make course`` calls) makes sure the
corpora exist, executes notebooks 01..05 in order into ``$SERLIB_HOME/course/<profile>/`` (the
committed notebooks are left alone unless ``--update-notebooks`` is given), prints one line per
notebook with the time it took, then prints the results table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serlib.config import DATASET_ENV, PROFILES, check_profile, serlib_home

REPO_URL = "https://github.com/serlib/serlib"
"""Where Colab installs serlib from (the setup cell of every notebook)."""

NOTEBOOKS = (
    "01_data_exploration",
    "02_crnn_baseline",
    "03_dann",
    "04_wav2vec2_dann",
    "05_domain_shift_analysis",
)
"""The course, in the order it is meant to be run (later notebooks read earlier run folders)."""

SOURCE_CORPUS = "iemocap"
TARGET_CORPUS = "ravdess"
"""The study's domains: natural-ish dyadic speech (source) and acted studio speech (target)."""

FIGURES_ENV = "SERLIB_FIGURES"
"""Overrides where notebooks save figures (the tests send them to a temporary folder)."""

COURSE_MODELS = ("crnn", "dann", "w2v2", "w2v2-dann")
"""The models the course trains, in the order of the results table."""

COURSE_RUNS = {
    "crnn": "CRNN",
    "dann": "DANN-CRNN",
    "w2v2": "W2V2",
    "w2v2-dann": "W2V2-DANN",
    "crnn-seed5": "CRNN, seed5 labels",
    "dann-transductive": "DANN-CRNN, transductive",
    "dann-confusion": "DANN-CRNN, confusion adversary",
    "crnn-target-statistics": "CRNN + target statistics",
    "crnn-target-batchnorm": "CRNN + target batch norm (AdaBN)",
}
"""Run folder name -> table name: the four models of notebooks 02-04 and the variants of 03 and 05."""

RESULT_SETS = {"source_test": "source test", "target_test": "target test"}
"""Evaluation sets every course run reports, and how tables name them."""


def in_colab() -> bool:
    """True inside Google Colab (where the setup cell installs serlib and enables widgets)."""
    return "google.colab" in sys.modules


def colab_url(notebook: str) -> str:
    """The "Open in Colab" link of a course notebook."""
    stem = notebook.removesuffix(".ipynb")
    if stem not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {notebook!r}; the course has {', '.join(NOTEBOOKS)}")
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{stem}.ipynb"


def short_path(path: str | Path) -> str:
    """``path`` written from ``$SERLIB_HOME`` when it lies inside it, so outputs do not depend on
    where a machine keeps its data (and committed notebooks show no one's home folder)."""
    path = Path(path)
    home = serlib_home().resolve()
    try:
        return f"$SERLIB_HOME/{path.resolve().relative_to(home)}"
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class CourseCorpus:
    """One domain of the course: which corpus loader reads it, where it is, whether it is synthetic."""

    name: str
    root: Path
    synthetic: bool

    @property
    def spec(self) -> str:
        """``NAME:DIR``, the form the ``serlib`` command line takes."""
        return f"{self.name}:{self.root}"

    def describe(self) -> str:
        """One line for notebook output: which corpus, real or synthetic, where."""
        kind = "synthetic" if self.synthetic else "real"
        return f"{self.name} ({kind}) at {short_path(self.root)}"


def synth_root(layout: str, profile: str, seed: int = 0) -> Path:
    """Where the synthetic corpus in ``layout`` lives for a profile and seed."""
    check_profile(profile)
    return serlib_home() / "synth" / f"{profile}-seed{seed}" / layout


def ensure_synthetic(layout: str, profile: str, seed: int = 0) -> Path:
    """Generate the synthetic corpus once (a finished corpus is reused, never rewritten)."""
    from serlib.synth import generate_corpus

    root = synth_root(layout, profile, seed)
    return Path(generate_corpus(layout, root, profile=profile, seed=seed))


def course_corpus(
    name: str, profile: str, seed: int = 0, root: str | Path | None = None
) -> CourseCorpus:
    """The corpus ``name``: the real one at ``root`` (or its environment variable), else synthetic."""
    if root is None or str(root).strip() == "":
        root = os.environ.get(DATASET_ENV[name], "").strip() or None
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ValueError(f"{name} folder not found: {path} (check {DATASET_ENV[name]})")
        return CourseCorpus(name, path.resolve(), synthetic=False)
    return CourseCorpus(name, ensure_synthetic(name, profile, seed).resolve(), synthetic=True)


def course_corpora(
    profile: str,
    data_seed: int = 0,
    source_root: str | Path | None = None,
    target_root: str | Path | None = None,
) -> dict[str, CourseCorpus]:
    """The two domains of the course, ``{"source": IEMOCAP-like, "target": RAVDESS-like}``.

    A root given here wins; else ``$SERLIB_IEMOCAP_DIR`` / ``$SERLIB_RAVDESS_DIR``; else the
    synthetic corpus of this profile and ``data_seed``, generated on first use. The notebooks keep
    ``data_seed`` at 0 and vary only the training seed, so that rerunning with another ``SEED``
    measures training noise on the same data.
    """
    return {
        "source": course_corpus(SOURCE_CORPUS, profile, data_seed, source_root),
        "target": course_corpus(TARGET_CORPUS, profile, data_seed, target_root),
    }


def data_tag(corpora: dict[str, CourseCorpus]) -> str:
    """Names the data a run was trained on, so real and synthetic runs never share a folder."""
    return "-".join(
        f"{c.name}{'-synth' if c.synthetic else ''}" for c in (corpora["source"], corpora["target"])
    )


def runs_root(profile: str, seed: int = 0, tag: str = "iemocap-synth-ravdess-synth") -> Path:
    """The folder that holds all course runs of one profile, seed and data."""
    check_profile(profile)
    return serlib_home() / "runs" / f"{tag}_{profile}-seed{seed}"


def run_dir(
    model: str, profile: str, seed: int = 0, tag: str = "iemocap-synth-ravdess-synth"
) -> Path:
    """The run folder of one course model (``crnn``, ``dann``, ``w2v2``, ``w2v2-dann``, ...).

    Notebook 02 writes ``run_dir("crnn", ...)``, notebook 05 reads it: the same arguments give the
    same folder, which is all the notebooks share.
    """
    if not model or "/" in model or model.startswith("."):
        raise ValueError(f"model name {model!r} must be a plain folder name")
    return runs_root(profile, seed, tag) / model


def course_run(
    model: str,
    corpora: dict[str, CourseCorpus],
    profile: str,
    seed: int = 0,
    *,
    name: str | None = None,
    retrain: bool = False,
    **train_options,
) -> Path:
    """Train a course model into its run folder, or reuse the finished run already there.

    A folder with ``metrics.json`` is a finished run and is reused (so re-running a notebook is
    quick); a folder with only a checkpoint is resumed; ``retrain=True`` deletes the folder and
    trains from scratch. ``name`` (default: ``model``) names the folder, e.g. ``crnn-seed5``;
    ``train_options`` go to ``serlib.runs.train_run`` (``scheme``, ``transductive``, ``encoder``,
    ``epochs``, ...).
    """
    from serlib.runs import train_run

    folder = run_dir(name or model, profile, seed, data_tag(corpora))
    if retrain and folder.exists():
        shutil.rmtree(folder)
    if (folder / "metrics.json").is_file():
        print(f"reusing the finished run in {short_path(folder)} (RETRAIN = True trains it again)")
        return folder
    resume = (folder / "config.json").is_file()
    if resume:
        print(f"resuming the unfinished run in {short_path(folder)}")
    train_run(
        model,
        corpora["source"].spec,
        folder,
        target=corpora["target"].spec,
        profile=profile,
        seed=seed,
        resume=resume,
        **train_options,
    )
    return folder


def pick_encoder(requested: str | None, profile: str) -> tuple[str, str]:
    """The Wav2Vec2 encoder to use and a line saying what it is.

    ``requested`` (or ``$SERLIB_W2V2``, or ``facebook/wav2vec2-base``; ``tiny`` in the tiny
    profile) when it is on disk, in the Hugging Face cache or reachable; otherwise the small
    randomly initialised ``tiny`` encoder, with a note that says so and how to get the real one.
    """
    from serlib.models.wav2vec import (
        TINY_ENCODER,
        TINY_LABEL,
        EncoderNotAvailable,
        choose_encoder,
        is_tiny,
        resolve_encoder,
    )

    name = choose_encoder(requested, profile)
    if is_tiny(name):
        return TINY_ENCODER, f"{TINY_LABEL}: a plumbing check, its scores are not results"
    try:
        source = resolve_encoder(name)
    except EncoderNotAvailable as error:
        return TINY_ENCODER, (
            f"FALLBACK: {TINY_LABEL}; its scores are not results. {name!r} is unavailable: "
            f"{str(error).splitlines()[0]}"
        )
    return name, f"pretrained encoder {name!r} (from {source.kind}: {source.location or name})"


def pick_w2v2_mode(requested: str | None, profile: str) -> str:
    """``finetune`` where a GPU is there (outside the tiny profile), else ``frozen`` features.

    An explicit ``requested`` or ``$SERLIB_W2V2_MODE`` wins.
    """
    from serlib.models.wav2vec import MODE_ENV, choose_mode

    if requested or os.environ.get(MODE_ENV, "").strip():
        return choose_mode(requested, profile)
    import torch

    return "finetune" if profile != "tiny" and torch.cuda.is_available() else "frozen"


def read_history(run: str | Path) -> pd.DataFrame:
    """A run folder's ``history.csv``: one row per epoch (losses, scores, learning rates, GRL)."""
    path = Path(run) / "history.csv"
    if not path.is_file():
        raise ValueError(f"{run}: no history.csv (train the run first)")
    return pd.read_csv(path)


def figures_dir() -> Path:
    """Where notebooks save figures: ``$SERLIB_FIGURES``, else the checkout's ``figures/``.

    Notebooks run with ``notebooks/`` as working directory, so the checkout is the folder (or its
    parent) that holds ``pyproject.toml`` and ``serlib/``; anywhere else (Colab) it is ``./figures``.
    """
    override = os.environ.get(FIGURES_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    here = Path.cwd()
    for folder in (here, here.parent):
        if (folder / "pyproject.toml").is_file() and (folder / "serlib").is_dir():
            return folder / "figures"
    return here / "figures"


def save_and_show(fig, name: str) -> None:
    """Save a figure as ``<figures_dir()>/<name>.png`` and display that very file.

    Showing the saved PNG (not a second rendering) means the notebook shows exactly the figure in
    ``figures/``, at the size chosen there, and the figure is closed so it is not shown twice.
    """
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    from serlib.plots import save_figure

    path = save_figure(fig, name, figures_dir())
    plt.close(fig)
    display(Image(filename=str(path)))


def read_metrics(run: str | Path) -> dict:
    """A run folder's ``metrics.json`` (one entry per evaluation set), with a clear error if absent."""
    path = Path(run) / "metrics.json"
    if not path.is_file():
        raise ValueError(f"{run}: no metrics.json (train and evaluate the run first)")
    return json.loads(path.read_text())


def results_table(runs: dict[str, str | Path], sets: dict[str, str] | None = None) -> pd.DataFrame:
    """A tidy table (model, set, ua, wa, macro_f1, n) from run folders' ``metrics.json``.

    ``runs`` maps the name a table should show to a run folder; ``sets`` maps the metrics.json key
    of each evaluation set to its display name. A missing run or set is left out of the table and
    listed in ``table.attrs["missing"]`` rather than failing, so a course with one model skipped
    still gets its table.
    """
    sets = RESULT_SETS if sets is None else sets
    rows, missing = [], []
    for name, folder in runs.items():
        try:
            metrics = read_metrics(folder)
        except ValueError:
            missing.append(f"{name} (no run at {folder})")
            continue
        for key, display in sets.items():
            scores = metrics.get(key)
            if not scores:
                missing.append(f"{name} / {display}")
                continue
            rows.append(
                {
                    "model": name,
                    "set": display,
                    "ua": scores["ua"],
                    "wa": scores["wa"],
                    "macro_f1": scores["macro_f1"],
                    "n": scores.get("n"),
                }
            )
    table = pd.DataFrame(rows, columns=["model", "set", "ua", "wa", "macro_f1", "n"])
    table.attrs["missing"] = missing
    return table


def wide_results(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model, ``<metric> (<set>)`` columns in percent, for printing."""
    if table.empty:
        return pd.DataFrame()
    wide = table.pivot(index="model", columns="set", values=["ua", "wa", "macro_f1"])
    order = list(dict.fromkeys(table["set"]))
    wide = wide.reindex(columns=[(m, s) for s in order for m in ("ua", "wa", "macro_f1")])
    wide.columns = [f"{m.upper() if m != 'macro_f1' else 'F1'} {s}" for m, s in wide.columns]
    wide = wide.reindex(list(dict.fromkeys(table["model"])))
    return (100 * wide).round(1)


def run_label(name: str, folder: Path) -> str:
    """The table name of a course run, marked when its Wav2Vec2 encoder is the tiny random one."""
    label = COURSE_RUNS.get(name, name)
    config_path = folder / "config.json"
    if config_path.is_file():
        encoder = json.loads(config_path.read_text()).get("encoder")
        if encoder is not None and str(encoder).strip().lower() == "tiny":
            label += " (tiny encoder)"
    return label


def course_run_dirs(
    profile: str, seed: int = 0, tag: str = "iemocap-synth-ravdess-synth"
) -> dict[str, Path]:
    """Table name -> run folder of every course run: the four models always (missing or not),
    the ablations of notebook 05 when they exist."""
    folders = {}
    for name in COURSE_RUNS:
        folder = run_dir(name, profile, seed, tag)
        if name in COURSE_MODELS or folder.is_dir():
            folders[run_label(name, folder)] = folder
    return folders


def course_results(profile: str, seed: int = 0, tag: str = "iemocap-synth-ravdess-synth"):
    """The results table of the course runs (what ``make course`` prints at the end)."""
    return results_table(course_run_dirs(profile, seed, tag))


# ----- running the notebooks ---------------------------------------------------------------------

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
AUDIO_PLACEHOLDER = "[audio player: run the notebook to listen]"
WIDGET_PLACEHOLDER = "[interactive widget: run the notebook to use it]"


def notebooks_folder() -> Path:
    """The checkout's ``notebooks/`` folder (the notebooks are not part of the installed package)."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise ValueError(
            f"no notebooks/ folder next to serlib ({folder}); run the course from a git checkout "
            f"or pass --notebooks DIR"
        )
    return folder


def _is_audio_output(output: dict) -> bool:
    """An output that embeds audio (IPython.display.Audio renders an <audio> tag with base64 data)."""
    data = output.get("data", {})
    html = data.get("text/html", "")
    html = "".join(html) if isinstance(html, list) else html
    return "<audio" in html or any(key.startswith("audio/") for key in data)


PROGRESS_BAR = re.compile(r"\d+%\||\[\d\d:\d\d[,<]")
"""tqdm's text form ("epoch 1/2:  50%|#####     | 1/2 [00:01<00:01", "0file [00:00, ?file/s]"),
which is also the text of its notebook widget."""


def _is_progress_bar(data: dict) -> bool:
    """A tqdm progress-bar widget: in a saved notebook it only ever shows its first state (0%)."""
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return bool(PROGRESS_BAR.search(text)) or "FloatProgress(" in text or "IntProgress(" in text


def strip_heavy_outputs(notebook) -> dict[str, int]:
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
            if data is not None and WIDGET_MIME in data and _is_progress_bar(data):
                counts["progress_bars"] += 1
                continue
            if data is not None and _is_audio_output(output):
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


def _kernel_manager():
    """A kernel running this very Python (the venv), whatever kernels the user has installed."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    class CurrentPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES,
                **ipykernel.kernelspec.get_kernel_dict(),
            )

    return KernelManager(kernel_name="python3", kernel_spec_manager=CurrentPythonSpecs())


def execute_notebook(
    source: Path, destination: Path, timeout: int | None = None, strip: bool = True
) -> float:
    """Execute ``source`` top to bottom (working directory: its folder) and write it to
    ``destination``; return the seconds it took. A failing cell raises with the cell's error."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    kernel = _kernel_manager()
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
    import jupytext

    text = jupytext.read(notebook)
    text.metadata.get("jupytext", {}).pop("formats", None)
    notebook.with_suffix(".py").write_text(jupytext.writes(text, fmt="py:percent"))


def select_notebooks(only: Sequence[str] | None) -> list[str]:
    """The course notebooks to run: all, or those whose name starts with one of ``only``."""
    if not only:
        return list(NOTEBOOKS)
    chosen = [name for name in NOTEBOOKS if any(name.startswith(prefix) for prefix in only)]
    if not chosen:
        raise ValueError(f"--only {','.join(only)} matches none of {', '.join(NOTEBOOKS)}")
    return chosen


def run_course(
    profile: str,
    seed: int = 0,
    *,
    notebooks: Sequence[str] | None = None,
    folder: Path | None = None,
    out: Path | None = None,
    update_notebooks: bool = False,
    timeout: int | None = None,
    log=print,
) -> pd.DataFrame:
    """Execute the course notebooks in order and return the results table of the course models.

    Executed copies go to ``out`` (default ``$SERLIB_HOME/course/<profile>``); with
    ``update_notebooks`` the executed notebooks (audio and widget state stripped) replace the
    committed ones and their jupytext scripts are re-synced.
    """
    check_profile(profile)
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
    for index, name in enumerate(names, start=1):
        source = folder / f"{name}.ipynb"
        if not source.is_file():
            raise ValueError(f"notebook not found: {source}")
        destination = source if update_notebooks else out / source.name
        log(f"[{index}/{len(names)}] {name}: running ...")
        seconds = execute_notebook(source, destination, timeout=timeout)
        if update_notebooks:
            sync_pair(destination)
        log(f"[{index}/{len(names)}] {name}: done in {seconds:.0f} s -> {destination}")
    log(f"course finished in {(time.perf_counter() - start) / 60:.1f} min")
    return course_results(profile, seed, data_tag(corpora))


def format_results(table: pd.DataFrame) -> str:
    """The results table as text: one row per model, UA/WA/F1 in percent per evaluation set."""
    if table.empty:
        return "no results: no course run folder has a metrics.json yet"
    lines = [wide_results(table).to_string()]
    missing = table.attrs.get("missing", [])
    if missing:
        lines.append("missing: " + "; ".join(missing))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serlib.course",
        description="Run the five course notebooks in order, then print the results table.",
    )
    parser.add_argument(
        "--profile", default=os.environ.get("SERLIB_PROFILE", "workshop"), choices=PROFILES
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
        "--retrain",
        action="store_true",
        help="train every run again instead of reusing finished ones (sets SERLIB_RETRAIN=1)",
    )
    parser.add_argument(
        "--results-only",
        action="store_true",
        help="print the results table of existing runs without running anything",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m serlib.course``; exit 0 on success, 1 if a notebook fails, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    only = [part.strip() for part in args.only.split(",")] if args.only else None
    if args.retrain:
        os.environ["SERLIB_RETRAIN"] = "1"  # read by the notebooks' parameters cells
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
                log=lambda line: print(line, flush=True),
            )
    except ValueError as error:
        print(f"serlib.course: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except Exception as error:  # a failing notebook cell: say which, not a 200-line traceback
        if type(error).__name__ != "CellExecutionError":
            raise
        print(f"\nserlib.course: a notebook failed:\n{error}", file=sys.stderr)
        return 1
    print()
    print(f"results ({args.profile} profile, seed {args.seed}; UA/WA/F1 in %):")
    print(format_results(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
