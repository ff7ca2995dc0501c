"""Epoch speed: serlib's cached log-mels against the classic load-and-transform-every-epoch pipeline.

Both pipelines feed the same clips, in the same order, as the same [B, 1, 128, 300] batches to the
same CRNN (``serlib.models.build_model("crnn", 4)``) with the same optimiser:

- classic: ``librosa.load`` + ``librosa.feature.melspectrogram`` + ``power_to_db`` inside
  ``__getitem__``, every item of every epoch (optionally with the study-style per-item
  ``librosa.effects.time_stretch``);
- cached: ``serlib.cache.load_features`` once (timed separately), then ``FeatureDataset`` over
  the in-memory float16 arrays.

It times a data-only epoch (iterate the loader, no model) and a training epoch for each, and
reports the CRNN's training throughput (clips/s), its FLOPs per clip (FlopCounterMode, plus the
BiLSTM counted analytically where this torch's FlopCounterMode sees no FLOPs in it: torch 2.13's
CPU LSTM kernel has no formula, torch 2.11's decomposes into counted matmuls), the machine's
measured float32 matmul GFLOP/s and the fraction of it reached.

    .venv/bin/python benchmarks/bench_epoch.py                 # 200 generated clips, 2 threads
    .venv/bin/python benchmarks/bench_epoch.py --write out.md  # also write a markdown table
    .venv/bin/python benchmarks/bench_epoch.py --audio-dir DIR # real .wav/.flac files instead
    .venv/bin/python benchmarks/bench_epoch.py --device cuda   # model on a GPU, data on the CPU
    .venv/bin/python benchmarks/bench_epoch.py --bf16 --channels-last  # bf16 autocast by hand

``--against OLD_TREE`` instead runs the CRNN's training step side by side with the code in another
checkout (``PYTHONPATH=OLD_TREE``), each version in its own child processes, taking turns, on the
same log-mel clips: one workshop-profile ``serlib.train.fit`` per child (batch 32, 128-frame crops,
576 training clips = 18 steps, 198 validation clips), timed per pass, with the CPU time, the kernel
time and the minor page faults of the child:

    .venv/bin/python benchmarks/bench_epoch.py --against /tmp/oldtree --threads 1 2 \
        --avx2-threads 1 --passive-threads 2   # also without AVX512 kernels; sleeping OpenMP
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from torch.utils.flop_counter import FlopCounterMode

from serlib.cache import load_features
from serlib.data import FeatureDataset, collate_features
from serlib.features import FrontendConfig, MelStats, normalise_utterance
from serlib.models import build_model, encoder_inputs

try:  # this checkout
    from serlib.epochs import set_loader_epoch
    from serlib.sampling import EpochSampler, make_loader
except ImportError:  # the older checkout that --against's child processes import instead
    from serlib.data import EpochSampler, make_loader
    from serlib.train import set_loader_epoch

N_CLASSES = 4


def speech_like_clip(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonics on a gliding F0 with syllable-rate loudness and a little noise."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None)
    wave = 0.1 * syllables * voiced + 0.005 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def make_clips(folder: Path, n: int, sample_rate: int, seed: int) -> list[str]:
    """``n`` 16-bit WAV clips of 2-5 s (RAVDESS/IEMOCAP-like lengths) in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, speech_like_clip(rng.uniform(2.0, 5.0), sample_rate, rng), sample_rate)
        paths.append(str(path))
    return paths


class ClassicDataset(Dataset):
    """The usual tutorial pipeline: decode and transform in ``__getitem__``, every epoch."""

    def __init__(
        self,
        paths: list[str],
        labels: np.ndarray,
        config: FrontendConfig,
        n_frames: int,
        stretch: bool,
    ) -> None:
        self.paths, self.labels, self.config = paths, labels, config
        self.n_frames, self.stretch = n_frames, stretch
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        cfg = self.config
        wave, _ = librosa.load(self.paths[index], sr=cfg.sample_rate)
        if self.stretch:
            wave = librosa.effects.time_stretch(wave, rate=self.rng.uniform(0.9, 1.1))
        power = librosa.feature.melspectrogram(
            y=wave,
            sr=cfg.sample_rate,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
        )
        x = normalise_utterance(librosa.power_to_db(power))
        start = self.rng.integers(0, max(x.shape[1] - self.n_frames, 0) + 1)
        window = x[:, start : start + self.n_frames]
        padded = np.zeros((cfg.n_mels, self.n_frames), dtype=np.float32)
        padded[:, : window.shape[1]] = window
        return {
            "x": torch.from_numpy(padded)[None],
            "length": window.shape[1],
            "label": int(self.labels[index]),
            "domain": 0,
            "index": index,
        }


def classic_loader(dataset: ClassicDataset, batch_size: int, seed: int, workers: int) -> DataLoader:
    sampler = EpochSampler(len(dataset), seed=seed)
    return DataLoader(
        dataset, batch_size, sampler=sampler, collate_fn=collate_features, num_workers=workers
    )


def data_epoch(loader: DataLoader, epoch: int) -> float:
    """Seconds to produce every batch of one epoch, with no model."""
    set_loader_epoch(loader, epoch)
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def train_epoch(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    loader: DataLoader,
    epoch: int,
    device: str,
    bf16: bool = False,
    channels_last: bool = False,
) -> float:
    """Seconds for one training epoch: batches, forward, loss, backward, step."""
    model.train()
    set_loader_epoch(loader, epoch)
    synchronise(device)
    start = time.perf_counter()
    for batch in loader:
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        if channels_last:
            batch["x"] = batch["x"].contiguous(memory_format=torch.channels_last)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(*encoder_inputs(batch, model.input_keys))["logits"]
        loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    synchronise(device)
    return time.perf_counter() - start


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def fresh_model(
    device: str, seed: int, channels_last: bool = False
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = build_model("crnn", N_CLASSES).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def matmul_gflops(
    device: str, size: int = 2048, repeats: int = 10, clock=time.perf_counter
) -> float:
    """Best-of-three float32 matmul rate, the practical peak this machine reaches.

    ``clock=time.thread_time`` (one CPU thread) gives the rate per CPU-second, which other jobs
    on a shared machine slow down far less than the rate per wall-clock second.
    """
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    best = 0.0
    for _ in range(3):
        synchronise(device)
        start = clock()
        for _ in range(repeats):
            a @ b
        synchronise(device)
        best = max(best, 2 * size**3 * repeats / (clock() - start) / 1e9)
    return best


def lstm_flops(lstm: torch.nn.LSTM, steps: int) -> float:
    """Forward FLOPs of an LSTM: 4 gates x hidden x (input + hidden) multiply-adds per step."""
    directions = 2 if lstm.bidirectional else 1
    per_step = 2 * 4 * lstm.hidden_size * (lstm.input_size + lstm.hidden_size)
    return float(per_step * steps * directions * lstm.num_layers)


def crnn_training_flops(n_frames: int, n_mels: int) -> dict[str, float]:
    """FLOPs per clip of one training step (forward + backward) of the CRNN."""
    model, _ = fresh_model("cpu", seed=0)
    batch = 4
    x = torch.randn(batch, 1, n_mels, n_frames)
    mask = torch.ones(batch, n_frames, dtype=torch.bool)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x, mask)["logits"].sum().backward()
    counted = counter.get_total_flops() / batch
    counts = counter.get_flop_counts()
    lstm = 0.0
    for name, module in model.named_modules():
        counted_here = sum(counts.get(f"{type(model).__name__}.{name}", {}).values())
        if isinstance(module, torch.nn.LSTM) and not counted_here:  # no formula in this torch
            steps = n_frames // model.encoder.downsample
            lstm += 3 * lstm_flops(module, steps)  # backward ~ 2x forward
    return {"counted": counted, "lstm_analytic": lstm, "total": counted + lstm}


def machine_line(device: str) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {torch.get_num_threads()} torch threads, {platform.system()}, torch {torch.__version__}"
    if device.startswith("cuda"):
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


# ----- the training step side by side with another checkout ------------------------------------

WORKSHOP = {"train": 576, "val": 198, "frames": 128, "batch": 32}
"""A workshop-profile CRNN epoch: the synthetic IEMOCAP-like source-train and validation sizes."""


class TimedPass:
    """A loader that records how long each full pass over it took (the consumer's work included)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader, self.seconds = loader, []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        start = time.perf_counter()
        yield from self.loader
        self.seconds.append(time.perf_counter() - start)


def clip_batches(x: torch.Tensor, labels: torch.Tensor, shuffle: bool) -> TimedPass:
    """Batches of fixed-length log-mels with the keys every serlib version's ``fit`` reads."""
    items = [
        {"x": x[i], "mask": torch.ones(x.shape[-1], dtype=torch.bool), "label": labels[i],
         "domain": torch.tensor(0), "index": torch.tensor(i)}
        for i in range(len(x))
    ]  # fmt: skip
    loader = DataLoader(
        items, WORKSHOP["batch"], shuffle=shuffle, drop_last=shuffle, collate_fn=default_collate
    )
    return TimedPass(loader)


def step_child(clips: Path, epochs: int, threads: int) -> dict:
    """In a child process whose PYTHONPATH picks the code version: one workshop-profile ``fit``."""
    from serlib.train import fit

    try:
        from serlib.config import TrainConfig
    except ImportError:  # the code before TrainConfig moved to serlib.config
        from serlib.train import TrainConfig
    torch.set_num_threads(threads)
    saved = np.load(clips)
    n = WORKSHOP["train"]
    x, labels = torch.from_numpy(saved["x"]), torch.from_numpy(saved["labels"])
    train = clip_batches(x[:n], labels[:n], shuffle=True)
    val = clip_batches(x[n:], labels[n:], shuffle=False)
    config = TrainConfig(epochs=epochs, batch_size=WORKSHOP["batch"], cpu=True, patience=epochs)
    torch.manual_seed(0)
    model = build_model("crnn", N_CLASSES)
    before = resource.getrusage(resource.RUSAGE_SELF)
    fit(model, train, val, config, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    steps = epochs * len(train)
    return {
        "serlib": str(Path(sys.modules["serlib"].__file__).parent),
        "train_s": train.seconds,
        "val_s": val.seconds,
        "user_s_per_step": (after.ru_utime - before.ru_utime) / steps,
        "sys_s_per_step": (after.ru_stime - before.ru_stime) / steps,
        "faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
    }


def save_workshop_clips(folder: Path, seed: int) -> Path:
    """Speech-like clips as the CRNN sees them: log-mels, globally standardised, 128-frame crops."""
    n = WORKSHOP["train"] + WORKSHOP["val"]
    paths = make_clips(folder / "audio", n, 16000, seed)
    arrays = load_features(paths, FrontendConfig(), root=folder / "cache", progress=False).arrays
    stats = MelStats.fit(arrays)
    data = FeatureDataset(
        arrays, np.arange(n) % N_CLASSES, n_frames=WORKSHOP["frames"], stats=stats
    )
    x = np.stack([data[i]["x"].numpy() for i in range(n)])
    path = folder / "workshop_clips.npz"
    np.savez(path, x=x, labels=(np.arange(n) % N_CLASSES).astype(np.int64))
    return path


def run_child(tree: Path, clips: Path, epochs: int, threads: int, extra_env: dict) -> dict:
    """``step_child`` in a fresh process with ``tree`` first on the import path."""
    env = os.environ | extra_env | {"PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--child", str(clips), "--epochs", str(epochs)]
    command += ["--threads", str(threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise_child_runs(runs: list[dict]) -> dict:
    """Medians over a version's children of the steady epochs (the first epoch warms up)."""
    train = statistics.median(s for run in runs for s in run["train_s"][1:])
    val = statistics.median(s for run in runs for s in run["val_s"][1:])
    steps = WORKSHOP["train"] // WORKSHOP["batch"]
    return {
        "clips_per_s": steps * WORKSHOP["batch"] / train,
        "epoch_s": train + val,
        "train_s": train,
        "val_s": val,
        **{key: statistics.median(run[key] for run in runs) for key in
           ("user_s_per_step", "sys_s_per_step", "faults_per_step")},
    }  # fmt: skip


def compare_versions(args: argparse.Namespace) -> None:
    """The training step of ``--against``'s code and of this checkout, taking turns, same clips."""
    trees = {"before": args.against.resolve(), "now": Path(__file__).resolve().parents[1]}
    isa = {
        "": {},
        "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
        "passive": {"OMP_WAIT_POLICY": "PASSIVE"},  # idle OpenMP threads sleep, not spin
    }
    settings = [(t, "") for t in args.threads] + [(t, "avx2") for t in args.avx2_threads]
    settings += [(t, "passive") for t in args.passive_threads]
    started, load_before = datetime.datetime.now(), os.getloadavg()
    thread_counts = sorted({threads for threads, _ in settings})
    peaks = {threads: [] for threads in thread_counts}  # wall-clock peak with as many threads
    cpu_peaks = []  # per CPU-second, one thread

    def measure_peaks() -> None:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            peaks[threads].append(matmul_gflops("cpu"))
        torch.set_num_threads(1)
        cpu_peaks.append(matmul_gflops("cpu", clock=time.thread_time))

    measure_peaks()
    with tempfile.TemporaryDirectory(prefix="bench_step_") as scratch:
        clips = save_workshop_clips(Path(scratch), args.seed)
        results = {}
        for threads, name in settings:
            runs = {version: [] for version in trees}
            for _ in range(args.repeats):  # taking turns: a busy neighbour slows both alike
                for version, tree in trees.items():
                    child = run_child(tree, clips, args.epochs, threads, isa[name])
                    runs[version].append(child)
                    print(f"{threads} thread(s) {name or 'default ISA'} {version}: "
                          f"train {child['train_s']} s", flush=True)  # fmt: skip
            results[(threads, name)] = {v: summarise_child_runs(r) for v, r in runs.items()}
    measure_peaks()
    flops = crnn_training_flops(WORKSHOP["frames"], FrontendConfig().n_mels)["total"]
    lines = step_table(results, flops, {t: min(p) for t, p in peaks.items()}, max(cpu_peaks))
    measured = "; ".join(
        f"{t} thread(s) {' / '.join(f'{p:.0f}' for p in peaks[t])}" for t in thread_counts
    )
    lines += ["", f"- started {started:%Y-%m-%d %H:%M}, 1/5/15-min load at start {load_before}, "
              f"at end {os.getloadavg()}", f"- fp32 matmul peak (2048^3, best of 3, before / after "
              f"the runs; the lower is used): {measured} GFLOP/s; per CPU-second (1 thread) "
              f"{' / '.join(f'{p:.0f}' for p in cpu_peaks)} (the higher is used)",
              f"- CRNN training FLOPs per 128-frame clip: {flops / 1e9:.2f} GFLOP",
              f"- command: `benchmarks/bench_epoch.py --against {args.against} --threads "
              f"{' '.join(map(str, args.threads))} --avx2-threads "
              f"{' '.join(map(str, args.avx2_threads))} --passive-threads "
              f"{' '.join(map(str, args.passive_threads))} --repeats {args.repeats} "
              f"--epochs {args.epochs}`"]  # fmt: skip
    print("\n".join(lines))
    if args.write:
        args.write.write_text("\n".join(lines) + "\n")


def step_table(results: dict, flops: float, peaks: dict[int, float], cpu_peak: float) -> list[str]:
    """One markdown row per (setting, version): throughput, epoch, CPU and kernel time, faults.

    Two fractions of the matmul peak: clips/s against the wall-clock peak with as many threads,
    and the FLOPs per CPU-second of the training steps (user + kernel time) against the peak per
    CPU-second.
    """
    lines = [
        "| torch threads, ISA | code | training clips/s | x before | % of matmul peak (wall / "
        "CPU-s) | workshop epoch (train + val) | CPU user / kernel s per step | minor faults "
        "per step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (threads, name), versions in results.items():
        base = versions["before"]["clips_per_s"]
        for version, r in versions.items():
            share = 100 * flops * r["clips_per_s"] / 1e9 / peaks[threads]
            cpu_s = r["user_s_per_step"] + r["sys_s_per_step"]
            cpu_share = 100 * flops * WORKSHOP["batch"] / cpu_s / 1e9 / cpu_peak
            lines.append(
                f"| {threads}, {name or 'default'} | {version} | {r['clips_per_s']:.1f} | "
                f"{r['clips_per_s'] / base:.2f} | {share:.0f}% / {cpu_share:.0f}% | "
                f"{r['epoch_s']:.1f} s ({r['train_s']:.1f} + {r['val_s']:.1f}) | "
                f"{r['user_s_per_step']:.2f} / {r['sys_s_per_step']:.2f} | "
                f"{r['faults_per_step']:,.0f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--audio-dir", type=Path, help="use real .wav/.flac files from here")
    parser.add_argument("--sample-rate", type=int, default=16000, help="of generated clips")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-frames", type=int, default=300)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--repeats", type=int, default=2, help="training epochs per pipeline")
    parser.add_argument("--classic-workers", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true", help="NHWC convolutions")
    parser.add_argument("--write", type=Path, help="also write the results as markdown here")
    parser.add_argument("--note", default="", help="a title for the markdown table")
    parser.add_argument("--against", type=Path, help="compare the step with this checkout's code")
    parser.add_argument("--avx2-threads", type=int, nargs="*", default=[],
                        help="with --against: also these thread counts without AVX512 kernels")  # fmt: skip
    parser.add_argument("--passive-threads", type=int, nargs="*", default=[],
                        help="with --against: also these thread counts with OMP_WAIT_POLICY=PASSIVE")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=2, help="with --against: fit epochs")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(step_child(args.child, args.epochs, args.threads[0])))
        return
    if args.against:
        compare_versions(args)
        return
    args.threads = args.threads[0]
    torch.set_num_threads(args.threads)
    config = FrontendConfig()
    rows: list[tuple[str, str]] = []
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench_epoch_") as scratch:
        scratch = Path(scratch)
        if args.audio_dir:
            found = sorted(
                p for p in args.audio_dir.rglob("*") if p.suffix.lower() in (".wav", ".flac")
            )
            paths = [str(p) for p in found[: args.clips]]
        else:
            paths = make_clips(scratch / "audio", args.clips, args.sample_rate, args.seed)
        labels = np.arange(len(paths)) % N_CLASSES
        n = len(paths)
        print(f"{n} clips, batch {args.batch_size}, {args.n_frames} frames, device {args.device}")

        start = time.perf_counter()
        cached = load_features(paths, config, root=scratch / "cache", progress=False)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        cached = load_features(paths, config, root=scratch / "cache", progress=False)
        reload_s = time.perf_counter() - start
        stats = MelStats.fit(cached.arrays)
        dataset = FeatureDataset(
            cached.arrays, labels, n_frames=args.n_frames, stats=stats, seed=args.seed
        )
        fast = make_loader(dataset, args.batch_size, shuffle=True, seed=args.seed)
        classic = classic_loader(
            ClassicDataset(paths, labels, config, args.n_frames, stretch=False),
            args.batch_size,
            args.seed,
            args.classic_workers,
        )
        stretched = classic_loader(
            ClassicDataset(paths, labels, config, args.n_frames, stretch=True),
            args.batch_size,
            args.seed,
            args.classic_workers,
        )
        data_epoch(classic, 0)  # warm up librosa's caches and numba before timing
        classic_data = min(data_epoch(classic, e) for e in range(1, 3))
        stretch_data = data_epoch(stretched, 1)
        cached_data = min(data_epoch(fast, e) for e in range(3))

        model, optimiser = fresh_model(args.device, args.seed, args.channels_last)
        options = {"bf16": args.bf16, "channels_last": args.channels_last}
        train_epoch(model, optimiser, fast, 0, args.device, **options)  # warm-up epoch
        times = {"cached": [], "classic": []}
        for repeat in range(args.repeats):  # interleaved, so a busy neighbour hurts both alike
            for name, loader in (("classic", classic), ("cached", fast)):
                seconds = train_epoch(model, optimiser, loader, 1 + repeat, args.device, **options)
                times[name].append(seconds)
        classic_train, cached_train = min(times["classic"]), min(times["cached"])

    flops = crnn_training_flops(args.n_frames, config.n_mels)
    gflops = matmul_gflops(args.device)
    clips_per_s = n / cached_train
    achieved = flops["total"] * clips_per_s / 1e9
    model_only = cached_train - cached_data

    rows += [
        ("clips / batch size / frames", f"{n} / {args.batch_size} / {args.n_frames}"),
        (
            "cache build, once (decode + log-mel + write)",
            f"{build_s:.2f} s ({n / build_s:.0f} clips/s)",
        ),
        ("cache reload (all clips, next run)", f"{reload_s:.3f} s"),
        ("data-only epoch, classic", f"{classic_data:.2f} s"),
        ("data-only epoch, classic + per-item time-stretch", f"{stretch_data:.2f} s"),
        ("data-only epoch, cached", f"{cached_data:.3f} s"),
        ("**data-only speed-up (classic / cached)**", f"**{classic_data / cached_data:.0f}x**"),
        ("data-only speed-up with time-stretch", f"{stretch_data / cached_data:.0f}x"),
        (f"training epoch, classic (best of {args.repeats})", f"{classic_train:.2f} s"),
        (f"training epoch, cached (best of {args.repeats})", f"{cached_train:.2f} s"),
        (
            "**training-epoch speed-up (classic / cached)**",
            f"**{classic_train / cached_train:.2f}x**",
        ),
        (
            "training-epoch speed-up if classic had time-stretch (estimated)",
            f"{(classic_train - classic_data + stretch_data) / cached_train:.2f}x",
        ),
        ("CRNN training throughput, cached", f"{clips_per_s:.1f} clips/s"),
        ("CRNN training FLOPs per clip", f"{flops['total'] / 1e9:.2f} GFLOP"),
        ("  counted by FlopCounterMode", f"{flops['counted'] / 1e9:.2f} GFLOP"),
        ("  BiLSTM added analytically (fwd + 2x bwd)", f"{flops['lstm_analytic'] / 1e9:.2f} GFLOP"),
        ("measured float32 matmul (2048^3, best of 3)", f"{gflops:.0f} GFLOP/s"),
        (
            "CRNN achieved",
            f"{achieved:.1f} GFLOP/s = {100 * achieved / gflops:.0f}% of matmul peak",
        ),
        ("model share of the cached epoch", f"{100 * model_only / cached_train:.0f}%"),
        ("1-min load average at start / end", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.replace('*', ''):<{width}}  {value.replace('*', '')}")
    if args.write:
        write_results(args, rows, machine_line(args.device))


def write_results(args: argparse.Namespace, rows: list[tuple[str, str]], machine: str) -> None:
    path = args.write
    flags = []
    for name, value in vars(args).items():
        if name in ("write", "note") or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {value}")
    command = "benchmarks/bench_epoch.py " + " ".join(flags)
    lines = [
        f"## {args.note or 'run'}",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {machine}",
        f"- command: `{command}`",
        "",
        "| measure | value |",
        "| --- | --- |",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
    ]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
