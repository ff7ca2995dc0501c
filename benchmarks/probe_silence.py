"""How much of a corpus's log-mel frames is silence, and how that moves its per-band statistics.

Why: per-corpus ("target") statistics standardise each corpus by its own mean. A corpus whose clips
carry long silences (RAVDESS: about 1 s on each side) gets a mean pulled far below its speech; a
tightly cut corpus (EmoDB) does not. After standardisation the tightly cut corpus's speech then
sits lower, i.e. sounds quieter, than the other's: one candidate reason why a RAVDESS-trained CRNN
labels every EmoDB clip "sad" with target statistics.

    SERLIB_RAVDESS_DIR=... SERLIB_EMODB_DIR=... python benchmarks/probe_silence.py --clips 120
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

import numpy as np

from serlib.audio import load_audio
from serlib.corpora import load_corpus
from serlib.features import log_mel
from serlib.labels import apply_scheme

CORPORA = ("ravdess", "emodb")


def corpus_files(name: str, root: Path) -> list[Path]:
    """The corpus's clips in the 4class set, as its loader and the label scheme read them."""
    table = apply_scheme(load_corpus(name, root).table, "4class")
    return [Path(path) for path in table["path"]]


def probe(files: list[Path], silence_db: float) -> str:
    """Share of silent frames and the mean log-mel over all frames vs speech frames only."""
    mels = [log_mel(load_audio(path)) for path in files]
    loudness = [m.mean(axis=0) for m in mels]
    silent = np.concatenate([frame < frame.max() - silence_db for frame in loudness])
    frames = np.concatenate(mels, axis=1)
    speech = frames[:, ~silent]
    return (
        f"{len(files)} clips, {frames.shape[1]} frames, {silent.mean():.0%} silent; mean log-mel "
        f"{frames.mean():.1f} dB over all frames, {speech.mean():.1f} dB over speech frames; "
        f"speech sits {(speech.mean() - frames.mean()) / frames.std():.2f} std above the all-frame mean"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120, help="random 4class clips per corpus")
    parser.add_argument("--silence-db", type=float, default=30.0, help="below the loudest frame")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in CORPORA:
        root = os.environ.get(f"SERLIB_{name.upper()}_DIR")
        if not root:
            print(f"{name}: skipped (set SERLIB_{name.upper()}_DIR)")
            continue
        files = corpus_files(name, Path(root))
        files = random.Random(args.seed).sample(files, min(args.clips, len(files)))
        print(f"{name}: {probe(files, args.silence_db)}")


if __name__ == "__main__":
    main()
