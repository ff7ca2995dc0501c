"""Fine-tuning throughput and peak GPU memory of a wav2vec2-base-sized model.

    python benchmarks/bench_w2v2_gpu.py --out benchmarks/RESULTS_w2v2.md

What one step is: the serlib ``w2v2`` model (``SpeechEncoder`` on a wav2vec2-base-sized config,
CNN feature encoder frozen as in training, emotion head 768 -> 256 -> 4), forward, cross-entropy,
backward, gradient clipping at 1.0 and an AdamW step, on random 16 kHz audio. The weights are
random: speed and memory do not depend on their values, and nothing is downloaded.

It measures, each after warm-up steps:

* fp32 and bf16 autocast, batch 4 and 16, 4-s clips: clips per second and
  ``torch.cuda.max_memory_allocated``;
* the Colab T4 check: batch 4 of 6-s clips in fp16 autocast (a T4 has no bf16) with gradient
  checkpointing and a GradScaler, whose peak must stay under a T4's 15 GiB usable memory; the
  same without checkpointing for comparison.

``--smoke`` runs every code path on the CPU with the tiny config in seconds, to test the script.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serlib.config import profile_settings  # noqa: E402
from serlib.models import build_model  # noqa: E402
from serlib.models.wav2vec import (  # noqa: E402
    SAMPLE_RATE,
    SpeechEncoder,
    enable_gradient_checkpointing,
    tiny_config,
)
from serlib.train import parameter_groups  # noqa: E402

T4_USABLE_GIB = 15.0
"""A Colab T4 has 16 GB, of which about 15 GiB are free for tensors."""

NUM_CLASSES = 4


@dataclass(frozen=True)
class Case:
    """One benchmark setting."""

    name: str
    precision: str  # fp32, bf16 or fp16
    batch: int
    seconds: float
    checkpointing: bool = False


MAIN_CASES = [
    Case("fp32 b4", "fp32", 4, 4.0),
    Case("bf16 b4", "bf16", 4, 4.0),
    Case("fp32 b16", "fp32", 16, 4.0),
    Case("bf16 b16", "bf16", 16, 4.0),
]
T4_CASES = [
    Case("T4-like: fp16 + checkpointing b4 6s", "fp16", 4, 6.0, checkpointing=True),
    Case("fp16 without checkpointing b4 6s", "fp16", 4, 6.0),
    Case("fp16 + checkpointing b8 6s", "fp16", 8, 6.0, checkpointing=True),
]


def base_sized_config():
    """wav2vec2-base's architecture (transformers' defaults are exactly it): 95 M parameters."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config()


def build(config, checkpointing: bool, device: torch.device, seed: int) -> torch.nn.Module:
    """The serlib w2v2 model on random weights, as ``serlib train --model w2v2`` builds it."""
    from transformers import AutoModel

    torch.manual_seed(seed)
    backbone = AutoModel.from_config(config)
    if checkpointing:
        enable_gradient_checkpointing(backbone)
    encoder = SpeechEncoder(backbone)  # CNN feature encoder frozen, as in training
    return build_model("w2v2", NUM_CLASSES, encoder=encoder).to(device).train()


def train_step(model, optimizer, scaler, waves, mask, labels, dtype) -> None:
    """One fine-tuning step, mixed precision as the training loop does it."""
    with torch.autocast(waves.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        logits = model(waves, mask)["logits"].float()
        loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()


def run_case(case: Case, config, device: torch.device, warmup: int, steps: int) -> dict:
    """Time ``steps`` training steps after ``warmup`` ones; return throughput and peak memory."""
    model = build(config, case.checkpointing, device, seed=0)
    settings = profile_settings(
        "full", "w2v2"
    ).train  # encoder lr 2e-5, heads 3e-4, weight decay 0.01
    optimizer = torch.optim.AdamW(
        parameter_groups(model, settings), weight_decay=settings.weight_decay
    )
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[case.precision]
    scaler = torch.amp.GradScaler(device.type, enabled=case.precision == "fp16")
    generator = torch.Generator(device=device).manual_seed(0)
    samples = int(case.seconds * SAMPLE_RATE)
    waves = torch.randn(case.batch, samples, device=device, generator=generator)
    mask = torch.ones_like(waves, dtype=torch.bool)
    labels = torch.randint(0, NUM_CLASSES, (case.batch,), device=device, generator=generator)

    def step() -> None:
        train_step(model, optimizer, scaler, waves, mask, labels, dtype)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    elapsed = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    result = {
        "case": case,
        "clips_per_s": case.batch * steps / elapsed,
        "step_ms": 1000 * elapsed / steps,
        "peak_gib": peak / 2**30,
    }
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict:
    """What the numbers were measured on."""
    import transformers

    info = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["device"] = f"{properties.name}, {properties.total_memory / 2**30:.0f} GiB"
        info["cuda"] = torch.version.cuda
        info["tf32 matmul"] = str(torch.backends.cuda.matmul.allow_tf32)
    else:
        info["device"] = f"CPU ({platform.processor() or platform.machine()})"
    return info


def markdown(
    results: list[dict], info: dict, parameters: int, warmup: int, steps: int, smoke: bool
) -> str:
    """The results file: setting, numbers, and what the T4 check concludes."""
    lines = [
        "# Wav2Vec2 fine-tuning: throughput and peak GPU memory",
        "",
        "Measured by `python benchmarks/bench_w2v2_gpu.py --out benchmarks/RESULTS_w2v2.md`.",
        "",
        "- " + "\n- ".join(f"{key}: {value}" for key, value in info.items()),
        f"- model: serlib `w2v2` (SpeechEncoder + head D -> 256 -> {NUM_CLASSES}) on a "
        f"{'TINY (smoke test, not a measurement)' if smoke else 'wav2vec2-base-sized'} config "
        f"with random weights, {parameters / 1e6:.1f} M parameters, CNN feature encoder frozen",
        "- step: forward, cross-entropy, backward, clip 1.0, AdamW (encoder lr 2e-5, heads 3e-4); "
        f"{warmup} warm-up steps, then {steps} timed steps; random 16 kHz audio, no padding",
        "- peak memory: `torch.cuda.max_memory_allocated` (weights, AdamW state, activations)",
        "",
        "| setting | precision | batch | clip | checkpointing | clips/s | ms/step | peak GiB |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for result in results:
        case = result["case"]
        lines.append(
            f"| {case.name} | {case.precision} | {case.batch} | {case.seconds:.0f} s | "
            f"{'yes' if case.checkpointing else 'no'} | {result['clips_per_s']:.1f} | "
            f"{result['step_ms']:.0f} | {result['peak_gib']:.2f} |"
        )
    t4 = [r for r in results if r["case"].name.startswith("T4-like")]
    if t4 and not smoke:
        peak = t4[0]["peak_gib"]
        verdict = "fits" if peak < T4_USABLE_GIB else "does NOT fit"
        lines += [
            "",
            f"T4 check: batch 4 of 6-s clips in fp16 with gradient checkpointing peaks at "
            f"{peak:.2f} GiB and {verdict} a 16 GB T4 (about {T4_USABLE_GIB:.0f} GiB usable). "
            "Peak allocated memory does not depend on the GPU model, but a T4 is several times "
            "slower than the GPU above, so only the memory column carries over.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the markdown results here")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny config on the CPU, to test")
    args = parser.parse_args(argv)

    if args.smoke:
        device, config = torch.device("cpu"), tiny_config()
        cases = [  # CPU autocast: bf16 stands in for fp16
            Case(
                f"smoke {c.name}",
                "bf16" if c.precision == "fp16" else c.precision,
                2,
                1.0,
                c.checkpointing,
            )
            for c in MAIN_CASES[:2] + T4_CASES[:1]
        ]
        args.warmup, args.steps = 1, 1
    elif not torch.cuda.is_available():
        print("no CUDA GPU: the wav2vec2 fine-tuning figures stay unmeasured", file=sys.stderr)
        return 2
    else:
        device, config = torch.device("cuda"), base_sized_config()
        cases = MAIN_CASES + T4_CASES
    parameters = sum(p.numel() for p in build(config, False, torch.device("cpu"), 0).parameters())
    info = environment(device)
    print(info, flush=True)
    results = []
    for case in cases:
        result = run_case(case, config, device, args.warmup, args.steps)
        results.append(result)
        print(
            f"{case.name:40s} {result['clips_per_s']:8.1f} clips/s "
            f"{result['step_ms']:8.0f} ms/step {result['peak_gib']:6.2f} GiB",
            flush=True,
        )
    text = markdown(results, info, parameters, args.warmup, args.steps, args.smoke)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
