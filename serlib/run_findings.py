"""Findings about one or two runs, in sentences: the pieces the notebooks' findings are made of.

Each function reads what it needs from run folders (metrics.json, history.csv, config.json) and
returns one sentence phrased for every outcome: a change that could read "rose" can also read "did
not change" (within the tolerances of ``serlib.phrasing``) or "fell". ``serlib.findings`` puts them
together per notebook. A ``run`` is a run folder (str or Path); sentences name it by its course name
(``course.COURSE_RUNS``) or, outside the course, by its folder's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from serlib.course_plan import run_label
from serlib.errors import UserError
from serlib.models.dann import grl_coefficient
from serlib.phrasing import (
    PAD_SATURATED,
    PAD_TOLERANCE,
    RECALL_TOLERANCE,
    UA_TOLERANCE,
    direction,
    emotion,
    join_words,
    percent,
    points,
    set_words,
    share,
    signed_points,
    tolerance_words,
)
from serlib.results import read_config, read_history, read_metrics

Run = str | Path

COLLAPSE_SHARE = 0.9
"""A model that sends this share of a set's clips to one class has collapsed onto that class."""

DOMAIN_CHANCE_BAND = 0.1
"""A domain head within 0.1 of 50 % accuracy cannot tell the domains apart (it is confused)."""


# ----- reading a run ----------------------------------------------------------------------------


def name_of(run: Run) -> str:
    """What a sentence calls a run: its course name ("DANN-CRNN") or its folder's name."""
    return run_label(Path(run).name, Path(run))


def scores_of(run: Run, set_name: str) -> dict:
    """One evaluation set's entry of a run's metrics.json, with a clear error if the run lacks it."""
    metrics = read_metrics(run)
    if set_name not in metrics or not isinstance(metrics[set_name], dict):
        sets = [key for key, value in metrics.items() if isinstance(value, dict) and "ua" in value]
        raise UserError(f"{run}: no {set_name!r} scores in metrics.json; it has {sets}, use one")
    return metrics[set_name]


def ua_of(run: Run, set_name: str) -> float:
    """A run's UA on one evaluation set."""
    return float(scores_of(run, set_name)["ua"])


def chance_of(run: Run, set_name: str) -> float:
    """Chance UA (1 / number of classes) for the run's label scheme."""
    return 1.0 / len(scores_of(run, set_name)["labels"])


def has_results(run: Run | None) -> bool:
    """The run folder exists and holds metrics.json (it finished)."""
    return run is not None and (Path(run) / "metrics.json").is_file()


def as_history(history: pd.DataFrame | Run) -> tuple[pd.DataFrame, str]:
    """A history table and who it belongs to, from a table or a run folder."""
    if isinstance(history, pd.DataFrame):
        return history, "the domain head"
    return read_history(history), f"{name_of(history)}'s domain head"


# ----- granular findings ------------------------------------------------------------------------


def collapse(run: Run, set_name: str = "target_test") -> str:
    """How much of a set one predicted class takes: a collapsed model sends (nearly) all to one."""
    scores = scores_of(run, set_name)
    confusion = np.asarray(scores["confusion"], dtype=float)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    top = int(predicted.argmax())
    taken, truth = predicted[top] / predicted.sum(), actual[top] / actual.sum()
    label, clips = emotion(scores["labels"][top]), f"{set_words(set_name)} clips"
    if taken >= COLLAPSE_SHARE:
        return (
            f"{name_of(run)} sends {share(taken)} of {clips} to {label} ({label} is {share(truth)} "
            "of them): it has collapsed onto one label"
        )
    if taken > 0.5:
        return (
            f"{name_of(run)} sends {share(taken)} of {clips} to {label}, more than half, while "
            f"{label} is {share(truth)} of them"
        )
    return (
        f"no class takes more than half of {name_of(run)}'s {clips} (the most predicted, {label}, "
        f"takes {share(taken)}; {label} is {share(truth)} of them)"
    )


def top_confusions(run: Run, set_name: str, k: int = 2) -> str:
    """The ``k`` largest off-diagonal entries of the row-normalised confusion matrix, named."""
    scores = scores_of(run, set_name)
    confusion = np.asarray(scores["confusion"], dtype=float)
    labels, totals = scores["labels"], confusion.sum(axis=1)
    found = [
        (confusion[true, pred] / totals[true], labels[true], labels[pred])
        for true in range(len(labels))
        for pred in range(len(labels))
        if true != pred and totals[true] > 0 and confusion[true, pred] > 0
    ]
    found.sort(key=lambda item: -item[0])
    where = f"on the {set_words(set_name)} set"
    if not found:
        return f"{name_of(run)} confuses no class {where}: every clip gets its own label"
    parts = [
        f"{emotion(true)} -> {emotion(pred)} ({share(rate)} of {emotion(true)} clips)"
        for rate, true, pred in found[:k]
    ]
    largest = "largest confusion is" if len(parts) == 1 else "largest confusions are"
    return f"{where}, {name_of(run)}'s {largest} {join_words(parts)}"


def ua_change(before: Run, after: Run, set_name: str = "target_test") -> str:
    """How ``after``'s UA on a set compares with ``before``'s: rose, fell or did not change."""
    old, new = ua_of(before, set_name), ua_of(after, set_name)
    what = f"{set_words(set_name)} UA"
    scores = f"{percent(new)} against {percent(old)} for {name_of(before)}"
    moved = direction(old, new, UA_TOLERANCE)
    if moved == "same":
        return f"{name_of(after)} did not change {what} ({scores}, {tolerance_words()})"
    verb = "raised" if moved == "up" else "lowered"
    return f"{name_of(after)} {verb} {what} by {points(new - old)} ({scores})"


def gap_recovered(
    source_only: Run, adapted: Run, oracle: Run, set_name: str = "target_test"
) -> str:
    """The share of the gap between source-only training and the oracle that adaptation closed.

    The oracle is one run trained on a few labelled target speakers: a method can pass it on a
    seed, and a share above 100 % would read as nonsense, so that case is said in words.
    """
    base, new, best = (ua_of(run, set_name) for run in (source_only, adapted, oracle))
    gap, change = best - base, new - base
    what, adapted_name = f"{set_words(set_name)} UA", name_of(adapted)
    ends = (
        f"between {name_of(source_only)} at {percent(base)} and the oracle at {percent(best)} "
        "(an upper bound trained on target labels)"
    )
    if gap < UA_TOLERANCE:
        return (
            f"the oracle is not above {name_of(source_only)} on {what} ({percent(best)} against "
            f"{percent(base)}): there is no gap for {adapted_name} to recover"
        )
    if direction(base, new, UA_TOLERANCE) == "same":
        return (
            f"{adapted_name} did not change the gap {ends}: {percent(new)} {what}, "
            f"{tolerance_words()} of source-only, so it recovered none of it"
        )
    if direction(best, new, UA_TOLERANCE) == "up":  # one run's oracle is a reference, not a law
        return (
            f"{adapted_name} went past the oracle: {percent(new)} {what} against the oracle's "
            f"{percent(best)} (trained on labelled target adaptation speakers), up from "
            f"{name_of(source_only)}'s {percent(base)}; this oracle run is no ceiling, so no share "
            "of the gap is given"
        )
    if change > 0:
        return f"{adapted_name} recovered {share(change / gap)} of the gap {ends}: {percent(new)} {what}"
    return (
        f"{adapted_name} lost ground on the gap {ends}: {what} fell to {percent(new)}, "
        f"{share(-change / gap)} of the gap in the wrong direction"
    )


def source_cost(source_only: Run, adapted: Run) -> str:
    """What adaptation cost (or gained) on the source test speakers."""
    base, new = ua_of(source_only, "source_test"), ua_of(adapted, "source_test")
    scores = f"{percent(new)} against {percent(base)}"
    moved = direction(base, new, UA_TOLERANCE)
    adapted_name, base_name = name_of(adapted), name_of(source_only)
    if moved == "same":
        return (
            f"{adapted_name} kept {base_name}'s source test UA ({scores}, {tolerance_words()}): "
            "adapting cost nothing on the source"
        )
    if moved == "down":
        return (
            f"{adapted_name}'s source test UA is {points(new - base)} below {base_name}'s "
            f"({scores}): adapting cost source accuracy"
        )
    return (
        f"{adapted_name}'s source test UA is {points(new - base)} above {base_name}'s ({scores}): "
        "adapting cost no source accuracy here"
    )


def proxy_a_distance(before: float, after: float, what: str) -> str:
    """A proxy A-distance before and after a change, saying when it is saturated and says nothing."""
    values = f"{before:.3f} before, {after:.3f} after; 0 = indistinguishable, 2 = separable"
    if before >= PAD_SATURATED and after >= PAD_SATURATED:
        return (
            f"the proxy A-distance ({what}) is saturated at 2.0 ({values}): the domains stay "
            "perfectly separable, so this measure cannot show whether they moved closer"
        )
    moved = direction(before, after, PAD_TOLERANCE)
    if moved == "same":
        return f"the proxy A-distance ({what}) did not change ({values}; within {PAD_TOLERANCE})"
    if moved == "down":
        return f"the proxy A-distance ({what}) fell ({values}): the domains became harder to tell apart"
    return f"the proxy A-distance ({what}) rose ({values}): the domains became easier to tell apart"


def ramp_progress(cap: float, steps: int = 40) -> float | None:
    """The training progress p at which ``grl_coefficient`` first reaches ``cap`` (None: never)."""
    if cap <= 0:
        return 0.0
    if grl_coefficient(1.0, cap=cap) < cap:
        return None
    low, high = 0.0, 1.0
    for _ in range(steps):  # bisection on the ramp, which rises monotonically
        middle = (low + high) / 2
        low, high = (middle, high) if grl_coefficient(middle, cap=cap) < cap else (low, middle)
    return high


def grl_ramp(history: pd.DataFrame | Run, cap: float) -> str:
    """When the gradient-reversal coefficient reached its cap, in training progress and in epochs."""
    table, _ = as_history(history)
    if "grl_coefficient" not in table.columns or table["grl_coefficient"].isna().all():
        return "this run has no gradient reversal (no domain head)"
    reached = ramp_progress(cap)
    if reached == 0.0:
        return f"the cap is {cap:g}: the reversal coefficient stays 0, so the domain head never pushes the encoder"
    last = float(table["grl_coefficient"].iloc[-1])
    if reached is None:
        return (
            f"the cap of {cap:g} is above what the ramp 2/(1+exp(-10p))-1 reaches, so the reversal "
            f"coefficient grew throughout training (to {last:.2f} in the last epoch)"
        )
    opening = (
        f"the reversal coefficient follows 2/(1+exp(-10p))-1 and reaches its cap of {cap:g} at "
        f"p = {reached:.2f}, {share(reached)} of the way through training"
    )
    at_cap = np.flatnonzero(table["grl_coefficient"].to_numpy() >= cap - 1e-6)
    epochs = len(table)
    if at_cap.size == 0:
        return (
            f"{opening}; this run stopped after {epochs} epochs, before it got there ({last:.2f})"
        )
    epoch = int(at_cap[0]) + 1
    rest = (
        "so it was constant for the rest of training" if epoch < epochs else "the run's last epoch"
    )
    return (
        f"{opening}; in this run it was at the cap by the end of epoch {epoch} of {epochs}, {rest}"
    )


def domain_accuracy(history: pd.DataFrame | Run) -> str:
    """Whether the domain head was confused (near 50 %), fooled (well below) or never fooled."""
    table, head = as_history(history)
    column = "train_domain_acc"
    if column not in table.columns or table[column].isna().all():
        return "this run has no domain head"
    accuracy = table[column].dropna().to_numpy(dtype=float)
    final, low, high = accuracy[-1], accuracy.min(), accuracy.max()
    span = f"from {low:.2f} to {high:.2f} over {len(accuracy)} epochs"
    swung = high - low > 2 * DOMAIN_CHANCE_BAND + 0.2 and low < 0.5 < high
    if low > 0.5 + DOMAIN_CHANCE_BAND:
        return (
            f"{head} was never fooled: its training accuracy stayed well above 0.5 ({span}, "
            f"{final:.2f} at the end), so the encoder did not hide the domain from it"
        )
    if abs(final - 0.5) <= DOMAIN_CHANCE_BAND:
        verdict = f"ended confused: {final:.2f}, near 0.5, it cannot tell the domains apart"
    elif final > 0.5:
        verdict = f"ended well above 0.5 ({final:.2f}): by the end it tells the domains apart"
    else:
        verdict = (
            f"ended fooled: {final:.2f}, well below 0.5, it is confidently wrong, which means the "
            "domains are still separable, only with their names swapped"
        )
    swing = f"; it swung {span}" if swung else f" ({span})"
    return f"{head} {verdict}{swing}"


def per_class_shift(source_only: Run, adapted: Run, set_name: str) -> str:
    """Which classes' recall moved (by at least ``RECALL_TOLERANCE``) between two runs."""
    old, new = scores_of(source_only, set_name), scores_of(adapted, set_name)
    where = f"{name_of(adapted)}'s {set_words(set_name)} recall"
    if old["confusion"] == new["confusion"]:
        return (
            f"{name_of(adapted)}'s {set_words(set_name)} confusion matrix is identical to "
            f"{name_of(source_only)}'s: no class moved"
        )
    rose, fell, same = [], [], []
    for label in new["labels"]:
        before, after = old["recall"].get(label), new["recall"].get(label)
        if before is None or after is None:
            continue
        moved = direction(before, after, RECALL_TOLERANCE)
        words = (
            f"{emotion(label)} ({signed_points(after - before)}: {share(before)} -> {share(after)})"
        )
        {"up": rose, "down": fell, "same": same}[moved].append(
            words if moved != "same" else emotion(label)
        )
    parts = []
    if rose:
        parts.append(f"rose for {join_words(rose)}")
    if fell:
        parts.append(f"fell for {join_words(fell)}")
    if same:
        parts.append(f"stayed {tolerance_words(RECALL_TOLERANCE)} for {join_words(same)}")
    return f"compared with {name_of(source_only)}, {where} {join_words(parts)}"


def compare_runs(runs: Mapping[str, Run], set_name: str) -> str:
    """The runs ranked by UA on one set; runs within ``UA_TOLERANCE`` of each other are a tie."""
    scored = sorted(
        ((ua_of(run, set_name), name) for name, run in runs.items() if has_results(run)),
        key=lambda item: -item[0],
    )
    missing = [name for name, run in runs.items() if not has_results(run)]
    if not scored:
        return f"no run to rank on the {set_words(set_name)} set"
    groups: list[list[tuple[float, str]]] = []
    for item in scored:
        if groups and groups[-1][0][0] - item[0] < UA_TOLERANCE:
            groups[-1].append(item)
        else:
            groups.append([item])
    words = []
    for group in groups:
        text = join_words([f"{name} at {percent(ua)}" for ua, name in group])
        words.append(f"{text}, tied ({tolerance_words()})" if len(group) > 1 else text)
    chances = {chance_of(run, set_name) for run in runs.values() if has_results(run)}
    chance = f", chance {percent(chances.pop())}" if len(chances) == 1 else ""
    ranking = f"ranked by {set_words(set_name)} UA{chance}: " + "; then ".join(words)
    return ranking + (f" (not run: {join_words(missing)})" if missing else "")


def domain_drop(run: Run) -> str:
    """What the change of domain cost one run: source test UA against target test UA."""
    source, target = ua_of(run, "source_test"), ua_of(run, "target_test")
    chance = chance_of(run, "target_test")
    scores = f"{percent(source)} UA on source test speakers and {percent(target)} on target test speakers"
    moved = direction(source, target, UA_TOLERANCE)
    if moved == "down":
        verdict = f"the change of domain costs {points(target - source)}"
    elif moved == "same":
        verdict = f"the two are the same ({tolerance_words()}): no cost of the domain shift"
    else:
        verdict = f"the target is {points(target - source)} higher: no cost of the domain shift"
    at_chance = direction(chance, target, UA_TOLERANCE) == "same"
    return f"{name_of(run)} scores {scores}: {verdict}" + (
        f"; on the target it is at chance ({percent(chance)})" if at_chance else ""
    )


def oracle_gap(source_only: Run, oracle: Run) -> str:
    """How far the oracle (trained on target labels, an upper bound) is above source-only training."""
    base, best = ua_of(source_only, "target_test"), ua_of(oracle, "target_test")
    opening = (
        f"the oracle CRNN, trained on labelled target adaptation speakers (an upper bound, not a "
        f"method), scores {percent(best)} UA on the same target test speakers"
    )
    if direction(base, best, UA_TOLERANCE) == "up":
        return (
            f"{opening}: {points(best - base)} above {name_of(source_only)}, the gap that adaptation "
            "can at best recover"
        )
    return f"{opening}: not above {name_of(source_only)} ({percent(base)}), so there is no gap to recover"


def proxy_a_distance_of(run: Run) -> float | None:
    """The proxy A-distance between a run's source and target test embeddings (None if absent)."""
    entry = read_metrics(run).get("proxy_a_distance")
    return None if not entry else float(entry["value"])


def encoder_note(run: Run) -> str:
    """What the Wav2Vec2 runs' encoder is, and whether its scores say anything about Wav2Vec2."""
    config = read_config(run)
    label, mode = config.get("encoder_label") or config.get("encoder"), config.get("w2v2_mode")
    how = {"frozen": "frozen encoder features", "finetune": "a fine-tuned encoder"}.get(mode, mode)
    if "(tiny" in name_of(run):
        return (
            f"the W2V2 runs use {label} with {how}: a random-feature baseline, so their scores "
            "say nothing about what a pretrained Wav2Vec2 learns"
        )
    return f"the W2V2 runs use {label} with {how}"


def recall_drop(run: Run) -> str:
    """Which classes a run loses most on, from its source test to its target test speakers."""
    source, target = (
        scores_of(run, "source_test")["recall"],
        scores_of(run, "target_test")["recall"],
    )
    drops = sorted(
        (target[label] - source[label], label)
        for label in source
        if source.get(label) is not None and target.get(label) is not None
    )
    parts = [
        f"{emotion(label)} ({share(source[label])} -> {share(target[label])})" for _, label in drops
    ]
    return f"{name_of(run)}'s recall from source test to target test speakers, worst first: {join_words(parts)}"


def label_scheme_finding(four_class: Run, seed5: Run) -> str:
    """The two label schemes' target UA measured against their own chance levels."""
    parts = []
    for run in (four_class, seed5):
        ua, chance = ua_of(run, "target_test"), chance_of(run, "target_test")
        scheme = read_config(run)["scheme"]
        parts.append(
            f"{ua / chance:.2f} x chance with {scheme} ({percent(ua)} against {percent(chance)})"
        )
    return "measured against chance, target test UA is " + join_words(parts)


def gap_or_change(source_only: Run, adapted: Run, oracle: Run | None) -> str:
    """The share of the gap recovered when there is an oracle, else the plain change of target UA."""
    if has_results(oracle):
        return gap_recovered(source_only, adapted, oracle)
    return ua_change(source_only, adapted, "target_test")


# ----- notebook-level findings --------------------------------------------------------------------
