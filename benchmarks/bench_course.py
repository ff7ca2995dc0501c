"""``make course`` timed with the runs trained ahead in N processes, side by side in one session.

Each setting runs ``python -m serlib.course_runner --profile workshop --jobs N`` (``--profile
tiny``: a seconds-long check of this script) on its own empty ``SERLIB_HOME`` (corpora, features
and every run made from scratch), one after the other, and reports its wall time, CPU time and
peak memory (the children's ``getrusage``) and the time of each step the runner prints. ``--avx2``
runs every setting with the AVX512 kernels disabled (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2``), as on most students' laptops. Run it on a quiet machine: the settings
are compared by their ratio, measured minutes apart.

    .venv/bin/python benchmarks/bench_course.py --jobs 1 2 --home /tmp/bench-course
    .venv/bin/python benchmarks/bench_course.py --jobs 1 2 --avx2 --home /tmp/bench-course

Results: ``benchmarks/RESULTS_course.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
"""Environment that makes torch and oneDNN use their AVX2 kernels on an AVX512 CPU."""


def cpu_model() -> str:
    """The CPU's model name and its widest vector extensions, from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), "unknown CPU")  # fmt: skip
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    wide = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in flags]
    return f"{model} ({', '.join(wide) or 'no AVX2'}), {os.cpu_count()} CPUs"


def time_course(jobs: int, home: Path, avx2: bool, profile: str = "workshop") -> dict:
    """Run the course once on an empty ``home``; its wall, CPU and peak memory, and the runner's
    own lines (one per step)."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    env = os.environ | {"SERLIB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env |= {"TRANSFORMERS_OFFLINE": "1"} | (AVX2_ONLY if avx2 else {})
    command = [sys.executable, "-m", "serlib.course_runner", "--profile", profile]
    command += ["--jobs", str(jobs), "--out", str(home / "executed")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"the course failed with --jobs {jobs}:\n{done.stderr[-3000:]}")
    timed = ("ready in", "done in", "trained in", "finished in")
    steps = [line for line in done.stdout.splitlines() if any(word in line for word in timed)]
    return {
        "jobs": jobs,
        "wall": wall,
        "user": after.ru_utime - before.ru_utime,
        "system": after.ru_stime - before.ru_stime,
        "peak_gib": after.ru_maxrss / 2**20,  # KiB on Linux; the largest single process
        "load_before": load,
        "steps": steps,
    }


def minutes(seconds: float) -> str:
    """``9 min 34 s``."""
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--home", type=Path, default=Path("/tmp/bench-course"))
    parser.add_argument("--avx2", action="store_true", help="disable the AVX512 kernels")
    parser.add_argument("--profile", default="workshop", help="tiny: a seconds-long check")
    args = parser.parse_args()
    kernels = "AVX2 kernels (AVX512 disabled)" if args.avx2 else "default kernels"
    print(f"{date.today()}, {cpu_model()}, {kernels}, {args.profile} profile")
    rows = [
        time_course(jobs, args.home / f"jobs{jobs}", args.avx2, args.profile) for jobs in args.jobs
    ]
    for row in rows:
        print(f"\n--jobs {row['jobs']} (1-min load before: {row['load_before']:.2f}):")
        print("\n".join(f"    {line.strip()}" for line in row["steps"]))
    print("\n| --jobs | wall | user + system CPU | peak memory (one process) | vs first |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        ratio = rows[0]["wall"] / row["wall"]
        print(f"| {row['jobs']} | {minutes(row['wall'])} | {row['user']:.0f} + "
              f"{row['system']:.0f} s | {row['peak_gib']:.1f} GiB | {ratio:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
