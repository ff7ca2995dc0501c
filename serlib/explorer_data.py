"""What the confusion explorer shows, as plain functions on predictions tables (no widgets).

A predictions table has one row per clip: ``path, label, pred`` and optionally ``speaker`` and
``prob_<class>`` per class (the layout of a run folder's ``predictions/<set>.csv``). From it the
explorer takes the clips of one confusion-matrix cell (``cell_clips``), puts them in an order
(``sort_clips``: most or least confident first, or a seeded shuffle), cuts them into pages
(``clip_page``), looks a clip up under another run (``clip_under_run``) and scores each speaker
(``per_speaker_recall``). Keeping this apart from the ipywidgets layout means every behaviour can
be tested, and reused by the static picture in ``serlib.explorer_figure``, without a browser.

For synthetic clips, ``SynthParameters`` reads the cue parameters each clip was made with from the
corpus's ``synth_metadata.csv``; real corpora have no such file, and nothing is shown for them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from serlib import metrics
from serlib.errors import UserError
from serlib.synth.corpus import METADATA_FILE

REQUIRED_COLUMNS = ("path", "label", "pred")
"""Columns every predictions table needs; ``speaker`` and ``prob_<class>`` are optional."""

SET_ORDER = ("source_test", "target_test", "target_all", "source_val")
"""How a run folder's evaluation sets are offered: test sets first, the rest alphabetically after."""

ORDERS = ("most confident", "least confident", "random")
"""How a cell's clips can be ordered; "random" is a shuffle drawn with an explicit seed."""

ALL_SPEAKERS = ""
"""The speaker filter's value for "every speaker"."""


# ----- predictions tables -----------------------------------------------------------------------


def predictions_confusion(predictions: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """Count clips per (true label, predicted label); rows = true, columns = predicted."""
    index = {label: i for i, label in enumerate(labels)}
    if predictions.empty:
        return np.zeros((len(labels), len(labels)), dtype=np.int64)
    return metrics.confusion_matrix(
        predictions["label"].map(index).to_numpy(dtype=np.int64),
        predictions["pred"].map(index).to_numpy(dtype=np.int64),
        num_classes=len(labels),
    )


def check_predictions(predictions: pd.DataFrame, labels: Sequence[str], where: str) -> pd.DataFrame:
    """Validate one predictions table and return a clean copy with string labels.

    Every true and predicted label must be one of ``labels``: a mismatch means the table and the
    label list come from different runs or schemes, and the matrix would silently be wrong.
    """
    if not isinstance(predictions, pd.DataFrame):
        raise TypeError(f"{where}: predictions must be a pandas DataFrame, got {type(predictions)}")
    missing = [column for column in REQUIRED_COLUMNS if column not in predictions.columns]
    if missing:
        raise UserError(
            f"{where}: predictions lack column(s) {missing}; they have {list(predictions.columns)}"
        )
    if predictions.empty:
        raise UserError(f"{where}: predictions table has no rows")
    table = predictions.reset_index(drop=True).copy()
    for column in REQUIRED_COLUMNS:
        if table[column].isna().any():
            raise UserError(f"{where}: column {column!r} has missing values")
        table[column] = table[column].astype(str)
    table["speaker"] = table["speaker"].fillna("").astype(str) if "speaker" in table.columns else ""
    unknown = sorted((set(table["label"]) | set(table["pred"])) - set(labels))
    if unknown:
        raise UserError(f"{where}: labels {unknown} are not among the run's labels {list(labels)}")
    return table


def check_runs(
    runs: Mapping[str, Mapping[str, pd.DataFrame]],
    labels: Sequence[str] | Mapping[str, Sequence[str]],
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict[str, list[str]]]:
    """Validate run name -> set name -> predictions, and the labels (shared, or per run).

    Returns clean copies: (run -> set -> checked table, run -> label list).
    """
    if not runs:
        raise UserError("ConfusionExplorer needs at least one run")
    if isinstance(labels, str):
        raise TypeError(f"labels must be a list of class names, not the string {labels!r}")
    checked: dict[str, dict[str, pd.DataFrame]] = {}
    run_labels: dict[str, list[str]] = {}
    for run, sets in runs.items():
        run = str(run)
        if isinstance(labels, Mapping) and run not in labels:
            raise UserError(f"no labels given for run {run!r}")
        names = [str(label) for label in (labels[run] if isinstance(labels, Mapping) else labels)]
        if len(names) < 2 or len(set(names)) != len(names):
            raise UserError(f"run {run!r}: labels must be at least 2 distinct names")
        if not sets:
            raise UserError(f"run {run!r} has no evaluation sets")
        run_labels[run] = names
        checked[run] = {
            str(name): check_predictions(table, names, f"run {run!r}, set {name!r}")
            for name, table in sets.items()
        }
    return checked, run_labels


def check_compare(labels: Mapping[str, Sequence[str]], run: str, compare: str) -> None:
    """``compare`` must be another run with the same labels (so a cell means the same in both)."""
    if compare not in labels:
        raise UserError(f"compare={compare!r} is not one of the runs {list(labels)}")
    if compare == run:
        raise UserError(f"compare={compare!r} is the first run; name another run to compare")
    if list(labels[compare]) != list(labels[run]):
        raise UserError(
            f"compare={compare!r} uses labels {list(labels[compare])} but {run!r} uses "
            f"{list(labels[run])}; compare runs of the same label scheme"
        )


def read_run_predictions(run_dir: str | Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """Read a run folder's labels (``config.json``) and its ``predictions/<set>.csv`` tables."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.json)")
    try:
        labels = json.loads(config_path.read_text())["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{config_path}: cannot read the run's labels ({error!r})") from None
    files = sorted(
        (run_dir / "predictions").glob("*.csv"),
        key=lambda file: (
            SET_ORDER.index(file.stem) if file.stem in SET_ORDER else len(SET_ORDER),
            file.stem,
        ),
    )
    if not files:
        raise UserError(f"{run_dir}: no predictions/<set>.csv (evaluate the run first)")
    text_columns = {"path": str, "speaker": str, "label": str, "pred": str}
    sets = {file.stem: pd.read_csv(file, dtype=text_columns) for file in files}
    return [str(label) for label in labels], sets


# ----- one cell's clips -------------------------------------------------------------------------


def speakers_of(*tables: pd.DataFrame) -> list[str]:
    """The speakers found in any of the tables, sorted; clips without a speaker are left out."""
    found: set[str] = set()
    for table in tables:
        if "speaker" in table.columns:
            found |= {str(speaker) for speaker in table["speaker"] if str(speaker)}
    return sorted(found)


def only_speaker(predictions: pd.DataFrame, speaker: str = ALL_SPEAKERS) -> pd.DataFrame:
    """The rows of one speaker (``ALL_SPEAKERS``, the empty string, keeps every row)."""
    if speaker == ALL_SPEAKERS:
        return predictions
    if "speaker" not in predictions.columns:
        return predictions.iloc[:0]
    return predictions[predictions["speaker"].astype(str) == str(speaker)]


def cell_clips(
    predictions: pd.DataFrame, true_label: str, predicted: str, speaker: str = ALL_SPEAKERS
) -> pd.DataFrame:
    """The clips with this true label and this prediction (of one speaker, if given), table order."""
    table = only_speaker(predictions, speaker)
    return table[(table["label"] == true_label) & (table["pred"] == predicted)]


def confidence(clips: pd.DataFrame) -> pd.Series:
    """Each clip's probability for the class it was assigned (NaN where the table has none)."""
    values = [clip.get(f"prob_{clip['pred']}", np.nan) for clip in clips.to_dict("records")]
    return pd.Series(pd.to_numeric(values, errors="coerce"), index=clips.index, dtype=float)


def check_order(order: str) -> str:
    """``order`` must be one of ``ORDERS``."""
    if order not in ORDERS:
        raise UserError(f"order must be one of {list(ORDERS)}, got {order!r}")
    return order


def sort_clips(clips: pd.DataFrame, order: str = "most confident", seed: int = 0) -> pd.DataFrame:
    """Put a cell's clips in ``order``: by confidence (clips without one last), or shuffled.

    Ties keep the table order, so the same table always gives the same listing; "random" draws its
    permutation from ``seed`` alone, so a listing can be reproduced by naming its seed.
    """
    check_order(order)
    if order == "random":
        permutation = np.random.default_rng(seed).permutation(len(clips))
        return clips.iloc[permutation]
    known = confidence(clips)
    ranked = known if order == "least confident" else -known
    keys = pd.DataFrame(
        {
            "missing": ranked.isna().to_numpy(),
            "rank": ranked.to_numpy(),
            "position": range(len(clips)),
        }
    )
    keys = keys.sort_values(["missing", "rank", "position"], kind="stable")
    return clips.iloc[keys["position"].to_numpy()]


def page_count(n_clips: int, page_size: int) -> int:
    """How many pages ``n_clips`` fill (at least one, so an empty cell still has a page)."""
    if page_size < 1:
        raise UserError(f"page_size must be at least 1, got {page_size}")
    return max(1, math.ceil(n_clips / page_size))


def clip_page(clips: pd.DataFrame, page: int, page_size: int) -> pd.DataFrame:
    """Page ``page`` (0 = the first) of ``clips``, ``page_size`` clips per page."""
    pages = page_count(len(clips), page_size)
    if not 0 <= page < pages:
        raise UserError(
            f"page must be between 0 and {pages - 1} for {len(clips)} clips, got {page}"
        )
    return clips.iloc[page * page_size : (page + 1) * page_size]


def clip_under_run(predictions: pd.DataFrame, path: str) -> dict[str, object] | None:
    """What another run predicted for the clip at ``path``: label, prediction, confidence.

    None when that run's table has no such clip (another split, another corpus).
    """
    rows = predictions[predictions["path"] == str(path)]
    if rows.empty:
        return None
    first = rows.iloc[:1]
    row = first.iloc[0]
    return {"label": row["label"], "pred": row["pred"], "confidence": confidence(first).iloc[0]}


def per_speaker_recall(predictions: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Per speaker: clip count, the recall of each class and their mean (UA).

    A class a speaker never has is NaN (undefined, not 0), and UA averages only the defined ones,
    exactly like ``serlib.metrics`` does for a whole set.
    """
    columns = ["clips", *labels, "ua"]
    rows = {}
    for speaker in speakers_of(predictions):
        table = only_speaker(predictions, speaker)
        recalls = metrics.per_class_recall(predictions_confusion(table, labels))
        ua = float(np.nanmean(recalls)) if np.isfinite(recalls).any() else np.nan
        rows[speaker] = [len(table), *recalls, ua]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame.index.name = "speaker"
    return frame.astype({"clips": int})


def biggest_confusion(counts: np.ndarray, labels: Sequence[str]) -> tuple[str, str]:
    """The off-diagonal cell with the most clips (first in row order on a tie), as (true, predicted).

    When every clip is right (no off-diagonal clip), the fullest cell instead: some cell to show.
    """
    counts = np.asarray(counts)
    off_diagonal = counts.copy()
    np.fill_diagonal(off_diagonal, -1)
    chosen = off_diagonal if off_diagonal.max() > 0 else counts
    row, column = np.unravel_index(int(np.argmax(chosen)), chosen.shape)
    return labels[row], labels[column]


# ----- how a synthetic clip was made ------------------------------------------------------------

CUE_TEXT = {
    "cue_f0_shift_st": ("pitch", "{:+.1f} st"),
    "cue_f0_range": ("pitch range", "x{:.2f}"),
    "cue_f0_slope_st_s": ("pitch slope", "{:+.1f} st/s"),
    "cue_final_rise": ("rising ends", "{:.0%}"),
    "cue_loudness_db": ("loudness", "{:+.1f} dB"),
    "cue_loudness_range": ("loudness range", "x{:.2f}"),
    "cue_rate": ("rate", "x{:.2f}"),
    "cue_pause": ("pauses", "x{:.2f}"),
    "cue_tilt_db_oct": ("tilt", "{:+.1f} dB/oct"),
    "cue_jitter": ("jitter", "x{:.2f}"),
    "cue_shimmer": ("shimmer", "x{:.2f}"),
    "cue_breathiness_db": ("breathiness", "{:+.1f} dB"),
    "cue_formant_shift": ("formants", "{:+.0%}"),
    "cue_articulation": ("articulation", "x{:.2f}"),
    "cue_tremor_st": ("tremor", "{:.2f} st"),
}
"""A cue column of ``synth_metadata.csv`` -> (name a student reads, how its value is written)."""

MADE_AS = ("emotion", "intensity", "intensity_value")
"""The other columns shown: the emotion rendered and how strongly."""

SEARCH_DEPTH = 8
"""How many folders above a clip are searched for the corpus's ``synth_metadata.csv`` (an
IEMOCAP-layout clip sits six folders below its corpus root)."""


class SynthParameters:
    """Looks up the generation parameters of synthetic clips, one ``synth_metadata.csv`` per corpus.

    The file sits at the corpus root and keys each clip by its path relative to that root, so a
    clip's own folders are searched upwards for it. Each file is read once per lookup object.
    """

    def __init__(self, search_depth: int = SEARCH_DEPTH):
        self.search_depth = int(search_depth)
        self._tables: dict[Path, pd.DataFrame | None] = {}
        self._roots: dict[Path, Path | None] = {}

    def corpus_root(self, path: str | Path) -> Path | None:
        """The folder above ``path`` that holds a ``synth_metadata.csv``, or None (a real corpus)."""
        folder = Path(path).parent
        if folder not in self._roots:
            found = [
                parent
                for parent in [folder, *folder.parents][: self.search_depth]
                if (parent / METADATA_FILE).is_file()
            ]
            self._roots[folder] = found[0] if found else None
        return self._roots[folder]

    def lookup(self, path: str | Path) -> dict[str, object] | None:
        """The emotion, intensity and ``cue_*`` values the clip was made with, or None."""
        root = self.corpus_root(path)
        if root is None:
            return None
        if root not in self._tables:
            self._tables[root] = _read_metadata(root / METADATA_FILE)
        table = self._tables[root]
        key = Path(path).relative_to(root).as_posix()
        if table is None or key not in table.index:
            return None
        row = table.loc[key]
        shown = [column for column in table.columns if column in MADE_AS or column in CUE_TEXT]
        return {column: row[column] for column in shown if pd.notna(row[column])}


def _read_metadata(file: Path) -> pd.DataFrame | None:
    """The metadata table indexed by clip path; None if it cannot be read (then nothing is shown:
    the parameters are a help for listening, not something the explorer needs to work)."""
    try:
        table = pd.read_csv(file, dtype={"path": str})
    except (OSError, ValueError):
        return None
    if "path" not in table.columns:
        return None
    return table.drop_duplicates("path").set_index("path")


def describe_synth_parameters(parameters: Mapping[str, object] | None) -> str:
    """One line a student reads: "made as angry (strong, 1.23): pitch +4.0 st, rate x1.10, ..."."""
    if not parameters:
        return ""
    emotion = parameters.get("emotion", "?")
    strength = [str(parameters[key]) for key in ("intensity",) if key in parameters]
    if "intensity_value" in parameters:
        strength.append(f"{float(parameters['intensity_value']):.2f}")
    made_as = f"made as {emotion}" + (f" ({', '.join(strength)})" if strength else "")
    cues = [
        f"{name} {style.format(float(parameters[column]))}"
        for column, (name, style) in CUE_TEXT.items()
        if column in parameters
    ]
    return made_as + (": " + ", ".join(cues) if cues else "")
