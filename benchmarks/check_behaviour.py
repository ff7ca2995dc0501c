"""Train every model kind at the tiny profile and print its metrics: a before/after check.

A restructuring of serlib must not change what a run computes. Run this script on the code before
and after the change, on the same machine, and compare the two JSON files:

    python benchmarks/check_behaviour.py --out /tmp/before.json      # on the old commit
    python benchmarks/check_behaviour.py --out /tmp/after.json --compare /tmp/before.json

Each run trains on the synthetic IEMOCAP-like corpus and adapts to / is tested on the synthetic
RAVDESS-like one (seed 0), so it needs no real data: under a minute for all twelve cases at the tiny
profile on 2 cores; ``--profile workshop --only crnn dann`` checks the course's own runs in minutes.
Numbers are compared to 1e-6: the same code path on the same machine gives the same floats.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from serlib.runs import train_run  # noqa: E402
from serlib.synth import generate_corpus  # noqa: E402

CASES: dict[str, dict] = {
    "crnn": {"model": "crnn"},
    "crnn-target-statistics": {"model": "crnn", "target_statistics": True},
    "crnn-target-batchnorm": {"model": "crnn", "target_batchnorm": True},
    "crnn-trim-utterance": {"model": "crnn", "trim_db": 40.0, "normalisation": "utterance"},
    "crnn-oracle": {"model": "crnn", "oracle": True},
    "dann": {"model": "dann"},
    "dann-confusion": {"model": "dann", "adversary": "confusion", "domain_weight": 0.25},
    "dann-target-batchnorm": {"model": "dann", "target_batchnorm": True},
    "w2v2-frozen": {"model": "w2v2", "w2v2_mode": "frozen"},
    "w2v2-finetune": {"model": "w2v2", "w2v2_mode": "finetune"},
    "w2v2-dann-frozen": {"model": "w2v2-dann", "w2v2_mode": "frozen"},
    "w2v2-dann-finetune": {"model": "w2v2-dann", "w2v2_mode": "finetune"},
}
"""Every model kind and the options that change its training path."""

REPORTED_SETS = ("source_val", "source_test", "target_test", "target_all")
TOLERANCE = 1e-6


def summarise(metrics: dict, history: list[dict]) -> dict:
    """The numbers a behaviour change would move: losses per epoch, UA/WA/F1 per set, the epoch."""
    summary = {"best_epoch": metrics["selection"]["best_epoch"]}
    for row in history:
        for key in ("train_loss", "train_domain_loss", "val_loss"):
            if key in row:
                summary[f"epoch{row['epoch']}_{key}"] = row[key]
    summary["best_val_ua"] = metrics["selection"]["best_val_ua"]
    for name in REPORTED_SETS:
        if name in metrics:
            summary[name] = {k: metrics[name][k] for k in ("ua", "wa", "macro_f1", "n")}
    if "proxy_a_distance" in metrics:
        summary["proxy_a_distance"] = metrics["proxy_a_distance"]["value"]
    return summary


def run_case(name: str, case: dict, source: Path, target: Path, work: Path, profile: str) -> dict:
    options = dict(case)
    model = options.pop("model")
    oracle = options.pop("oracle", False)
    target_ref = f"ravdess:{target}"
    source_ref = target_ref if oracle else f"iemocap:{source}"
    kwargs = {"encoder": "tiny"} if model.startswith("w2v2") else {}
    result = train_run(
        model,
        source_ref,
        work / name,
        target=target_ref,
        profile=profile,
        seed=0,
        progress=False,
        **kwargs,
        **options,
    )
    return summarise(result.metrics, result.history)


def differences(before: dict, after: dict, path: str = "") -> list[str]:
    """Every leaf that differs by more than TOLERANCE (or exists on one side only)."""
    found = []
    for key in sorted(set(before) | set(after)):
        here = f"{path}.{key}" if path else key
        if key not in before or key not in after:
            found.append(f"{here}: only in {'after' if key not in before else 'before'}")
        elif isinstance(before[key], dict):
            found += differences(before[key], after[key], here)
        elif abs(float(before[key]) - float(after[key])) > TOLERANCE:
            found.append(f"{here}: {before[key]} -> {after[key]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for this code's metrics")
    parser.add_argument("--compare", type=Path, help="an earlier --out file to compare against")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="run these cases only")
    parser.add_argument(
        "--profile",
        default="tiny",
        choices=["tiny", "workshop"],
        help="training profile and corpus size (workshop: the course's runs, minutes each)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = generate_corpus(
            "iemocap", work / "iemocap", profile="tiny", seed=0, progress=False
        )
        target = generate_corpus(
            "ravdess", work / "ravdess", profile="tiny", seed=0, progress=False
        )
        for name in args.only or CASES:
            started = time.perf_counter()
            results[name] = run_case(name, CASES[name], source, target, work / "runs", args.profile)
            seconds = time.perf_counter() - started
            print(
                f"{name:<24} target UA {results[name].get('target_test', {}).get('ua')}  "
                f"{seconds:.1f} s",
                flush=True,
            )
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True))
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    before = {k: v for k, v in before.items() if k in results}
    found = differences(before, results)
    for line in found:
        print("DIFFERENT", line)
    print(f"{len(results)} cases, {len(found)} differences against {args.compare}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
