"""SIGKILL a training run, resume it, and get exactly the uninterrupted run's results.

The runs are real ``python -m serlib train`` processes on a tiny tone corpus. After the kill, every
file the run left must be whole (temporaries aside), and ``--resume`` must end with the same
metrics.json and history (timings aside) as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file
from tone_corpora import write_emodb, write_ravdess

from serlib.checkpoints import load_state

EPOCHS = 4


def train(
    out: Path, corpora: tuple[Path, Path], env: dict, resume: bool = False
) -> subprocess.Popen:
    source, target = corpora
    command = [
        sys.executable, "-m", "serlib", "train", "--model", "dann",
        "--source", f"ravdess:{source}", "--target", f"emodb:{target}", "--out", str(out),
        "--profile", "tiny", "--epochs", str(EPOCHS), "--seed", "3",
    ]  # fmt: skip
    if resume:
        command.append("--resume")
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> None:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err


def history_without_timings(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "history.csv").drop(columns="seconds")


def assert_whole(run: Path) -> None:
    """Every file but temporaries parses completely."""
    for path in run.rglob("*"):
        if path.is_dir() or path.name.endswith(".tmp"):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(path)
        elif path.name.endswith(".state.pt"):
            load_state(path)
        elif path.suffix == ".csv":
            pd.read_csv(path)


@pytest.mark.slow  # three `serlib train` processes: about 20 s on an idle 2-core machine
def test_sigkill_then_resume_ends_like_an_uninterrupted_run(tmp_path):
    corpora = (write_ravdess(tmp_path / "ravdess"), write_emodb(tmp_path / "emodb"))
    env = os.environ | {"SERLIB_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    finish(train(straight, corpora, env))  # also fills the feature cache
    epoch_seconds = float(pd.read_csv(straight / "history.csv")["seconds"].median())

    process = train(killed, corpora, env)
    latest = killed / "checkpoint" / "latest.json"
    deadline = time.monotonic() + 120
    while not latest.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(epoch_seconds / 2)  # into the middle of the next epoch
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    done = json.loads(latest.read_text())["epoch"] + 1
    assert done < EPOCHS, "the run finished before it could be killed"
    assert not (killed / "metrics.json").exists()
    assert_whole(killed)

    finish(train(killed, corpora, env, resume=True))
    assert_whole(killed)
    assert not list(killed.rglob("*.tmp"))
    pd.testing.assert_frame_equal(
        history_without_timings(killed), history_without_timings(straight)
    )
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics == json.loads((straight / "metrics.json").read_text())
    assert (killed / "model.safetensors").read_bytes() == (
        straight / "model.safetensors"
    ).read_bytes()
