"""Do the synthetic corpora carry the emotion cues they document, as serlib measures them?

Two questions, kept apart because either can be wrong:

1. Does the measurement read what was rendered? For a sample of clips of each 4-class emotion (the
   genders in equal shares, as notebook 01 samples them), ``serlib.analysis.acoustic_cues`` measures
   F0 median, F0 range (10th-90th percentile) and syllables per second from the audio, and
   ``synth_metadata.csv`` says what the synthesiser rendered (the same statistics of the clean
   voice, before the room). Printed per corpus and emotion, rendered beside measured, with the
   typical error.
2. Does the corpus carry the documented cues? ``cue_summary`` of the same clips (notebook 01's
   table), the documented orderings checked on it (sad lowest on every cue; angry and happy above
   neutral in pitch and loudness, and on average wider, faster and brighter; anger the loudest and
   most tense voice, joy the highest), and ``cue_findings``' sentences.

    .venv/bin/python benchmarks/bench_synth_cues.py                       # workshop, 16 per class
    .venv/bin/python benchmarks/bench_synth_cues.py --per-class 8 --check
    .venv/bin/python benchmarks/bench_synth_cues.py --source DIR --target DIR   # corpora on disk

The corpora are generated on first use under ``$SERLIB_HOME/synth/<profile>-seed<seed>/`` (the
course's folder). ``--source``/``--target`` measure synthetic corpora already on disk, e.g. ones
written by older generator code; truth columns their metadata lacks print as NaN. ``--check``
exits 1 if an ordering fails or the tracker's typical error exceeds ``F0_ERROR_MAX_ST`` or
``RANGE_ERROR_MAX_ST``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from serlib import analysis
from serlib.config import serlib_home
from serlib.corpora import load_corpus
from serlib.labels import apply_scheme
from serlib.synth import METADATA_FILE, generate_corpus

F0_ERROR_MAX_ST = 1.0
"""Largest acceptable median |measured - rendered| F0 median, in semitones."""

RANGE_ERROR_MAX_ST = 1.5
"""Largest acceptable median |measured - rendered| F0 range, in semitones."""

RENDERED = ("f0_median_hz", "f0_range_st", "syllable_rate")
"""Cues that ``synth_metadata.csv`` also holds, as rendered (same names, same statistics)."""


def measured_with_truth(layout: str, root: Path, per_class: int, seed: int) -> pd.DataFrame:
    """``cue_table`` of a corpus folder (4-class labels) with the rendered values beside it."""
    scan = load_corpus(layout, root, progress=False)
    table = apply_scheme(scan.table, "4class").reset_index(drop=True)
    cues = analysis.cue_table(table, per_class=per_class, seed=seed)
    metadata = pd.read_csv(root / METADATA_FILE)
    metadata["path"] = [str((root / path).resolve()) for path in metadata["path"]]
    rendered = metadata.reindex(columns=["path", *RENDERED])
    rendered = rendered.rename(columns={column: f"rendered_{column}" for column in RENDERED})
    cues["path"] = [str(Path(path).resolve()) for path in cues["path"]]
    merged = cues.merge(rendered, on="path", how="left")
    merged.attrs["skipped"] = cues.attrs["skipped"]
    return merged


def tracker_errors(cues: pd.DataFrame) -> pd.DataFrame:
    """Per emotion: mean rendered and measured F0 median, F0 range and rate, and typical errors."""
    f0_error = 12 * np.log2(cues["f0_median_hz"] / cues["rendered_f0_median_hz"])
    table = cues.assign(
        f0_error_st=f0_error.abs(),
        range_error_st=(cues["f0_range_st"] - cues["rendered_f0_range_st"]).abs(),
        rate_ratio=cues["syllable_rate"] / cues["rendered_syllable_rate"],
    )
    columns = [
        "rendered_f0_median_hz",
        "f0_median_hz",
        "rendered_f0_range_st",
        "f0_range_st",
        "rendered_syllable_rate",
        "syllable_rate",
    ]
    means = table.groupby("label")[columns].mean()
    errors = table.groupby("label")[["f0_error_st", "range_error_st", "rate_ratio"]].median()
    return pd.concat([means, errors], axis=1).round(2)


def ordering_problems(summary: pd.DataFrame, corpus: str) -> list[str]:
    """The documented orderings (docs/synthetic_corpus.md) that one corpus's summary breaks."""
    table = summary.loc[corpus]
    problems = []
    for cue in analysis.FINDING_CUES:
        if table[cue].idxmin() != "sad":
            problems.append(f"{corpus}: sad is not the lowest {cue}")
    for cue in ("f0_median_hz", "loudness_db"):
        for emotion in ("angry", "happy"):
            if table.loc[emotion, cue] <= table.loc["neutral", cue]:
                problems.append(f"{corpus}: {emotion} not above neutral in {cue}")
    for cue in ("f0_range_st", "syllable_rate", "alpha_ratio_db"):
        if table.loc[["angry", "happy"], cue].mean() <= table.loc["neutral", cue]:
            problems.append(f"{corpus}: angry and happy not above neutral on average in {cue}")
    highest = {"loudness_db": "angry", "alpha_ratio_db": "angry", "f0_median_hz": "happy"}
    for cue, emotion in highest.items():
        if table[cue].idxmax() != emotion:
            problems.append(f"{corpus}: {emotion} is not the highest {cue}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="workshop", choices=["tiny", "workshop", "full"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=16, help="clips per emotion and corpus")
    parser.add_argument("--source", type=Path, help="IEMOCAP-like synthetic folder")
    parser.add_argument("--target", type=Path, help="RAVDESS-like synthetic folder")
    parser.add_argument("--check", action="store_true", help="exit 1 if a threshold is missed")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 160)
    home = serlib_home() / "synth" / f"{args.profile}-seed{args.seed}"
    started = time.perf_counter()
    roots = {
        "iemocap": args.source
        or generate_corpus("iemocap", home / "iemocap", args.profile, args.seed),
        "ravdess": args.target
        or generate_corpus("ravdess", home / "ravdess", args.profile, args.seed),
    }
    parts = [
        measured_with_truth(layout, Path(root), args.per_class, args.seed)
        for layout, root in roots.items()
    ]
    cues = pd.concat(parts, ignore_index=True)
    skipped = [clip for part in parts for clip in part.attrs["skipped"]]
    measured_s = time.perf_counter() - started
    problems = []
    for corpus, rows in cues.groupby("corpus"):
        errors = tracker_errors(rows)
        print(f"\n{corpus}: rendered vs measured, mean per emotion; errors are medians over clips")
        print(errors.to_string())
        for column, limit in (
            ("f0_error_st", F0_ERROR_MAX_ST),
            ("range_error_st", RANGE_ERROR_MAX_ST),
        ):
            typical = float(np.nanmedian(errors[column]))
            if not typical <= limit:
                problems.append(f"{corpus}: typical {column} {typical:.2f} above {limit}")
    summary = analysis.cue_summary(cues)
    print("\ncue_summary (notebook 01's table: median per gender, genders averaged):")
    print(summary.to_string())
    for corpus in roots:
        problems += ordering_problems(summary, corpus)
    print("\ncue_findings:")
    for line in analysis.cue_findings(summary, list(roots)):
        print(f"- {line}")
    print(f"\n{len(cues)} clips measured in {measured_s:.0f} s (including any corpus generation)")
    if skipped:
        print(f"{len(skipped)} clips skipped, first: {skipped[0]}")
    print("documented orderings: " + ("all hold" if not problems else "; ".join(problems)))
    return 1 if (args.check and problems) else 0


if __name__ == "__main__":
    sys.exit(main())
