"""Where a run trains and in which number format: the HF Accelerate set-up, in one place.

Hardware is Accelerate's job, not serlib's: ``Accelerator(cpu=..., mixed_precision=...)`` and then
``prepare``, ``backward``, ``autocast`` and ``gather_for_metrics`` in the training loop. The same
loop runs on a laptop CPU, on one GPU in bf16/fp16, and on several GPUs under ``accelerate launch``.
This module only turns a run's three hardware settings into that ``Accelerator``.
"""

from __future__ import annotations

import os
from typing import Protocol

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from serlib.errors import UserError


class HardwareSettings(Protocol):
    """The settings of a ``serlib.config.TrainConfig`` that decide the hardware set-up."""

    cpu: bool  # True forces the CPU even where a GPU is visible
    mixed_precision: str  # one of MIXED_PRECISION
    grad_accumulation: int  # optimizer step every N batches


def resolve_mixed_precision(choice: str, cpu: bool) -> str | None:
    """Turn ``auto`` into a concrete choice; None lets ``accelerate launch`` settings decide."""
    if choice != "auto":
        return choice
    if os.environ.get("ACCELERATE_MIXED_PRECISION"):
        return None
    if cpu or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def check_precision_device(config: HardwareSettings) -> None:
    """Refuse fp16 where training would run on the CPU, before any feature is computed.

    On a CPU, bf16 autocast is real (faster CRNN training on CPUs with AVX512-BF16 or AMX, see
    benchmarks/RESULTS_epoch.md); fp16 is not: Accelerate would quietly train in float32.
    """
    on_cpu = config.cpu or not torch.cuda.is_available()
    if on_cpu and config.mixed_precision == "fp16":
        raise UserError("fp16 mixed precision needs a GPU; on the CPU use bf16 or no")


def forget_other_accelerate_state(config: HardwareSettings) -> None:
    """Let one process train runs with other precisions or devices (a notebook: fp32, then bf16).

    Accelerate keeps one state per process: it refuses a second Accelerator with another precision
    or with ``cpu=True`` after a GPU one ("restart your runtime"), and quietly keeps the CPU for a
    GPU run that follows a ``cpu=True`` one. In a single process nothing else depends on that state
    between two runs, so it is cleared; a distributed launch keeps its own.
    """
    shared = AcceleratorState._shared_state
    if not shared or shared.get("num_processes", 1) > 1 or int(os.environ.get("WORLD_SIZE", 1)) > 1:
        return
    wanted = resolve_mixed_precision(config.mixed_precision, config.cpu)
    other_precision = wanted is not None and wanted != shared.get("_mixed_precision")
    wants_cpu = config.cpu or not torch.cuda.is_available()
    has_cpu = getattr(shared.get("device"), "type", "cpu") == "cpu"
    if other_precision or wants_cpu != has_cpu:
        AcceleratorState._reset_state(reset_partial_state=True)


def make_accelerator(config: HardwareSettings) -> Accelerator:
    """The Accelerator for a config: CPU or GPU(s), with the asked-for mixed precision."""
    check_precision_device(config)
    forget_other_accelerate_state(config)
    return Accelerator(
        cpu=config.cpu,
        mixed_precision=resolve_mixed_precision(config.mixed_precision, config.cpu),
        gradient_accumulation_steps=config.grad_accumulation,
    )
