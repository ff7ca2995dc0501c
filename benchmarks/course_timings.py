"""How long each course run took in a finished ``make course``: the numbers behind
``serlib.course_plan.WORKSHOP_SECONDS``.

A run folder's config.json is written when training starts (after its inputs are read or cached)
and metrics.json when the run is scored, so the time between the two is what a notebook waits
for that run: training, validation and the final scoring. Reads ``$SERLIB_HOME/runs/<tag>/``:

    .venv/bin/python benchmarks/course_timings.py --runs $SERLIB_HOME/runs/iemocap-synth-ravdess-synth_workshop-seed0
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def run_timing(folder: Path) -> dict | None:
    """Seconds from config.json to metrics.json, epochs run and the epoch kept; None if unfinished."""
    config, metrics = folder / "config.json", folder / "metrics.json"
    if not (config.is_file() and metrics.is_file()):
        return None
    with (folder / "history.csv").open() as handle:
        epochs = sum(1 for _ in csv.DictReader(handle))
    selection = json.loads(metrics.read_text()).get("selection", {})
    return {
        "run": folder.name,
        "seconds": round(metrics.stat().st_mtime - config.stat().st_mtime),
        "epochs": epochs,
        "best_epoch": selection.get("best_epoch"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="a course's run folder")
    args = parser.parse_args()
    rows = [t for folder in sorted(args.runs.iterdir()) if (t := run_timing(folder))]
    if not rows:
        raise SystemExit(f"{args.runs}: no finished run folder (config.json + metrics.json)")
    print("| run | seconds (config.json -> metrics.json) | epochs run | best epoch |")
    print("|---|---:|---:|---:|")
    for row in sorted(rows, key=lambda r: r["run"]):
        print(f"| {row['run']} | {row['seconds']} | {row['epochs']} | {row['best_epoch']} |")


if __name__ == "__main__":
    main()
