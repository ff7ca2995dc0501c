"""The log-mels of a table's clips, read through the feature cache: as recorded, and the
speed-perturbed copies of a training set.

``log_mels(table, frontend)`` reads every clip's log-mel (computed once, then cached) and orders the
rows shortest first, so evaluation batches carry little padding.

``with_speed_copies`` is Kaldi-style speed perturbation (Ko et al., 2015): a clip resampled so that
it plays faster or slower, tempo and pitch moving together, as a voice a little higher and quicker
or lower and slower. Each speed in ``InputConfig.speed_perturb`` (e.g. 0.9 and 1.1) adds one copy of
every source training clip, so a from-scratch CRNN hears three voices per utterance instead of one.
The copies are log-mels of ``serlib.augment.WavePerturbation(speed=s)``, cached beside the clean
ones under the perturbation's key: decoded and resampled once, on the first run, read back by every
later one. Only the source *training* set gets copies: validation, test and target clips are scored
as recorded, and the normalisation statistics stay those of the clean training clips
(``serlib.inputs.prepare_mel_sets`` fits them before the copies are added).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from serlib.augment import WavePerturbation
from serlib.cache import load_features
from serlib.corpora.base import Skip
from serlib.features import FrontendConfig

Read = tuple[pd.DataFrame, list, list[Skip]]
"""What a read returns: the usable rows, the item the model reads for each, the skipped files."""

SPEED_COLUMN = "speed"
"""The column of a speed-perturbed training table: 1.0 for the clips as recorded."""


def log_mels(table: pd.DataFrame, frontend: FrontendConfig, progress: bool) -> Read:
    """The table's log-mels (cached), shortest first, and the rows that could be read."""
    cached = load_features(table["path"].tolist(), frontend, progress=progress)
    kept = table.iloc[cached.kept].reset_index(drop=True)
    order = np.argsort([a.shape[1] for a in cached.arrays], kind="stable")
    return (
        kept.iloc[order].reset_index(drop=True),
        [cached.arrays[i] for i in order],
        cached.skipped,
    )


def with_speed_copies(
    table: pd.DataFrame,
    arrays: list[np.ndarray],
    frontend: FrontendConfig,
    speeds: Sequence[float],
    progress: bool = False,
) -> Read:
    """A training set's rows and log-mels, then one more copy of them per speed.

    The returned table has a ``speed`` column (1.0 for the clips as recorded); the copies are read
    through the cache. Its skips are the files a perturbed read could not use (none when the clean
    read succeeded: the same audio is decoded), so that nothing is dropped unsaid.
    """
    parts, items, skipped = [table.assign(**{SPEED_COLUMN: 1.0})], list(arrays), []
    for speed in speeds:
        cached = load_features(
            table["path"].tolist(), frontend, WavePerturbation(speed=speed), progress=progress
        )
        parts.append(table.iloc[cached.kept].assign(**{SPEED_COLUMN: float(speed)}))
        items += cached.arrays
        skipped += cached.skipped
    return pd.concat(parts, ignore_index=True), items, skipped
