"""The ``serlib`` command: scan corpora, make the synthetic corpus, train, evaluate, predict, and
benchmark against EmoBox's published protocols (``serlib benchmark``).

Every sub-command exits 0 on success. A mistake the user can fix (a ``serlib.errors.UserError``: a bad
option, an unusable corpus; or a missing file) exits 2 with a one-line reason on stderr, so scripts
and notebooks can rely on it; any other exception is a bug and shows its traceback. The work lives in
the library modules (``serlib.runs`` trains, evaluates and predicts); this file parses arguments and
prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from serlib import __version__
from serlib.config import PROFILE_NAMES, TRAINING_PROFILES
from serlib.corpora import load_corpus, skip_reasons
from serlib.errors import UserError
from serlib.labels import apply_scheme, check_scheme, dropped_counts, require_classes, scheme_labels
from serlib.train_options import OPTIONAL_FLAGS, SUPERVISED_FLAGS, add_setting_options

EXIT_USAGE = 2
"""Exit status of a mistake the user can fix."""

EXIT_BROKEN_PIPE = 141
"""Exit status when the reader of stdout went away (``| head``): 128 + SIGPIPE, as shells report."""

EXAMPLES_SHOWN = 3
"""Paths shown per skip reason (and of the duplicates) in the human scan summary; --json has all."""

REASONS_SHOWN = 10
"""Skip reasons shown in the human scan summary, the commonest first."""


def scan_report(corpus: str, root: str, scheme: str | None, check_audio: bool = False) -> dict:
    """The scan summary that ``serlib scan --json`` prints.

    Scripts rely on ``corpus``, ``root``, ``n``, ``per_label`` ({label: n}), ``speakers`` and
    ``skipped`` ([{"path", "reason"}]); beside them: genders, what the scheme dropped, the
    duplicates and alternative encodings, and the skip counts per reason.

    Raises a UserError when no clip is usable or when ``scheme`` leaves a class without clips.
    """
    scan = load_corpus(corpus, root, check_audio=check_audio)
    table = scan.table
    label_column = "emotion"
    report_extra: dict = {}
    if scheme:
        report_extra = {"scheme": scheme, "dropped_by_scheme": dropped_counts(table, scheme)}
        table = apply_scheme(table, scheme)
        label_column = "label"
        if scheme != "native":  # native keeps every label the corpus has: no class can be empty
            where = f"{scan.corpus} at {scan.root} with scheme {scheme}"
            require_classes(table, scheme_labels(scheme), where)
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
        "audio_checked": check_audio,
        "skip_reasons": {reason: len(paths) for reason, paths in skip_reasons(scan.skipped)},
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        "duplicates": [{"kept": d.kept, "duplicate": d.duplicate} for d in scan.duplicates],
        "alternatives": [{"kept": d.kept, "duplicate": d.duplicate} for d in scan.alternatives],
    }


def shown_path(path: str, root: str) -> str:
    """``path`` relative to the corpus root when it lies inside it (shorter to read), else as is."""
    prefix = root.rstrip(os.sep) + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else path


def print_examples(paths: list[str], root: str, indent: str) -> None:
    """The first few of ``paths``, then how many more there are."""
    for path in paths[:EXAMPLES_SHOWN]:
        print(f"{indent}{shown_path(path, root)}")
    if len(paths) > EXAMPLES_SHOWN:
        print(f"{indent}... and {len(paths) - EXAMPLES_SHOWN} more (use --json for all)")


def print_scan(report: dict) -> None:
    """A short human-readable scan summary: counts, then duplicates and skips grouped by reason."""
    root = report["root"]
    print(f"{report['corpus']} at {root}: {report['n']} utterances")
    width = max((len(label) for label in report["per_label"]), default=5)
    for label, count in report["per_label"].items():
        print(f"  {label:<{width}}  {count:>6}")
    female = sum(g == "F" for g in report["genders"].values())
    print(
        f"  speakers: {len(report['speakers'])} ({female} female, {len(report['speakers']) - female} male)"
    )
    for label, count in report.get("dropped_by_scheme", {}).items():
        print(f"  dropped by scheme {report['scheme']}: {label} ({count})")
    if report["duplicates"]:
        print(
            f"  {len(report['duplicates'])} duplicates counted once (the same utterance in two "
            "files; kept: a .wav first, then the copy nearest the root):"
        )
        shown = [
            f"{shown_path(d['duplicate'], root)} (kept {shown_path(d['kept'], root)})"
            for d in report["duplicates"]
        ]
        print_examples(shown, "", "    ")
    if report["alternatives"]:
        print(
            f"  {len(report['alternatives'])} alternative encodings of clips already used "
            "(other formats, not read), e.g.:"
        )
        print_examples([d["duplicate"] for d in report["alternatives"]], root, "    ")
    if report["skipped"]:
        print(f"  skipped {len(report['skipped'])} files:")
        paths: dict[str, list[str]] = {}
        for skip in report["skipped"]:
            paths.setdefault(skip["reason"], []).append(skip["path"])
        reasons = list(report["skip_reasons"].items())
        for reason, count in reasons[:REASONS_SHOWN]:
            print(f"    {count} x {reason}")
            print_examples(paths[reason], root, "        ")
        rest = reasons[REASONS_SHOWN:]
        if rest:
            files = sum(count for _, count in rest)
            print(f"    ... and {files} files for {len(rest)} more reasons (use --json for all)")


def run_scan(args: argparse.Namespace) -> int:
    if args.scheme:
        check_scheme(args.scheme)
    report = scan_report(args.corpus, args.root, args.scheme, args.check_audio)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_scan(report)
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from serlib.synth import generate_corpus  # scipy (0.3-0.7 s) that --help and scan need not pay

    root = generate_corpus(args.layout, args.out, profile=args.profile, seed=args.seed)
    print(f"synthetic {args.layout} corpus ({args.profile} profile, seed {args.seed}) in {root}")
    return 0


def format_metrics(metrics: dict) -> str:
    """A short table of a run's scores, one line per evaluation set."""
    lines = [f"{'set':<12} {'UA':>6} {'WA':>6} {'F1':>6} {'n':>6}  protocol"]
    if "model" in metrics:  # e.g. "tiny random encoder (not pretrained)" must never go unsaid
        model = metrics["model"]
        lines.insert(0, f"model {model['kind']}, encoder: {model['encoder_label']}")
    for name, scores in metrics.items():
        if isinstance(scores, dict) and "ua" in scores:
            lines.append(
                f"{name:<12} {100 * scores['ua']:6.1f} {100 * scores['wa']:6.1f} "
                f"{100 * scores['macro_f1']:6.1f} {scores['n']:>6}  {scores['protocol']}"
            )
    if "proxy_a_distance" in metrics:
        lines.append(
            f"proxy A-distance (source vs target test): {metrics['proxy_a_distance']['value']:.2f}"
        )
    return "\n".join(lines)


def train_command(args: argparse.Namespace) -> int:
    """``serlib train``: train into ``--out`` and print the scores."""
    from serlib import runs  # imports torch (seconds): only the commands that train or score pay

    result = runs.train_run(
        args.model,
        args.source,
        args.out,
        target=args.target,
        scheme=args.scheme,
        profile=args.profile,
        epochs=args.epochs,
        seed=args.seed,
        resume=args.resume,
        encoder=args.encoder,
        transductive=args.transductive,
        progress=sys.stderr.isatty(),
        target_statistics=args.target_statistics,
        target_batchnorm=args.target_batchnorm,
        **{name: getattr(args, name) for name in OPTIONAL_FLAGS if getattr(args, name) is not None},
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under `accelerate launch`, one process reports
        print(format_metrics(result.metrics))
        print(f"run folder: {result.run_dir}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """``serlib evaluate``: score a run on a corpus; ``--json`` prints the contract's JSON."""
    from serlib import runs  # imports torch (seconds): only the commands that train or score pay

    report = runs.evaluate_run(args.run, args.corpus, args.split, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(report))
        return 0
    if report.get("encoder_label"):
        print(f"encoder: {report['encoder_label']}")
    print(
        f"UA {100 * report['ua']:.1f}  WA {100 * report['wa']:.1f}  "
        f"macro-F1 {100 * report['macro_f1']:.1f}  n {report['n']}"
    )
    width = max(len(label) for label in report["labels"])
    print(
        " " * (width + 2)
        + " ".join(f"{label[:6]:>6}" for label in report["labels"])
        + "  (rows: true)"
    )
    for label, row in zip(report["labels"], report["confusion"], strict=True):
        print(f"{label:<{width}}  " + " ".join(f"{count:>6}" for count in row))
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """``serlib predict``: one line per file, label then class probabilities; exit 2 if any failed."""
    from serlib import runs  # imports torch (seconds): only the commands that train or score pay

    run = runs.load_run(args.run)
    results, skipped = runs.predict_files(run, args.files, target=args.target)
    label = run.config.get("encoder_label") or ""
    if "not pretrained" in label:
        print(f"serlib predict: note: this run uses a {label}", file=sys.stderr)
    for result in results:
        scores = "  ".join(f"{name} {p:.3f}" for name, p in result["probabilities"].items())
        print(f"{result['path']}\t{result['label']}\t{scores}")
    for skip in skipped:
        print(f"serlib predict: error: {skip.path}: {skip.reason}", file=sys.stderr)
    return EXIT_USAGE if skipped else 0


BENCHMARK_PROTOCOLS = ("emobox-folds", "emobox-cross")
"""``serlib benchmark``'s protocols; a subcommand of its own because it runs many runs into one
folder and prints a comparison table, where ``serlib train`` makes exactly one run folder."""


def benchmark_command(args: argparse.Namespace) -> int:
    """``serlib benchmark``: EmoBox's folds or cross-corpus track, then the comparison table."""
    from serlib import emobox_runs  # imports torch (seconds): only the commands that train pay

    folds = args.protocol == "emobox-folds"
    if folds and (args.corpus is None or args.source or args.target or args.available_clips):
        raise UserError(
            "emobox-folds runs on one corpus: give --corpus NAME:DIR, without --source, --target "
            "or --available-clips"
        )
    if not folds and (args.corpus or not (args.source and args.target) or args.available_folds):
        raise UserError(
            "emobox-cross trains on one corpus and scores another: give --source NAME:DIR and "
            "--target NAME:DIR, without --corpus or --available-folds"
        )
    common = {
        "model": args.model,
        "profile": args.profile,
        "epochs": args.epochs,
        "seed": args.seed,
        "resume": args.resume,
        "encoder": args.encoder,
        "progress": sys.stderr.isatty(),
        **{
            name: getattr(args, name)
            for name in SUPERVISED_FLAGS
            if getattr(args, name) is not None
        },
    }
    if folds:
        summary = emobox_runs.run_emobox_folds(
            args.corpus, args.out, available_folds=args.available_folds, **common
        )
    else:
        summary = emobox_runs.run_emobox_cross(
            args.source, args.target, args.out, available_clips=args.available_clips, **common
        )
    if int(os.environ.get("RANK", "0")) == 0:  # under `accelerate launch`, one process reports
        print(emobox_runs.format_summary(summary))
        print(f"summary: {os.path.join(args.out, emobox_runs.SUMMARY_FILE)}")
    return 0


def add_benchmark_parser(commands) -> None:
    """The ``serlib benchmark`` sub-command and its options."""
    bench = commands.add_parser(
        "benchmark", help="EmoBox's folds or cross-corpus track, beside EmoBox's published numbers"
    )
    bench.add_argument(
        "protocol",
        choices=BENCHMARK_PROTOCOLS,
        help="emobox-folds: EmoBox's intra-corpus folds (RAVDESS 8 emotions, IEMOCAP 4 classes); "
        "emobox-cross: train on --source, score EmoBox's balanced 4-class test set of --target",
    )
    bench.add_argument("--corpus", metavar="NAME:DIR", help="emobox-folds: ravdess or iemocap")
    bench.add_argument("--source", metavar="NAME:DIR", help="emobox-cross: the corpus trained on")
    bench.add_argument(
        "--target",
        metavar="NAME:DIR",
        help="emobox-cross: ravdess or iemocap, the test set's corpus",
    )
    bench.add_argument(
        "--out", required=True, metavar="DIR", help="run folders (DIR/fold_k) and DIR/summary.json"
    )
    bench.add_argument("--model", default="crnn", choices=["crnn", "w2v2"])
    bench.add_argument(
        "--profile", choices=TRAINING_PROFILES, help="default: $SERLIB_PROFILE or workshop"
    )
    bench.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument(
        "--resume", action="store_true", help="skip finished runs, continue unfinished ones"
    )
    bench.add_argument(
        "--available-folds",
        action="store_true",
        help="emobox-folds: run only the folds whose test clips are all on disk; the others are "
        "reported as skipped and the result as not comparable",
    )
    bench.add_argument(
        "--available-clips",
        action="store_true",
        help="emobox-cross: score the clips of EmoBox's test set that are on disk; the result is "
        "reported as partial, not comparable",
    )
    bench.add_argument("--encoder", help="w2v2: transformers checkpoint or folder; 'tiny' = test")
    add_setting_options(bench, adaptation=False)  # e.g. --keep last, as serlib train takes them
    bench.set_defaults(func=benchmark_command)


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
    scan.add_argument(
        "--check-audio",
        action="store_true",
        help="also decode every clip and skip silent, clipped, NaN-bearing and too-short ones, "
        "as training does (reads all the audio: minutes for a large corpus)",
    )
    scan.set_defaults(func=run_scan)

    synth = commands.add_parser("synth", help="write the built-in synthetic corpus")
    synth.add_argument("--layout", required=True, choices=["iemocap", "ravdess"])
    synth.add_argument("--out", required=True, help="the folder to write")
    synth.add_argument("--profile", default="workshop", choices=PROFILE_NAMES)
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
        "--profile",
        default=None,
        choices=TRAINING_PROFILES,
        help="default: $SERLIB_PROFILE or workshop; recipe: the CRNN's training recipe for real "
        "speech (full, with trimmed silence, 160-frame crops, 40 epochs and a cosine schedule)",
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
    add_setting_options(train)
    train.set_defaults(func=train_command)

    evaluate = commands.add_parser("evaluate", help="evaluate a run on a corpus")
    evaluate.add_argument("--run", required=True, metavar="RUN_DIR")
    evaluate.add_argument("--corpus", required=True, metavar="NAME:DIR")
    evaluate.add_argument("--split", default="all", choices=["all", "test"])
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=evaluate_command)

    predict = commands.add_parser("predict", help="predict the emotion of audio files")
    predict.add_argument("--run", required=True, metavar="RUN_DIR")
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.add_argument(
        "--target",
        action="store_true",
        help="the files come from the run's target domain (uses its target input or batch-norm "
        "statistics, if it has any)",
    )
    predict.set_defaults(func=predict_command)
    add_benchmark_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m serlib``.

    Only a user's mistake (``UserError``, a missing file) becomes exit 2 with one line; anything
    else is a bug in serlib and propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the try, not at interpreter exit
        return status
    except (UserError, FileNotFoundError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"serlib {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (`serlib scan ... | head -1`): stop quietly, as cat or grep do;
        # stdout now points at nothing, so the flush at exit cannot fail a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"serlib {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
