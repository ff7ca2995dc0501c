"""Where a run trains and in which number format: the HF Accelerate set-up, in one place.

Hardware is Accelerate's job, not serlib's: ``Accelerator(cpu=..., mixed_precision=...)`` and then
``prepare``, ``backward``, ``autocast`` and ``gather_for_metrics`` in the training loop. The same
loop runs on a laptop CPU, on one GPU in bf16/fp16, and on several GPUs under ``accelerate launch``.
This module only turns a run's three hardware settings into that ``Accelerator``, and tunes the two
process-wide things a CPU run depends on: the C allocator (``reusing_freed_memory``) and whether
bf16 is worth asking for (``check_precision_device``).

Several processes: ``accelerate launch --multi_gpu --num_processes N -m serlib train ...`` starts N
processes (torchrun underneath), one per GPU; on a machine without a GPU the same command trains on
N CPU processes, which serlib joins with the gloo backend (``launched_on_cpus``). Note that
``accelerate launch --cpu`` starts a single process whatever ``--num_processes`` says.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), as oneDNN sees it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision_device(config: HardwareSettings) -> None:
    """Refuse fp16 where training would run on the CPU, before any feature is computed.

    On a CPU, bf16 autocast is real where the CPU has bf16 instructions (AVX512-BF16 or AMX, see
    benchmarks/RESULTS_epoch.md); elsewhere (AVX2 laptops) it is emulated and many times slower
    than float32, which is worth a warning. fp16 is not real on a CPU: Accelerate would quietly
    train in float32.
    """
    on_cpu = config.cpu or not torch.cuda.is_available()
    if on_cpu and config.mixed_precision == "fp16":
        raise UserError("fp16 mixed precision needs a GPU; on the CPU use bf16 or no")
    if on_cpu and config.mixed_precision == "bf16" and not cpu_has_bf16():
        warnings.warn(
            "this CPU has no bf16 instructions (AVX512-BF16 or AMX): bf16 training is emulated and "
            "much slower than float32; use mixed_precision='no'",
            stacklevel=2,
        )


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
"""glibc's ``mallopt`` parameter numbers (from ``malloc.h``)."""

GLIBC_DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_MAX: 65536}
"""The values glibc starts with, put back when training ends."""

KEEP_FREED_BYTES = 1 << 30
"""Free memory the heap may keep at its top during training before it gives any back (1 GiB)."""


def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc on Linux (its allocator is the one tuned here), else None."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextmanager
def reusing_freed_memory(device: torch.device) -> Iterator[bool]:
    """While training on a CPU, let every step reuse the memory the previous step freed.

    A CRNN training step allocates and frees dozens of activation buffers of 10-70 MB. glibc's
    default hands every block over 32 MB straight back to the kernel when it is freed, so the next
    step faults the same memory in again, page by page and zero-filled: in a workshop CRNN run on 2
    cores over a third of the CPU time went to the kernel (benchmarks/RESULTS_epoch.md). Inside
    this block (``fit``: one epoch's training steps; ``predict``: one pass over a loader) large
    blocks come from the heap (``M_MMAP_MAX = 0``), which keeps freed memory for the next step. On exit glibc's defaults come
    back and the pages of the freed blocks go back to the system (``give_back_freed_memory``): the
    heap fragments as it serves blocks of many sizes, and must not hold on to gigabytes between
    epochs. Nothing computed changes. Yields whether it applied: on a ``device`` that is the CPU,
    on Linux with glibc.
    """
    libc = glibc()
    if libc is None or device.type != "cpu":
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
    try:
        yield True
    finally:
        for parameter, value in GLIBC_DEFAULTS.items():
            libc.mallopt(parameter, value)
        give_back_freed_memory()


def give_back_freed_memory() -> None:
    """Return the pages of every freed block to the system (glibc's ``malloc_trim``).

    The heap keeps its addresses, so the next training step reuses them after one page fault per
    page, and the process's memory stays close to what it really uses.
    """
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


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


def launched_on_cpus() -> bool:
    """Whether this is one of several processes (``accelerate launch``, ``torchrun``) on a machine
    without a GPU. Accelerate joins such processes into one run (gloo backend) only when told
    ``cpu=True``; otherwise each process would silently train alone on all the data."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def make_accelerator(config: HardwareSettings) -> Accelerator:
    """The Accelerator for a config: CPU or GPU(s), with the asked-for mixed precision."""
    check_precision_device(config)
    forget_other_accelerate_state(config)
    return Accelerator(
        cpu=config.cpu or launched_on_cpus(),
        mixed_precision=resolve_mixed_precision(config.mixed_precision, config.cpu),
        gradient_accumulation_steps=config.grad_accumulation,
    )
