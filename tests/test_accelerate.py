"""Two CPU processes under ``accelerate launch`` train like one: sharded data, gathered evaluation,
one writer, and an exact resume.

The runs are real ``accelerate launch --multi_gpu --num_processes 2`` jobs with no GPU visible, so
serlib joins the two processes on the CPU (gloo backend):

- a shard worker (this file run as a script) trains a small DANN with serlib's own loaders and
  records, per process, the clip indices of every batch it trained on and the rows it evaluated;
  the test compares them with the one order of each epoch that ``serlib.epochs`` fixes;
- ``serlib train`` on the tiny synthetic corpora in two processes, against ``train_run`` in one:
  the same evaluation counts, each clip predicted exactly once, one metrics.json, one summary;
- the two-process run killed after its first checkpoint and resumed in two processes ends exactly
  like the two-process run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from serlib.config import TrainConfig
from serlib.data import FeatureDataset
from serlib.epochs import TARGET_PASSES_PER_EPOCH, set_loader_epoch
from serlib.hardware import make_accelerator
from serlib.models import DANN, CRNNEncoder
from serlib.predict import predict
from serlib.runs import train_run
from serlib.sampling import make_loader
from serlib.synth import generate_corpus
from serlib.train import fit

PROCESSES = 2
N_MELS, CLASSES, BATCH = 16, 3, 4
SIZES = {"source": 40, "target": 26, "val": 21}  # 21 clips: the last batch holds one clip
CONFIG = TrainConfig(epochs=2, batch_size=BATCH, lr=5e-3, cpu=True, patience=10)
CLI_EPOCHS = 3


# ----- launching ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on, so parallel test runs do not share a rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(arguments: list[str], processes: int = PROCESSES) -> list[str]:
    """``accelerate launch`` of ``arguments`` (a script or ``-m module ...``) in N processes.

    ``--multi_gpu`` only picks Accelerate's torchrun launcher (``--cpu`` starts one process); with
    no GPU visible (``env``) serlib joins the processes on the CPU with the gloo backend.
    """
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
        "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", str(free_port()), *arguments,
    ]  # fmt: skip


def run(command: list[str], env: dict) -> str:
    """Run to the end; fail with the error lines and the end of its stderr (a child's traceback
    or the signal that killed it) unless it exits 0; return its stdout."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stderr.splitlines() if "Error" in line or "rank0]" in line]
    assert done.returncode == 0, "\n".join(errors[-30:] + ["--- stderr ---", done.stderr[-6000:]])
    return done.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    return os.environ | {
        "SERLIB_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",  # the CPU case, even on a machine with GPUs
    }


# ----- each process trains on its own shard --------------------------------------------------------


def toy_sets() -> dict[str, FeatureDataset]:
    """Random log-mels where class c raises mel bands 4c..4c+3; the target set is shifted."""
    rng = np.random.default_rng(0)
    sets = {}
    for name, n in SIZES.items():
        labels = np.arange(n) % CLASSES
        arrays = [rng.standard_normal((N_MELS, 12 + i % 5)).astype(np.float32) for i in range(n)]
        for x, label in zip(arrays, labels, strict=True):
            x[4 * label : 4 * label + 4] += 1.5 + (0.7 if name == "target" else 0.0)
        sets[name] = FeatureDataset(
            arrays,
            labels,
            domain=int(name == "target"),
            n_frames=12,
            crop="random" if name != "val" else "start",
            normalisation="none",
        )
    return sets


def toy_loaders() -> dict:
    """The loaders ``serlib.runs.make_loaders`` would build: balanced source, shuffled target."""
    sets = toy_sets()
    return {
        "source": make_loader(sets["source"], BATCH, shuffle=True, balanced=True, drop_last=True),
        "target": make_loader(sets["target"], BATCH, shuffle=True, seed=1, drop_last=True),
        "val": make_loader(sets["val"], BATCH, shuffle=False),
    }


def shard_worker(out: Path) -> None:
    """Run by ``accelerate launch``: train a small DANN with ``fit`` and write, for this process,
    every training batch's clip indices and the validation rows it gathered."""
    accelerator = make_accelerator(CONFIG)
    loaders = toy_loaders()
    seen: dict[str, list[list[int]]] = {"source": [], "target": []}

    def record(batch: dict) -> dict:  # fit's augment hook sees every source and target batch
        domain = "target" if int(batch["domain"][0]) == 1 else "source"
        seen[domain].append(batch["index"].tolist())
        return batch

    torch.manual_seed(0)
    model = DANN(CRNNEncoder(n_mels=N_MELS, channels=(8, 8), lstm_hidden=8), CLASSES, 8, 8)
    result = fit(
        model,
        loaders["source"],
        loaders["val"],
        CONFIG,
        target_loader=loaders["target"],
        accelerator=accelerator,
        augment=record,
        progress=False,
    )
    gathered = predict(result.model, accelerator.prepare(loaders["val"]), accelerator)
    report = {
        "rank": accelerator.process_index,
        "processes": accelerator.num_processes,
        "seen": seen,
        "val_index": gathered.index.tolist(),
        "train_loss": [row["train_loss"] for row in result.history],
    }
    (out / f"rank{accelerator.process_index}.json").write_text(json.dumps(report))


def epoch_batches(loader, epoch: int) -> list[list[int]]:
    """The batches of one pass of a one-process loader: the order every process cuts its shard from."""
    set_loader_epoch(loader, epoch)
    return [batch["index"].tolist() for batch in loader]


def shard(batches: list[list[int]], rank: int) -> list[list[int]]:
    """Batches rank, rank + N, ... of one pass, in whole rounds of N (the remainder is dropped)."""
    rounds = len(batches) // PROCESSES
    return batches[rank : rounds * PROCESSES : PROCESSES]


@pytest.mark.slow  # one two-process launch: 15-25 s on a busy 2-core machine
def test_each_process_trains_on_its_own_shard_and_evaluation_counts_every_clip_once(tmp_path, env):
    run(launch([__file__, "--shard-worker", str(tmp_path)]), env)
    reports = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in range(PROCESSES)]
    assert [r["rank"] for r in reports] == list(range(PROCESSES))
    assert all(r["processes"] == PROCESSES for r in reports)

    loaders = toy_loaders()
    for report in reports:
        rank, trained, targets = report["rank"], [], []
        for epoch in range(CONFIG.epochs):
            source = shard(epoch_batches(loaders["source"], epoch), rank)
            trained += source
            passes = (epoch * TARGET_PASSES_PER_EPOCH + k for k in range(len(source)))
            epoch_targets = []
            for number in passes:  # the target loader starts a new pass whenever it runs out
                epoch_targets += shard(epoch_batches(loaders["target"], number), rank)
                if len(epoch_targets) >= len(source):
                    break
            targets += epoch_targets[: len(source)]
        assert report["seen"]["source"] == trained, f"process {rank}: not its source shard"
        assert report["seen"]["target"] == targets, f"process {rank}: not its target shard"
        assert trained, f"process {rank} trained on nothing"

    for report in reports:  # every clip of the uneven validation set once, in the loader's order
        assert report["val_index"] == list(range(SIZES["val"]))
    assert reports[0]["train_loss"] == reports[1]["train_loss"]  # the history covers both shards


# ----- serlib train: one process against two ------------------------------------------------------


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("corpora")
    source = generate_corpus("iemocap", folder / "iemocap", profile="tiny", progress=False)
    target = generate_corpus("ravdess", folder / "ravdess", profile="tiny", progress=False)
    return f"iemocap:{source}", f"ravdess:{target}"


def train_arguments(out: Path, corpora: tuple[str, str], epochs: int, resume: bool = False):
    source, target = corpora
    arguments = [
        "-m", "serlib", "train", "--model", "dann", "--source", source, "--target", target,
        "--out", str(out), "--profile", "tiny", "--epochs", str(epochs), "--seed", "0",
    ]  # fmt: skip
    return arguments + (["--resume"] if resume else [])


def predicted_paths(run_dir: Path) -> dict[str, pd.Series]:
    return {
        csv.stem: pd.read_csv(csv)["path"]
        for csv in sorted((run_dir / "predictions").glob("*.csv"))
    }


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, corpora, env) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs") / "two"
    stdout = run(launch(train_arguments(out, corpora, CLI_EPOCHS)), env)
    return out, stdout


@pytest.mark.slow  # a two-process `serlib train` and one in this process: 50-60 s, busy 2 cores
def test_two_processes_evaluate_every_clip_once_and_write_one_run_folder(
    tmp_path, corpora, env, two_process_run, monkeypatch
):
    two, stdout = two_process_run
    single = tmp_path / "single"
    monkeypatch.setenv("SERLIB_HOME", env["SERLIB_HOME"])  # the feature cache the launch filled
    source, target = corpora
    train_run("dann", source, single, target=target, profile="tiny", epochs=1, progress=False)

    assert [p.relative_to(two) for p in two.rglob("metrics.json")] == [Path("metrics.json")]
    assert not list(two.rglob("*.tmp"))
    one_metrics = json.loads((single / "metrics.json").read_text())
    two_metrics = json.loads((two / "metrics.json").read_text())
    sets = [name for name, value in one_metrics.items() if isinstance(value, dict) and "n" in value]
    assert {"source_val", "source_test", "target_test"} <= set(sets)
    for name in sets:
        assert two_metrics[name]["n"] == one_metrics[name]["n"], name
        assert two_metrics[name]["speakers"] == one_metrics[name]["speakers"], name

    one_paths, two_paths = predicted_paths(single), predicted_paths(two)
    assert sorted(one_paths) == sorted(two_paths) and set(sets) <= set(two_paths)
    for name, paths in two_paths.items():
        assert paths.is_unique, f"{name}: a clip predicted twice"
        assert sorted(paths) == sorted(one_paths[name]), f"{name}: not the same clips"
        assert len(paths) == one_metrics[name]["n"]
    history = pd.read_csv(two / "history.csv")
    assert history["epoch"].tolist() == list(range(1, CLI_EPOCHS + 1))
    assert stdout.count("epoch   1 ") == 1 and stdout.count("run folder:") == 1, (
        "more than one process printed the run's progress or summary"
    )


@pytest.mark.slow  # a two-process `serlib train` killed, then resumed in two: 55-70 s, busy 2 cores
def test_two_processes_resume_exactly_after_a_kill(tmp_path, corpora, env, two_process_run):
    straight, _ = two_process_run
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        launch(train_arguments(killed, corpora, CLI_EPOCHS)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches every process
    )
    latest = killed / "checkpoint" / "latest.json"
    deadline = time.monotonic() + 300
    while not latest.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert latest.exists(), "the run never wrote a checkpoint"
    done = json.loads(latest.read_text())["epoch"] + 1
    assert done < CLI_EPOCHS, "the run finished before it could be killed"
    assert not (killed / "metrics.json").exists()

    run(launch(train_arguments(killed, corpora, CLI_EPOCHS, resume=True)), env)
    assert not list(killed.rglob("*.tmp"))
    assert json.loads((killed / "metrics.json").read_text()) == json.loads(
        (straight / "metrics.json").read_text()
    )
    without_timings = [
        pd.read_csv(run_dir / "history.csv").drop(columns="seconds")
        for run_dir in (killed, straight)
    ]
    pd.testing.assert_frame_equal(*without_timings)
    assert (killed / "model.safetensors").read_bytes() == (
        straight / "model.safetensors"
    ).read_bytes()
    for name, paths in predicted_paths(killed).items():
        assert paths.tolist() == predicted_paths(straight)[name].tolist()


if __name__ == "__main__" and sys.argv[1:2] == ["--shard-worker"]:
    shard_worker(Path(sys.argv[2]))
