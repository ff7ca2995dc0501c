"""Train the course's CRNN-family runs ahead of the notebooks, several processes at a time.

``make course`` executes the five notebooks one after the other, and most of its time is training.
On a 2-core CPU two processes of one torch thread each get more training done than one process of
two threads (the whole course used 15 % less CPU time on AVX2 kernels and 7 % less on AVX512 ones;
``benchmarks/RESULTS_course.md``), so ``python -m serlib.course_runner`` first trains the runs the
notebooks will ask for in ``jobs`` worker processes, one torch thread each, longest first. The
notebooks then find them finished: ``serlib.course.course_run`` reuses a finished run with the same
settings and prints the epochs it trained. Each notebook still trains whatever it finds missing.

The Wav2Vec2 runs are left to notebook 04, whose parameters choose their encoder and mode; the
log-mels of both corpora are computed once, before the workers start, so no two workers compute
the same features.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import torch

from serlib.cache import load_features
from serlib.corpora import load_corpus
from serlib.course import CourseSetup, course_corpora, ensure_runs, short_path
from serlib.course_plan import COURSE_RUN_PLAN, WORKSHOP_SECONDS
from serlib.features import FrontendConfig

AHEAD_MODELS = ("crnn", "dann")
"""The models whose course runs are trained ahead: their settings do not depend on a notebook's
parameters (the Wav2Vec2 runs' encoder and mode do, so notebook 04 trains those itself)."""


def runs_trained_ahead(names: Sequence[str]) -> list[str]:
    """The course runs among ``names`` to train ahead (the CRNN-family models), longest first
    (``WORKSHOP_SECONDS``): starting the longest runs first keeps both workers busy to the end
    instead of leaving one long run alone."""
    ahead = [name for name in names if COURSE_RUN_PLAN[name].model in AHEAD_MODELS]
    return sorted(ahead, key=lambda name: -WORKSHOP_SECONDS.get(name, 0))


def ready_to_start(name: str, finished: set[str], planned: Sequence[str]) -> bool:
    """A run that scores another run's weights (``CourseRun.scores``) waits until that run is
    finished when it is one of the ``planned`` runs too (queued or training): otherwise its worker
    would find the weights missing and train them a second time, into the same folder."""
    base = COURSE_RUN_PLAN[name].scores
    return not base or base in finished or base not in planned


def compute_features_once(setup: CourseSetup, progress: bool = True) -> int:
    """Compute (or find cached) the log-mels of every clip of both corpora; return how many.

    Every CRNN-family run reads them through the feature cache; computed here, before the workers
    start, they are computed once instead of once per worker that needs them at the same time.
    """
    count = 0
    for corpus in setup.corpora.values():
        scan = load_corpus(corpus.name, corpus.root, progress=progress)
        paths = scan.table["path"].tolist()
        count += len(load_features(paths, FrontendConfig(), progress=progress).arrays)
    return count


def use_one_thread() -> None:
    """The worker processes' initializer: one torch thread each (``jobs`` workers share the CPU)."""
    torch.set_num_threads(1)


def train_in_worker(name: str, profile: str, seed: int, log_path: str) -> float:
    """Train course run ``name`` in this worker (``ensure_runs``: reused if already finished),
    writing everything it prints to ``log_path``; return the wall seconds it took."""
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log, redirect_stdout(log), redirect_stderr(log):
        corpora = course_corpora(profile)
        torch.manual_seed(seed)
        ensure_runs([name], CourseSetup(profile, seed, corpora))
    return time.perf_counter() - start


def train_ahead(
    names: Sequence[str],
    setup: CourseSetup,
    jobs: int,
    log_dir: Path,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train ``names`` (``runs_trained_ahead``'s order) in ``jobs`` worker processes; return the
    wall seconds of each. A failing run stops the others and raises its own error (with the
    worker's traceback), after naming the log file that holds what it printed."""
    log_dir.mkdir(parents=True, exist_ok=True)
    queued, finished, seconds = list(names), set(), {}
    running: dict[Future, str] = {}
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=use_one_thread) as pool:
        while queued or running:
            for name in [n for n in queued if ready_to_start(n, finished, names)]:
                if len(running) == jobs:
                    break
                queued.remove(name)
                log_path = log_dir / f"{name}.log"
                future = pool.submit(
                    train_in_worker, name, setup.profile, setup.seed, str(log_path)
                )
                running[future] = name
                log(f"  {name}: training (what it prints: {short_path(log_path)})")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                error = future.exception()
                if error is not None:  # its traceback comes with it (a bug must show where)
                    log(f"  {name} failed; what it printed: {short_path(log_dir / f'{name}.log')}")
                    pool.shutdown(cancel_futures=True)
                    raise error
                seconds[name] = future.result()
                finished.add(name)
                log(f"  {name}: done in {seconds[name]:.0f} s")
    return seconds
