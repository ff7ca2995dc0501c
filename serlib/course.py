"""What the five course notebooks share: set-up, corpora, run folders, encoders, figures, results.

The notebooks share nothing but serlib and the run folders they write, so everything two of them
need lives here: the set-up every notebook starts with (``setup``), where the corpora are (a real
corpus from its environment variable, else the synthetic one, generated once per profile and seed),
where each model's run folder goes, which Wav2Vec2 encoder and training mode notebook 04 uses,
where figures are saved, and which runs make up the course's results table.

``python -m serlib.course_runner`` (what ``make course`` calls) executes the notebooks themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, display
from matplotlib.figure import Figure

from serlib.config import DATASET_ENV, check_profile, serlib_home
from serlib.errors import UserError
from serlib.figures import save_figure
from serlib.models.pretrained import (
    TINY_ENCODER,
    EncoderNotAvailable,
    choose_encoder,
    choose_mode,
    encoder_label,
    is_tiny,
    resolve_encoder,
)
from serlib.results import results_table
from serlib.runs import train_run
from serlib.synth import generate_corpus

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


def in_colab() -> bool:
    """True inside Google Colab (where the setup cell installs serlib and enables widgets)."""
    return "google.colab" in sys.modules


def colab_url(notebook: str) -> str:
    """The "Open in Colab" link of a course notebook."""
    stem = notebook.removesuffix(".ipynb")
    if stem not in NOTEBOOKS:
        raise UserError(f"unknown notebook {notebook!r}; the course has {', '.join(NOTEBOOKS)}")
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
            raise UserError(f"{name} folder not found: {path} (check {DATASET_ENV[name]})")
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
        raise UserError(f"model name {model!r} must be a plain folder name")
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


@dataclass(frozen=True)
class CourseSetup:
    """What a notebook works with after its set-up cell: profile, seed and the two corpora."""

    profile: str
    seed: int
    corpora: dict[str, CourseCorpus]

    @property
    def tag(self) -> str:
        """Names the data the runs are trained on (``data_tag``): part of every run folder's path."""
        return data_tag(self.corpora)


def enable_colab_widgets() -> None:
    """Turn on Colab's widget manager, without which ipywidgets (the explorers) do not render."""
    from google.colab import output  # only exists inside Colab

    output.enable_custom_widget_manager()


def setup(
    profile: str,
    seed: int = 0,
    *,
    source_root: str | Path | None = None,
    target_root: str | Path | None = None,
) -> CourseSetup:
    """The set-up every notebook starts with, in one call.

    Checks the profile, enables widgets in Colab, seeds torch with ``seed`` (so a rerun draws the
    same initial weights), finds the two corpora (``course_corpora``: the real ones at the given
    roots or their environment variables, else the synthetic ones, generated on first use) and
    prints where they are.
    """
    check_profile(profile)
    if in_colab():
        enable_colab_widgets()
    torch.manual_seed(seed)
    corpora = course_corpora(profile, source_root=source_root, target_root=target_root)
    for role, corpus in corpora.items():
        print(f"{role}: {corpus.describe()}")
    return CourseSetup(profile=profile, seed=seed, corpora=corpora)


def pick_encoder(requested: str | None, profile: str) -> tuple[str, str]:
    """The Wav2Vec2 encoder to use and a line saying what it is.

    ``serlib.models.pretrained`` chooses and finds it (``requested``, else ``tiny`` in the tiny
    profile, else ``$SERLIB_W2V2`` or ``facebook/wav2vec2-base``). Where it is not available the
    course falls back to the small randomly initialised ``tiny`` encoder, with a note that says so
    and how to get the real one, so that notebook 04 still runs.
    """
    name = choose_encoder(requested, profile)
    tiny = encoder_label(TINY_ENCODER)
    if is_tiny(name):
        return TINY_ENCODER, f"{tiny}: a plumbing check, its scores are not results"
    try:
        source = resolve_encoder(name)
    except EncoderNotAvailable as error:
        return TINY_ENCODER, (
            f"FALLBACK: {tiny}; its scores are not results. {name!r} is unavailable: "
            f"{str(error).splitlines()[0]}"
        )
    return name, f"pretrained encoder {name!r} (from {source.kind}: {source.location or name})"


def pick_w2v2_mode(requested: str | None, profile: str) -> str:
    """``frozen`` or ``finetune``, by ``serlib.models.pretrained.choose_mode``'s one rule.

    The notebook knows whether a GPU is there, so it tells the rule (the command line leaves it to
    the profile); ``requested`` or ``$SERLIB_W2V2_MODE`` wins over both.
    """
    return choose_mode(requested, profile, gpu=torch.cuda.is_available())


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


def save_and_show(fig: Figure, name: str) -> None:
    """Save a figure as ``<figures_dir()>/<name>.png`` and display that very file.

    Showing the saved PNG (not a second rendering) means the notebook shows exactly the figure in
    ``figures/``, at the size chosen there, and the figure is closed so it is not shown twice.
    """
    path = save_figure(fig, name, figures_dir())
    plt.close(fig)
    display(Image(filename=str(path)))


def run_label(name: str, folder: Path) -> str:
    """The table name of a course run, marked when its Wav2Vec2 encoder is the tiny random one."""
    label = COURSE_RUNS.get(name, name)
    config_path = folder / "config.json"
    if config_path.is_file():
        encoder = json.loads(config_path.read_text()).get("encoder")
        if encoder is not None and is_tiny(str(encoder)):
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


def course_results(
    profile: str, seed: int = 0, tag: str = "iemocap-synth-ravdess-synth"
) -> pd.DataFrame:
    """The results table of the course runs (what ``make course`` prints at the end)."""
    return results_table(course_run_dirs(profile, seed, tag))
