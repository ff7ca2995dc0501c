"""What the five course notebooks share: set-up, corpora, run folders, encoders, figures, results.

The notebooks share nothing but serlib and the run folders they write, so everything two of them
need lives here: the set-up every notebook starts with (``setup``), where the corpora are (a real
corpus from its environment variable, else the synthetic one, generated once per profile and seed),
where each model's run folder goes, which Wav2Vec2 encoder and training mode notebook 04 uses,
where figures are saved, and which runs make up the course's results table.

Every course run is named in ``COURSE_RUN_PLAN`` (its model and options), so any notebook can train
one it needs and finds missing (``ensure_runs``, saying how long that takes): each notebook stands
alone, in Colab or on a fresh ``$SERLIB_HOME``. ``course_run`` reuses a run folder only when it holds
the very run asked for (the same settings, compared as ``serlib train --resume`` compares them), so
the course never trains the same run twice and never returns another run's results.

``python -m serlib.course_runner`` (what ``make course`` calls) executes the notebooks themselves;
``serlib.colab`` says where the course is published; ``serlib.study`` holds the study it reproduces.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, display
from matplotlib.figure import Figure

from serlib.colab import REPO_URL as REPO_URL  # re-exported: the one repository setting
from serlib.colab import colab_url as repository_colab_url
from serlib.colab import enable_colab_widgets, in_colab
from serlib.config import DATASET_ENV, check_profile, serlib_home
from serlib.course_plan import COURSE_MODELS, COURSE_RUN_PLAN, expected_time, run_label
from serlib.course_plan import COURSE_RUNS as COURSE_RUNS  # re-exported for the notebooks
from serlib.course_plan import WORKSHOP_SECONDS as WORKSHOP_SECONDS
from serlib.course_plan import CourseRun as CourseRun
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
from serlib.results import results_table, trained_epochs
from serlib.run_settings import differing_settings, make_settings, trains_the_same
from serlib.runs import train_run
from serlib.study import STUDY as STUDY  # re-exported: notebooks name the study from here
from serlib.study import study_changes as study_changes
from serlib.study import study_table as study_table
from serlib.synth import generate_corpus

NOTEBOOKS = (
    "01_data_exploration",
    "02_crnn_baseline",
    "03_dann",
    "04_wav2vec2_dann",
    "05_domain_shift_analysis",
)
"""The course, in the order it is meant to be run (each also runs alone: it trains what it needs)."""

SOURCE_CORPUS = "iemocap"
TARGET_CORPUS = "ravdess"
"""The study's domains: natural-ish dyadic speech (source) and acted studio speech (target)."""

FIGURES_ENV = "SERLIB_FIGURES"
"""Overrides where notebooks save figures (the tests send them to a temporary folder)."""


def colab_url(notebook: str) -> str:
    """The "Open in Colab" link of a course notebook (``serlib.colab`` says where it is published)."""
    return repository_colab_url(notebook, NOTEBOOKS)


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


def setting_text(value: object) -> str:
    """A setting as a message shows it (a corpus as ``name:folder``)."""
    if isinstance(value, dict) and set(value) == {"name", "root"}:
        return f"{value['name']}:{short_path(value['root'])}"
    return repr(value)


def settings_differences(saved: dict, asked: dict) -> list[str]:
    """What differs between a run folder's config.json and a request, as ``option saved -> asked``
    (``serlib.run_settings.differing_settings``, the comparison ``--resume`` makes)."""
    return [
        f"{key} {setting_text(old)} -> {setting_text(new)}"
        for key, old, new in differing_settings(saved, asked)
    ]


def copy_trained_weights(trained: Path, folder: Path, asked: dict) -> None:
    """Start run ``folder`` from the finished training of run ``trained``, which trained the very
    weights ``asked`` would (``trains_the_same``): its checkpoint, best weights and history are
    copied, so resuming it skips straight to scoring with the asked settings."""
    saved = json.loads((trained / "config.json").read_text(encoding="utf-8"))
    if not (trained / "metrics.json").is_file() or not trains_the_same(saved, asked):
        raise UserError(
            f"{short_path(trained)} did not finish training the same weights as "
            f"{short_path(folder)}; train {folder.name} on its own"
        )
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(trained / "checkpoint", folder / "checkpoint")
    for name in ("model.safetensors", "history.csv"):
        shutil.copy2(trained / name, folder / name)


def course_run(
    model: str,
    corpora: dict[str, CourseCorpus],
    profile: str,
    seed: int = 0,
    *,
    name: str | None = None,
    retrain: bool = False,
    oracle: bool = False,
    weights_from: Path | None = None,
    quiet: bool = False,
    **train_options,
) -> Path:
    """Train a course model into its run folder, or reuse the same run already there.

    A run folder is reused only when its config.json holds the very settings asked for (the same
    check as ``serlib train --resume``): finished, it is reused; unfinished, it is resumed. A
    folder that holds a run with other settings is refused with the differing options named;
    ``retrain=True`` deletes the folder and trains from scratch. ``name`` (default: ``model``)
    names the folder, e.g. ``crnn-seed5``; ``oracle=True`` trains on the labelled target
    adaptation speakers (an upper bound); ``train_options`` go to ``serlib.runs.train_run``
    (``scheme``, ``transductive``, ``encoder``, ``epochs``, ...). ``weights_from``: a finished run
    that trained the same weights (it differs only in how target clips are scored): its training
    is reused, not repeated. A reused run prints the epochs it trained unless ``quiet``.
    """
    folder = run_dir(name or model, profile, seed, data_tag(corpora))
    source, target = corpora["target" if oracle else "source"].spec, corpora["target"].spec
    if retrain and folder.exists():
        shutil.rmtree(folder)
    options = {key: value for key, value in train_options.items() if key != "progress"}
    asked = make_settings(model, source, target=target, profile=profile, seed=seed, **options)
    resume = (folder / "config.json").is_file()
    if resume:
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        differences = settings_differences(saved, asked.to_dict())
        if differences:
            shown = "; ".join(differences[:6]) + (" ..." if len(differences) > 6 else "")
            raise UserError(
                f"{short_path(folder)} holds another run (saved -> asked: {shown}); retrain=True "
                "(RETRAIN = True, or SERLIB_RETRAIN=1) replaces it, or give this run another name"
            )
        if (folder / "metrics.json").is_file():
            said = (
                f"reusing the finished run in {short_path(folder)} (RETRAIN = True trains it again)"
            )
            if quiet:
                print(said)
            else:
                print("\n".join([f"{said}; it trained like this:", *trained_epochs(folder)]))
            return folder
        print(f"resuming the unfinished run in {short_path(folder)}")
    elif weights_from is not None:
        if folder.exists():
            shutil.rmtree(folder)  # what an interrupted copy left
        copy_trained_weights(weights_from, folder, asked.to_dict())
        resume = True
        print(f"scoring the weights of {short_path(weights_from)} again: no training")
    train_run(
        model,
        source,
        folder,
        target=target,
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


DRIVE = "/content/drive"
"""Where Colab mounts Google Drive."""


def use_home(home: str | Path) -> Path:
    """Keep corpora, feature caches and runs in ``home`` from now on (sets ``$SERLIB_HOME``).

    In Colab, a ``home`` on Google Drive (under ``/content/drive``) mounts Drive first, so runs
    survive the end of a session and every notebook's runtime finds the runs the others trained.
    """
    folder = Path(home).expanduser()
    if in_colab() and str(folder).startswith(DRIVE) and not Path(DRIVE, "MyDrive").is_dir():
        from google.colab import drive  # only exists inside Colab

        drive.mount(DRIVE)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["SERLIB_HOME"] = str(folder)
    return folder


def setup(
    profile: str,
    seed: int = 0,
    *,
    source_root: str | Path | None = None,
    target_root: str | Path | None = None,
    home: str | Path | None = None,
) -> CourseSetup:
    """The set-up every notebook starts with, in one call.

    Checks the profile, enables widgets in Colab, keeps corpora and runs in ``home`` when given
    (``use_home``: e.g. ``"/content/drive/MyDrive/serlib"`` keeps them on Google Drive between
    Colab sessions), seeds torch with ``seed`` (so a rerun draws the same initial weights), finds
    the two corpora (``course_corpora``: the real ones at the given roots or their environment
    variables, else the synthetic ones, generated on first use) and prints where they are.
    """
    check_profile(profile)
    if in_colab():
        enable_colab_widgets()
    if home is not None and str(home).strip():
        print(f"SERLIB_HOME: {use_home(home)}")
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


def ensure_runs(
    names: Sequence[str],
    setup: CourseSetup,
    retrain: bool = False,
    *,
    encoder: str | None = None,
    w2v2_mode: str | None = None,
    quiet: bool = False,
) -> dict[str, Path]:
    """The run folders of the named course runs, training each one that is missing.

    What lets every notebook stand alone: a notebook that reads a run an earlier notebook trains
    asks for it here, and it is trained (saying first how long that takes) only when it is not
    already there; a finished run with the same settings is reused, so the course never trains
    the same run twice. The runs depend on nothing but the corpora and are trained in the order
    given. ``retrain`` trains them all again; ``encoder`` and ``w2v2_mode`` (Wav2Vec2 runs) go
    through ``pick_encoder`` and ``pick_w2v2_mode``, as in notebook 04. A run that only scores
    another run's weights anew (``CourseRun.scores``) trains that run if it is missing, not itself.
    ``quiet``: a finished run is named in one line, without the epochs it trained (for the runs of
    an earlier notebook, whose epochs that notebook shows).
    """
    unknown = [name for name in names if name not in COURSE_RUN_PLAN]
    if unknown:
        raise UserError(
            f"unknown course runs {unknown}; the course has {', '.join(COURSE_RUN_PLAN)}"
        )
    w2v2_options: dict[str, str] = {}
    if any(COURSE_RUN_PLAN[name].model.startswith("w2v2") for name in names):
        chosen, note = pick_encoder(encoder, setup.profile)
        print(f"Wav2Vec2 encoder: {note}")
        w2v2_options = {"encoder": chosen, "w2v2_mode": pick_w2v2_mode(w2v2_mode, setup.profile)}
    folders: dict[str, Path] = {}
    bases: dict[str, Path] = {}  # the runs whose weights the scoring-only runs score again
    for name in names:
        plan = COURSE_RUN_PLAN[name]
        options = dict(plan.options) | (w2v2_options if plan.model.startswith("w2v2") else {})
        folder = run_dir(name, setup.profile, setup.seed, setup.tag)
        trained = None
        if plan.scores:  # the same weights as another run: train that one (once), score anew
            if plan.scores not in folders | bases:
                bases |= ensure_runs([plan.scores], setup, quiet=True)
            trained = (folders | bases)[plan.scores]
        if retrain or not (folder / "metrics.json").is_file():
            took = expected_time(name, setup.profile, options.get("encoder"))
            print(f"{'scoring' if trained else 'training'} {plan.label} ({name}): {took}")
        folders[name] = course_run(
            plan.model,
            setup.corpora,
            setup.profile,
            setup.seed,
            name=name,
            retrain=retrain,
            oracle=plan.oracle,
            weights_from=trained,
            quiet=quiet,
            **options,
        )
    return folders


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


def course_run_dirs(
    profile: str, seed: int = 0, tag: str = "iemocap-synth-ravdess-synth"
) -> dict[str, Path]:
    """Table name -> run folder of every course run: the four models always (missing or not),
    the oracle and the variants of notebooks 03 and 05 when they exist."""
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
