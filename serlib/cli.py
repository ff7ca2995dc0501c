"""The ``serlib`` command: scan corpora, make the synthetic corpus, train, evaluate and predict.

Every sub-command exits 0 on success and 2 on bad usage or unusable input, with a one-line reason on
stderr, so scripts and notebooks can rely on it. The heavy lifting lives in the library modules; this
file only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from serlib import __version__
from serlib.config import PROFILES, TRIM_DB

EXIT_USAGE = 2


class UsageError(ValueError):
    """Bad arguments or unusable input: reported as one line, exit status 2."""


def scan_report(corpus: str, root: str, scheme: str | None) -> dict:
    """The scan summary of DESIGN.md's contract (plus genders and what the scheme dropped)."""
    from serlib.corpora import load_corpus
    from serlib.labels import apply_scheme, dropped_counts

    scan = load_corpus(corpus, root)
    table = scan.table
    label_column = "emotion"
    report_extra: dict = {}
    if scheme:
        report_extra = {"scheme": scheme, "dropped_by_scheme": dropped_counts(table, scheme)}
        table = apply_scheme(table, scheme)
        label_column = "label"
    genders = table.groupby("speaker")["gender"].first().sort_index()
    return {
        "corpus": scan.corpus,
        "root": scan.root,
        "n": int(len(table)),
        "per_label": {
            k: int(v) for k, v in table[label_column].value_counts().sort_index().items()
        },
        "speakers": list(genders.index),
        "genders": {speaker: gender for speaker, gender in genders.items()},
        **report_extra,
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
    }


def print_scan(report: dict) -> None:
    """A short human-readable scan summary."""
    print(f"{report['corpus']} at {report['root']}: {report['n']} utterances")
    width = max((len(label) for label in report["per_label"]), default=5)
    for label, count in report["per_label"].items():
        print(f"  {label:<{width}}  {count:>6}")
    female = sum(g == "F" for g in report["genders"].values())
    print(
        f"  speakers: {len(report['speakers'])} ({female} female, {len(report['speakers']) - female} male)"
    )
    for label, count in report.get("dropped_by_scheme", {}).items():
        print(f"  dropped by scheme {report['scheme']}: {label} ({count})")
    if report["skipped"]:
        print(f"  skipped {len(report['skipped'])} files:")
        for skip in report["skipped"][:20]:
            print(f"    {skip['path']}: {skip['reason']}")
        if len(report["skipped"]) > 20:
            print(f"    ... and {len(report['skipped']) - 20} more (use --json for all)")


def run_scan(args: argparse.Namespace) -> int:
    from serlib.labels import check_scheme

    if args.scheme:
        check_scheme(args.scheme)
    report = scan_report(args.corpus, args.root, args.scheme)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_scan(report)
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from serlib.synth import generate_corpus

    root = generate_corpus(args.layout, args.out, profile=args.profile, seed=args.seed)
    print(f"synthetic {args.layout} corpus ({args.profile} profile, seed {args.seed}) in {root}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from serlib.runs import train_command

    return train_command(args)


def run_evaluate(args: argparse.Namespace) -> int:
    from serlib.runs import evaluate_command

    return evaluate_command(args)


def run_predict(args: argparse.Namespace) -> int:
    from serlib.runs import predict_command

    return predict_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serlib", description="Speech emotion recognition under domain shift."
    )
    parser.add_argument("--version", action="version", version=f"serlib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="list a corpus's utterances, labels and speakers")
    scan.add_argument(
        "--corpus", required=True, help="iemocap, ravdess, emodb, cremad, tess, savee"
    )
    scan.add_argument("--root", required=True, help="the corpus folder")
    scan.add_argument("--scheme", help="map labels with a scheme: 4class, seed5 or native")
    scan.add_argument("--json", action="store_true", help="print the JSON summary")
    scan.set_defaults(func=run_scan)

    synth = commands.add_parser("synth", help="write the built-in synthetic corpus")
    synth.add_argument("--layout", required=True, choices=["iemocap", "ravdess"])
    synth.add_argument("--out", required=True, help="the folder to write")
    synth.add_argument("--profile", default="workshop", choices=PROFILES)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=run_synth)

    train = commands.add_parser("train", help="train a model into a run folder")
    train.add_argument("--model", required=True, choices=["crnn", "dann", "w2v2", "w2v2-dann"])
    train.add_argument("--source", required=True, metavar="NAME:DIR", help="labelled source corpus")
    train.add_argument(
        "--target", metavar="NAME:DIR", help="target corpus (adaptation and testing)"
    )
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="the run folder")
    train.add_argument("--scheme", default="4class")
    train.add_argument(
        "--profile", default=None, choices=PROFILES, help="default: $SERLIB_PROFILE or workshop"
    )
    train.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--resume", action="store_true", help="continue from the last complete checkpoint"
    )
    train.add_argument(
        "--transductive",
        action="store_true",
        help="DANN: adapt on all target speakers, test speakers included (labelled transductive)",
    )
    train.add_argument(
        "--adversary",
        choices=["reversal", "confusion"],
        help="DANN: gradient reversal (the study's, default) or the bounded domain-confusion loss",
    )
    train.add_argument(
        "--domain-weight",
        type=float,
        metavar="W",
        help="DANN: weight of the domain loss beside the emotion loss (default 0.5); 0 is the "
        "control: target batches pass through batch norm, no domain loss reaches the encoder",
    )
    train.add_argument(
        "--target-statistics",
        action="store_true",
        help="CRNN models: standardise target log-mels with the unlabelled target adaptation "
        "speakers' own statistics instead of the source's",
    )
    train.add_argument(
        "--target-batchnorm",
        action="store_true",
        help="crnn/dann: score target clips with batch-norm statistics of the unlabelled target "
        "adaptation speakers (AdaBN); dann also normalises each domain with its own statistics "
        "in training",
    )
    train.add_argument(
        "--encoder",
        help="transformers checkpoint or folder for w2v2 models; 'tiny' = offline test config",
    )
    train.add_argument(
        "--normalisation",
        choices=["global", "utterance", "none"],
        help="CRNN log-mels: global (default; per-band statistics of the source training "
        "speakers), utterance (each clip's own per-band mean and std) or none",
    )
    train.add_argument(
        "--trim-silence",
        dest="trim_db",
        type=float,
        nargs="?",
        const=TRIM_DB,
        metavar="DB",
        help="CRNN models: drop each clip's leading and trailing frames more than DB (default "
        f"{TRIM_DB:g}) below its loudest frame",
    )
    train.add_argument(
        "--mixed-precision",
        choices=["auto", "no", "bf16", "fp16"],
        help="auto (default): bf16 or fp16 on a GPU, float32 on the CPU; bf16 also speeds up "
        "CPUs with AVX512-BF16 or AMX",
    )
    train.set_defaults(func=run_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a run on a corpus")
    evaluate.add_argument("--run", required=True, metavar="RUN_DIR")
    evaluate.add_argument("--corpus", required=True, metavar="NAME:DIR")
    evaluate.add_argument("--split", default="all", choices=["all", "test"])
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=run_evaluate)

    predict = commands.add_parser("predict", help="predict the emotion of audio files")
    predict.add_argument("--run", required=True, metavar="RUN_DIR")
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.add_argument(
        "--target",
        action="store_true",
        help="the files come from the run's target domain (uses its target input or batch-norm "
        "statistics, if it has any)",
    )
    predict.set_defaults(func=run_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m serlib``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"serlib {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"serlib {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
