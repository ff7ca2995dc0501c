"""The training loop on each device and precision: does it run, and how fast is an epoch?

Trains the study's CRNN and DANN-CRNN with ``serlib.train.fit`` (HF Accelerate underneath) on
random log-mel batches [B, 1, 128, T] whose class shows in a few mel bands, so the loop has
something to learn and the validation UA says whether mixed precision still learns. Reports per
setting: seconds per epoch, training clips per second, the last training loss and validation UA.

    .venv/bin/python benchmarks/bench_train_loop.py                      # CPU only
    python benchmarks/bench_train_loop.py --devices cuda --precisions no bf16 fp16
    python benchmarks/bench_train_loop.py --write                        # RESULTS_train_loop.md

No audio, librosa or feature cache is involved: only serlib.models, serlib.train and their
dependencies (torch, accelerate, safetensors, tqdm, numpy), so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

import torch
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader, Dataset

from serlib.config import TrainConfig
from serlib.models import build_model
from serlib.train import fit

CLASSES = 4


class RandomMels(Dataset):
    """Normalised random log-mels; class c raises mel bands 20c..20c+9 by ``strength``."""

    def __init__(self, n: int, frames: int, seed: int, domain_shift: float = 0.0, strength=0.7):
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % CLASSES
        self.x = torch.randn(n, 1, 128, frames, generator=generator) + domain_shift
        for c in range(CLASSES):
            self.x[self.labels == c, :, 20 * c : 20 * c + 10] += strength

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {
            "x": self.x[i],
            "mask": torch.ones(self.x.shape[-1], dtype=torch.bool),
            "label": self.labels[i],
            "domain": torch.tensor(0),
            "index": torch.tensor(i),
        }


def run_setting(model_kind: str, device: str, precision: str, args) -> dict:
    """Train one (model, device, precision) and return its row of the results table."""
    # Accelerate keeps one process-wide state and refuses a second precision; a benchmark that
    # compares precisions in one process must reset it (a training script never needs this).
    AcceleratorState._reset_state(reset_partial_state=True)
    torch.manual_seed(0)
    train = DataLoader(RandomMels(args.clips, args.frames, 0), args.batch_size, shuffle=True)
    val = DataLoader(RandomMels(args.clips // 4, args.frames, 1), args.batch_size)
    target = DataLoader(
        RandomMels(args.clips // 2, args.frames, 2, domain_shift=0.3), args.batch_size, shuffle=True
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        cpu=device == "cpu",
        mixed_precision=precision,
        patience=args.epochs,
    )
    result = fit(
        build_model(model_kind, CLASSES),
        train,
        val,
        config,
        target_loader=target if model_kind == "dann" else None,
        progress=False,
    )
    history = result.history
    steady = history[1:] if len(history) > 1 else history  # epoch 1 includes warm-up
    seconds = sum(row["seconds"] for row in steady) / len(steady)
    return {
        "model": model_kind,
        "device": device,
        "precision": precision,
        "s/epoch": seconds,
        "clips/s": args.clips / seconds,
        "last loss": history[-1]["train_loss"],
        "val UA": max(row["val_ua"] for row in history),
    }


def machine() -> str:
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        return f"{cpu}; GPU {torch.cuda.get_device_name(0)}"
    return f"{cpu}; no GPU"


def format_table(rows: list[dict]) -> str:
    header = "| model | device | precision | s/epoch | clips/s | last loss | val UA |"
    lines = [header, "|" + "---|" * 7]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['device']} | {r['precision']} | {r['s/epoch']:.2f} | "
            f"{r['clips/s']:.0f} | {r['last loss']:.3f} | {r['val UA']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu"], choices=["cpu", "cuda"])
    parser.add_argument("--precisions", nargs="+", default=["no"], choices=["no", "bf16", "fp16"])
    parser.add_argument("--models", nargs="+", default=["crnn", "dann"], choices=["crnn", "dann"])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--write", action="store_true", help="write RESULTS_train_loop.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("no CUDA device visible")
        for precision in args.precisions if device == "cuda" else ["no"]:
            for model_kind in args.models:
                rows.append(run_setting(model_kind, device, precision, args))
                print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    text = (
        f"# Training loop: CRNN / DANN-CRNN per device and precision\n\n"
        f"{datetime.date.today()}, {machine()}, torch {torch.__version__}; {args.clips} clips of "
        f"[1, 128, {args.frames}], batch {args.batch_size}, {args.epochs} epochs (s/epoch "
        f"averages epochs 2+).\n\n{format_table(rows)}\n"
    )
    print(text)
    if args.write:
        Path(__file__).with_name("RESULTS_train_loop.md").write_text(text)


if __name__ == "__main__":
    main()
