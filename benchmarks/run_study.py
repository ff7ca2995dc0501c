"""The study behind docs/results.md's results tables: source-only vs DANN vs oracle, over seeds.

Three experiments, each one sub-command; run folders go to ``$SERLIB_HOME/study/...`` and an
interrupted study picks up where it stopped (finished runs are read back, unfinished ones resumed):

    # synthetic workshop corpora, IEMOCAP-like -> RAVDESS-like, 4 classes, 3 seeds
    .venv/bin/python benchmarks/run_study.py synthetic --seeds 0 1 2
    # real RAVDESS (actors 1-16): 4-fold speaker-independent CV, 8 emotions and 4class
    .venv/bin/python benchmarks/run_study.py ravdess-folds --ravdess /path/to/ravdess-16k
    # real RAVDESS -> EmoDB, 4class: source-only vs DANN, adapting on some EmoDB speakers
    .venv/bin/python benchmarks/run_study.py ravdess-emodb --ravdess DIR --emodb DIR --seeds 0 1 2

Each writes ``benchmarks/RESULTS_study_<experiment>.md`` (with ``--write``) and prints it.

Protocol (see serlib.protocol): the source is split by speaker (IEMOCAP-like: sessions 1-3 / 4 / 5);
the target speakers are cut in half, *adaptation* speakers (DANN sees their audio, never their
labels) and *test* speakers (every target-test number below). The oracle trains on the labelled
adaptation speakers: an upper bound that uses target labels. "target all" for DANN includes the
adaptation speakers (partly transductive); the transductive DANN adapts on all target speakers,
as the original study did, and is labelled so. Epochs are chosen on source validation UA only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from serlib.config import TRAINING_PROFILES, TRIM_DB, serlib_home
from serlib.runs import cross_validate, train_run


def run_or_read(out: Path, **train_args) -> dict:
    """metrics.json of a finished run folder, else train (or resume) the run and return its metrics."""
    metrics = out / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())
    started = time.perf_counter()
    result = train_run(out=out, resume=True, progress=False, **train_args)
    print(f"{out}: {time.perf_counter() - started:.0f} s", flush=True)
    return result.metrics


def mean_std(values: list[float]) -> str:
    """'mean +- std' in percent (std over seeds, ddof=1; just the value for one seed)."""
    values = 100 * np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{values.mean():.1f} +- {values.std(ddof=1):.1f}"


def score(metrics: dict, name: str) -> float:
    return metrics[name]["ua"] if name in metrics else float("nan")


VARIANTS = (  # (table name, run folder, model, train_run options, the flags that ask for it)
    (
        "DANN-CRNN, confusion adversary",
        "dann-confusion",
        "dann",
        {"adversary": "confusion"},
        ("confusion",),
    ),
    (
        "DANN-CRNN, confusion + target statistics",
        "dann-confusion-target-statistics",
        "dann",
        {"adversary": "confusion", "target_statistics": True},
        ("confusion", "target_statistics"),
    ),
    (  # half the domain weight: at 0.5 the adversary cost 3.1 points of source UA over 3 seeds
        "DANN-CRNN, confusion (domain weight 0.25) + target statistics",
        "dann-confusion-w025-target-statistics",
        "dann",
        {"adversary": "confusion", "target_statistics": True, "domain_weight": 0.25},
        ("confusion", "target_statistics"),
    ),
    (
        "CRNN + target statistics",
        "crnn-target-statistics",
        "crnn",
        {"target_statistics": True},
        ("target_statistics",),
    ),
    (
        "DANN-CRNN + target statistics",
        "dann-target-statistics",
        "dann",
        {"target_statistics": True},
        ("target_statistics",),
    ),
    (
        "CRNN + target batch norm (AdaBN)",
        "crnn-target-batchnorm",
        "crnn",
        {"target_batchnorm": True},
        ("adabn",),
    ),
    (
        "DANN-CRNN + target batch norm (domain-specific)",
        "dann-target-batchnorm",
        "dann",
        {"target_batchnorm": True},
        ("adabn",),
    ),
    (
        "DANN-CRNN, confusion + target batch norm (domain-specific)",
        "dann-confusion-target-batchnorm",
        "dann",
        {"adversary": "confusion", "target_batchnorm": True},
        ("adabn", "confusion"),
    ),
    # Silence and per-clip normalisation: corpora differ in the silence around a clip (RAVDESS
    # about 1 s on each side, IEMOCAP and EmoDB tightly cut) and in level and microphone.
    (
        "CRNN, per-utterance normalisation",
        "crnn-utterance",
        "crnn",
        {"normalisation": "utterance"},
        ("trim",),
    ),
    (
        "CRNN, silence trimmed",
        "crnn-trim",
        "crnn",
        {"trim_db": TRIM_DB},
        ("trim",),
    ),
    (
        "CRNN, silence trimmed + per-utterance normalisation",
        "crnn-trim-utterance",
        "crnn",
        {"trim_db": TRIM_DB, "normalisation": "utterance"},
        ("trim",),
    ),
    (
        "DANN-CRNN, silence trimmed + per-utterance normalisation",
        "dann-trim-utterance",
        "dann",
        {"trim_db": TRIM_DB, "normalisation": "utterance"},
        ("trim",),
    ),
    # Controls: the DANN set-up (target batches in every forward pass, so batch norm sees both
    # domains) with the domain loss switched off. What DANN gains over these, the adversary did.
    (
        "DANN-CRNN, domain weight 0 (control)",
        "dann-weight0",
        "dann",
        {"domain_weight": 0.0},
        ("controls",),
    ),
    (
        "DANN-CRNN, domain weight 0 + target statistics (control)",
        "dann-weight0-target-statistics",
        "dann",
        {"domain_weight": 0.0, "target_statistics": True},
        ("controls", "target_statistics"),
    ),
)


INPUT_ORACLES = (  # (table name, run folder, train_run options): upper bounds for the --trim inputs
    ("oracle CRNN, silence trimmed", "oracle-trim", {"trim_db": TRIM_DB}),
    (
        "oracle CRNN, per-utterance normalisation",
        "oracle-utterance",
        {"normalisation": "utterance"},
    ),
    (
        "oracle CRNN, silence trimmed + per-utterance normalisation",
        "oracle-trim-utterance",
        {"trim_db": TRIM_DB, "normalisation": "utterance"},
    ),
)


def variant_wanted(flags: tuple[str, ...], args) -> bool:
    """A variant runs when every flag it needs was given (--confusion, --target-statistics...)."""
    return all(getattr(args, flag) for flag in flags)


def domain_study(args, source: str, target: str, name: str, oracle: bool) -> str:
    """Source-only, DANN (speaker-disjoint and transductive) and, if asked, the oracle, per seed."""
    runs = {"source-only CRNN": [], "DANN-CRNN": [], "DANN-CRNN transductive": []}
    if oracle:
        runs["oracle CRNN (target labels)"] = []
    for seed in args.seeds:
        folder = serlib_home() / "study" / f"{name}_{args.profile}" / f"seed{seed}"
        common = {"scheme": "4class", "profile": args.profile, "seed": seed, "epochs": args.epochs}
        runs["source-only CRNN"].append(
            run_or_read(folder / "crnn", model="crnn", source=source, target=target, **common)
        )
        runs["DANN-CRNN"].append(
            run_or_read(folder / "dann", model="dann", source=source, target=target, **common)
        )
        runs["DANN-CRNN transductive"].append(
            run_or_read(
                folder / "dann-transductive",
                model="dann",
                source=source,
                target=target,
                transductive=True,
                **common,
            )  # fmt: skip
        )
        if oracle:
            runs["oracle CRNN (target labels)"].append(
                run_or_read(folder / "oracle", model="crnn", source=target, target=target, **common)
            )
        for label, run_name, options in INPUT_ORACLES if oracle and args.trim else ():
            runs.setdefault(label, []).append(
                run_or_read(
                    folder / run_name,
                    model="crnn",
                    source=target,
                    target=target,
                    **options,
                    **common,
                )
            )
        for label, run_name, model, options, flags in VARIANTS:
            if variant_wanted(flags, args):
                runs.setdefault(label, []).append(
                    run_or_read(
                        folder / run_name,
                        model=model,
                        source=source,
                        target=target,
                        **options,
                        **common,
                    )
                )
    lines = [
        "| model | source test UA | target test UA (disjoint speakers) | target all UA |",
        "|---|---|---|---|",
    ]
    for model, metrics in runs.items():
        cells = [
            mean_std([score(m, key) for m in metrics])
            for key in ("source_test", "target_test", "target_all")
        ]
        cells = [c if "nan" not in c else "-" for c in cells]
        lines.append(f"| {model} | {' | '.join(cells)} |")
    lines.append("")
    source_only = np.array([score(m, "target_test") for m in runs["source-only CRNN"]])
    dann = np.array([score(m, "target_test") for m in runs["DANN-CRNN"]])
    source_ua = np.array([score(m, "source_test") for m in runs["source-only CRNN"]])
    dann_source_ua = np.array([score(m, "source_test") for m in runs["DANN-CRNN"]])
    lines.append(f"- DANN - source-only, target test UA: {mean_std(dann - source_only)} points")
    lines.append(
        f"- DANN - source-only, source test UA: {mean_std(dann_source_ua - source_ua)} points"
    )
    if oracle:
        oracle_ua = np.array([score(m, "target_test") for m in runs["oracle CRNN (target labels)"]])
        gap = oracle_ua - source_only
        lines.append(f"- gap oracle - source-only, target test UA: {mean_std(gap)} points")
        baselines = ("source-only CRNN", "DANN-CRNN transductive", "oracle CRNN (target labels)")
        baselines += tuple(label for label, _, _ in INPUT_ORACLES)
        for model in (name for name in runs if name not in baselines):
            gain = np.array([score(m, "target_test") for m in runs[model]]) - source_only
            if gap.mean() <= 0:
                lines.append(f"- share of the gap {model} recovers: n/a (no gap to recover)")
                continue
            per_seed = ", ".join(
                f"{100 * g / d:.0f} %" if d > 0 else "n/a" for g, d in zip(gain, gap, strict=True)
            )
            source_change = np.array([score(m, "source_test") for m in runs[model]]) - source_ua
            lines.append(
                f"- share of the gap {model} recovers: {100 * gain.mean() / gap.mean():.0f} % "
                f"(mean gain / mean gap; per seed: {per_seed}); source test UA "
                f"{mean_std(source_change)} points against source-only"
            )
    return "\n".join(lines)


def ravdess_folds(args) -> str:
    """4-fold speaker-independent CV of the CRNN on RAVDESS, 8 emotions and 4 classes."""
    lines = [
        "| scheme | classes | UA (mean +- std over folds) | WA | per-fold UA |",
        "|---|---|---|---|---|",
    ]
    for scheme in ("native", "4class"):
        out = serlib_home() / "study" / f"ravdess-folds_{args.profile}" / scheme
        summary_file = out / "summary.json"
        if summary_file.is_file():
            summary = json.loads(summary_file.read_text())
        else:
            summary = cross_validate(
                f"ravdess:{args.ravdess}", out, scheme=scheme, n_folds=args.folds,
                profile=args.profile, epochs=args.epochs, seed=args.seeds[0], resume=True,
                progress=False,
            )  # fmt: skip
        per_fold = ", ".join(f"{100 * f['ua']:.1f}" for f in summary["folds"].values())
        lines.append(
            f"| {scheme} | {len(summary['labels'])} | {100 * summary['ua_mean']:.1f} +- "
            f"{100 * summary['ua_std']:.1f} | {100 * summary['wa_mean']:.1f} | {per_fold} |"
        )
    return "\n".join(lines)


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["synthetic", "ravdess-folds", "ravdess-emodb"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default="workshop", choices=TRAINING_PROFILES)
    parser.add_argument("--epochs", type=int, help="override the profile's epochs")
    parser.add_argument(
        "--target-statistics",
        action="store_true",
        help="add CRNN and DANN runs whose target log-mels use the target adaptation speakers' "
        "own statistics",
    )
    parser.add_argument(
        "--confusion",
        action="store_true",
        help="add DANN runs with the bounded domain-confusion adversary (--adversary confusion)",
    )
    parser.add_argument(
        "--adabn",
        action="store_true",
        help="add CRNN and DANN runs that score the target with batch-norm statistics of the "
        "target adaptation speakers (--target-batchnorm)",
    )
    parser.add_argument(
        "--controls",
        action="store_true",
        help="add DANN runs with the domain loss off (domain weight 0): what batch norm over both "
        "domains does without the adversary",
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="add CRNN and DANN runs with per-utterance normalisation and/or the silence around "
        "each clip trimmed (--normalisation utterance, --trim-silence 40), and an oracle for each "
        "of those inputs",
    )
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--ravdess", help="RAVDESS folder (Actor_NN/...)")
    parser.add_argument("--emodb", help="EmoDB folder (wav/...)")
    parser.add_argument("--synth-seed", type=int, default=0, help="seed of the synthetic corpora")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write RESULTS_study_<exp>.md (RESULTS_study_synthetic-seedN.md for --synth-seed N)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    if args.experiment == "synthetic":
        from serlib.course import ensure_synthetic

        source = f"iemocap:{ensure_synthetic('iemocap', args.profile, args.synth_seed)}"
        target = f"ravdess:{ensure_synthetic('ravdess', args.profile, args.synth_seed)}"
        body = domain_study(args, source, target, f"synthetic{args.synth_seed}", oracle=True)
        title = "Synthetic IEMOCAP-like -> RAVDESS-like, 4 classes"
    elif args.experiment == "ravdess-folds":
        if not args.ravdess:
            parser.error("ravdess-folds needs --ravdess DIR")
        body = ravdess_folds(args)
        title = f"RAVDESS, CRNN, {args.folds}-fold speaker-independent cross-validation"
    else:
        if not (args.ravdess and args.emodb):
            parser.error("ravdess-emodb needs --ravdess DIR and --emodb DIR")
        body = domain_study(
            args, f"ravdess:{args.ravdess}", f"emodb:{args.emodb}", "ravdess-emodb", oracle=True
        )
        title = "RAVDESS -> EmoDB, 4 classes"
    command = "python benchmarks/run_study.py " + " ".join(
        a if " " not in a else repr(a) for a in sys.argv[1:]
    )
    text = (
        f"# {title}\n\n{datetime.date.today()}, {machine()}, profile {args.profile}, seeds "
        f"{args.seeds}; {time.perf_counter() - started:.0f} s (cached runs are only read).\n"
        f"Reproduce: `{command}`\n\n{body}\n"
    )
    print(text)
    if args.write:
        name = args.experiment
        if name == "synthetic" and args.synth_seed != 0:  # another draw must not overwrite seed 0's
            name = f"synthetic-seed{args.synth_seed}"
        Path(__file__).with_name(f"RESULTS_study_{name}.md").write_text(text)


if __name__ == "__main__":
    main()
