"""How fast is the synthetic corpus generated, and does its memory stay flat as it grows?

Issue 3 asks for the workshop profile in <= 30 s and the full profile in <= 3 min on 2 cores, streamed
to disk. Each (layout, profile) runs in a fresh Python process (so the peak memory is its own) that
generates the corpus into a temporary folder; the parent prints wall-clock and CPU time, clips, audio
hours, real-time factor, peak resident memory and disk size, and deletes the corpus unless ``--keep``.

    .venv/bin/python benchmarks/bench_synth.py                         # workshop, both layouts
    .venv/bin/python benchmarks/bench_synth.py --profiles tiny workshop full --check

CPU time counts both worker threads; on a shared machine, compare it with the wall time (and the load
average printed beside it) to see how much of the wall time was spent waiting for a core.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_S = {"tiny": 10.0, "workshop": 30.0, "full": 180.0}
"""Wall-clock budget per layout and profile (issue 3; tiny is ours)."""


def child(layout: str, profile: str, out: str) -> None:
    """Generate one corpus and print its measurements as one JSON line (runs in the subprocess)."""
    from serlib.synth import METADATA_FILE, generate_corpus

    started, cpu = time.perf_counter(), time.process_time()
    generate_corpus(layout, out, profile=profile, seed=0, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    with open(Path(out) / METADATA_FILE, newline="") as handle:
        durations = [float(row["duration_s"]) for row in csv.DictReader(handle)]
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "layout": layout, "profile": profile, "wall_s": wall, "cpu_s": cpu,
        "clips": len(durations), "audio_s": sum(durations), "peak_mib": peak_kib / 1024,
        "disk_mib": size / 2**20, "load": os.getloadavg()[0],
    }))  # fmt: skip


def measure(layout: str, profile: str, keep: Path | None) -> dict:
    """Run ``child`` in a fresh interpreter and return its measurements."""
    folder = Path(tempfile.mkdtemp(prefix=f"synth-{layout}-{profile}-", dir=keep))
    try:
        command = [sys.executable, __file__, "--child", layout, profile, str(folder / layout)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        return json.loads(output.strip().splitlines()[-1])
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["workshop"], choices=list(LIMIT_S))
    parser.add_argument("--layouts", nargs="+", default=["iemocap", "ravdess"])
    parser.add_argument("--keep", type=Path, help="generate under this folder and keep the corpora")
    parser.add_argument("--check", action="store_true", help="exit 1 if a time budget is missed")
    parser.add_argument(
        "--child", nargs=3, metavar=("LAYOUT", "PROFILE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    header = (
        "layout   profile    clips  audio h   wall s   cpu s  x real time  peak MiB  disk MiB  load"
    )
    print(header)
    missed = []
    for profile in args.profiles:
        for layout in args.layouts:
            m = measure(layout, profile, args.keep)
            print(
                f"{layout:8s} {profile:9s} {m['clips']:6d} {m['audio_s'] / 3600:8.2f} {m['wall_s']:8.1f}"
                f" {m['cpu_s']:7.1f} {m['audio_s'] / m['wall_s']:12.0f} {m['peak_mib']:9.0f}"
                f" {m['disk_mib']:9.0f} {m['load']:5.1f}",
                flush=True,
            )
            if m["wall_s"] > LIMIT_S[profile]:
                missed.append(f"{layout}/{profile}: {m['wall_s']:.0f} s > {LIMIT_S[profile]:.0f} s")
    if missed:
        print("over budget: " + "; ".join(missed))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
