"""A run folder's records as tables: its training history, its metrics, and one table of many runs.

Every run folder (``serlib train`` or a notebook's ``course.course_run``) holds ``history.csv`` (one
row per epoch) and ``metrics.json`` (one entry per evaluation set). The notebooks compare runs by
reading those files back, never by keeping models in memory, so a notebook can report on runs that
another notebook, or the command line, trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from serlib.config import KEEP_RULES, REFIT_RULE
from serlib.errors import UserError
from serlib.train import epoch_line

RESULT_SETS = {"source_test": "source test", "target_test": "target test"}
"""Evaluation sets every course run reports, and how tables name them."""

RESULT_COLUMNS = ["model", "set", "ua", "wa", "macro_f1", "n"]
"""The columns of a results table; scores are fractions in [0, 1]."""


def read_history(run: str | Path) -> pd.DataFrame:
    """A run folder's ``history.csv``: one row per epoch (losses, scores, learning rates, GRL)."""
    path = Path(run) / "history.csv"
    if not path.is_file():
        raise UserError(f"{run}: no history.csv (train the run first)")
    return pd.read_csv(path)


EPOCH_COLUMNS = ("epoch", "train_loss", "seconds")
"""The history.csv columns an epoch line is written from (``serlib.train.epoch_line``), with
``val_ua`` and ``val_wa`` where the run had validation speakers (a refit run has none)."""


def trained_epochs(run: str | Path) -> list[str]:
    """The epoch lines a finished run printed while it trained, read back from its folder.

    A notebook that finds its run already trained (by ``make course``, which trains the runs
    ahead, or by an earlier notebook) still shows how the run learned, epoch by epoch, with the
    star on each new best validation UA (on every epoch, for a run that kept its last) and the
    early stop, as if it had trained it itself.
    """
    folder = Path(run)
    has_history = (folder / "history.csv").is_file()
    history = read_history(folder) if has_history else pd.DataFrame()
    if not set(EPOCH_COLUMNS) <= set(history.columns):
        return [f"(no readable history.csv in {folder.name})"]
    selection = read_metrics(folder).get("selection", {})
    # each epoch replaced the kept weights
    keep_last = selection.get("rule") in (KEEP_RULES["last"], REFIT_RULE)
    lines, best = [], float("-inf")
    for row in history.to_dict("records"):
        row["epoch"] = int(row["epoch"])
        score = row.get("val_ua", float("-inf"))
        lines.append(epoch_line(row, kept=keep_last or score > best))
        best = max(best, score)
    if selection.get("stopped_early"):
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        lines.append(
            f"early stop: no better validation UA for {config['train']['patience']} epochs"
        )
    return lines


def read_metrics(run: str | Path) -> dict:
    """A run folder's ``metrics.json`` (one entry per evaluation set), with a clear error if absent."""
    path = Path(run) / "metrics.json"
    if not path.is_file():
        raise UserError(f"{run}: no metrics.json (train and evaluate the run first)")
    return json.loads(path.read_text())


def read_config(run: str | Path) -> dict:
    """A run folder's ``config.json`` (its settings and what it holds), with a clear error if absent."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise UserError(f"{run}: no config.json (not a run folder, or its training never started)")
    return json.loads(path.read_text(encoding="utf-8"))


def is_oracle(run: str | Path) -> bool:
    """The run trained on labelled target speakers (an upper bound): it has no source sets."""
    path = Path(run) / "config.json"
    return path.is_file() and bool(json.loads(path.read_text(encoding="utf-8")).get("oracle"))


def results_table(runs: dict[str, str | Path], sets: dict[str, str] | None = None) -> pd.DataFrame:
    """A tidy table (model, set, ua, wa, macro_f1, n) from run folders' ``metrics.json``.

    ``runs`` maps the name a table should show to a run folder; ``sets`` maps the metrics.json key
    of each evaluation set to its display name. A missing run or set is left out of the table and
    listed in ``table.attrs["missing"]`` rather than failing, so a course with one model skipped
    still gets its table. An oracle run has no source sets by design: those are not "missing".
    """
    sets = RESULT_SETS if sets is None else sets
    rows, missing = [], []
    for name, folder in runs.items():
        try:
            metrics = read_metrics(folder)
        except UserError:
            missing.append(f"{name} (no run at {folder})")
            continue
        for key, display in sets.items():
            scores = metrics.get(key)
            if not scores:
                if not (key.startswith("source_") and is_oracle(folder)):
                    missing.append(f"{name} / {display}")
                continue
            rows.append(
                {
                    "model": name,
                    "set": display,
                    "ua": scores["ua"],
                    "wa": scores["wa"],
                    "macro_f1": scores["macro_f1"],
                    "n": scores.get("n"),
                }
            )
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    table.attrs["missing"] = missing
    return table


def wide_results(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model, ``<metric> (<set>)`` columns in percent, for printing."""
    if table.empty:
        return pd.DataFrame()
    wide = table.pivot(index="model", columns="set", values=["ua", "wa", "macro_f1"])
    order = list(dict.fromkeys(table["set"]))
    wide = wide.reindex(columns=[(m, s) for s in order for m in ("ua", "wa", "macro_f1")])
    wide.columns = [f"{m.upper() if m != 'macro_f1' else 'F1'} {s}" for m, s in wide.columns]
    wide = wide.reindex(list(dict.fromkeys(table["model"])))
    return (100 * wide).round(1)


def format_results(table: pd.DataFrame) -> str:
    """The results table as text: one row per model, UA/WA/F1 in percent per evaluation set."""
    if table.empty:
        return "no results: no course run folder has a metrics.json yet"
    lines = [wide_results(table).to_string()]
    missing = table.attrs.get("missing", [])
    if missing:
        lines.append("missing: " + "; ".join(missing))
    return "\n".join(lines)
