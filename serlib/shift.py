"""Where the domain shift lives: how separable source and target clips are, at the input and after
the encoder, with the source's input statistics and with the target's own (notebook 05).

The proxy A-distance (``serlib.metrics.proxy_a_distance``) trains a linear probe to tell source
clips from target clips: 0 when it cannot, 2 when it never errs. Measured on a CRNN's 256-number
embeddings it often sits at 2.0, *saturated*: any consistent difference between the recordings (a
room's noise floor, a level) makes two few-hundred-clip sets linearly separable in 256 dimensions,
so the number cannot tell a small shift from a large one, nor show an improvement. It says more
where the probe has less to work with. This module measures it at two places of one trained run:

- the **input**: each test clip's log-mel, standardised as the model reads it, averaged over time
  (one number per mel band: the clip's average spectrum, before any learned layer);
- the **embedding**: what the encoder makes of the whole clip, just before the emotion head;

and, for both, with the target clips standardised by the source training speakers' statistics
(what every run does by default) or by the target adaptation speakers' own (their audio, never their
labels, as ``serlib train --target-statistics`` does). Source clips always use the source's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from serlib.analysis import read_predictions
from serlib.errors import UserError
from serlib.features import MelStats
from serlib.inputs import MelInputs
from serlib.metrics import proxy_a_distance
from serlib.phrasing import PAD_SATURATED, PAD_TOLERANCE, direction
from serlib.predict import predict
from serlib.protocol import CorpusRef, labelled_table
from serlib.runs import LoadedRun, load_run

PLACES = ("input log-mels", "embeddings")
"""Where the distance is measured: the model's input averaged over time, and its embedding."""

STATISTICS = ("source statistics", "target statistics")
"""Which statistics standardise the target clips (the source clips always use the source's)."""


def evaluation_clips(
    run_dir: str | Path, set_name: str, max_clips: int | None, seed: int
) -> pd.DataFrame:
    """The run's own clips of ``set_name`` (from ``predictions/<set>.csv``), at most ``max_clips``."""
    table = read_predictions(run_dir, set_name)[["path", "speaker", "label"]]
    if max_clips is not None and len(table) > max_clips:
        table = table.sample(n=max_clips, random_state=seed)
    return table.reset_index(drop=True)


def mel_inputs(run: LoadedRun) -> MelInputs:
    """The run's log-mel inputs standardised per band, or a UserError saying why not."""
    if not isinstance(run.inputs, MelInputs):
        raise UserError(
            f"{run.run_dir}: a {run.config['model']} run reads no log-mels; measure the input "
            "shift on a crnn or dann run"
        )
    if run.inputs.stats is None:
        raise UserError(
            f"{run.run_dir}: the run standardises each clip with its own statistics "
            f"(normalisation {run.inputs.normalisation!r}), so source and target statistics "
            "cannot be compared; use a run trained with the default normalisation"
        )
    return run.inputs


def target_adaptation_statistics(run: LoadedRun) -> MelStats:
    """Per-band statistics of the target adaptation speakers' audio (no label is used).

    They are the target speakers the run does not test on: its recorded ``target_all`` speakers
    minus its ``target_test`` ones, the clips a ``--target-statistics`` run fits its statistics on.
    """
    inputs = mel_inputs(run)
    if not run.config.get("target"):
        raise UserError(f"{run.run_dir}: the run has no target corpus")
    splits = run.config["splits"]
    adaptation = sorted(set(splits["target_all"]) - set(splits["target_test"]))
    if not adaptation:
        raise UserError(
            f"{run.run_dir}: no target adaptation speakers (a transductive run tests on all of "
            "them); use a speaker-disjoint run"
        )
    ref = CorpusRef.from_dict(run.config["target"])
    table, _ = labelled_table(ref, run.config["scheme"], run.labels)
    table = table[table["speaker"].isin(adaptation)].reset_index(drop=True)
    _, items, _ = inputs.read(table)
    if not items:
        raise UserError(f"{ref.root}: none of the target adaptation clips could be read")
    return MelStats.fit(inputs.trim(items))


def standardised_log_mels(run: LoadedRun, table: pd.DataFrame, stats: MelStats) -> list[np.ndarray]:
    """The table's clips as the model reads them, but standardised with ``stats``: [n_mels, T] each."""
    inputs = replace(mel_inputs(run), stats=stats, target_stats=None)
    _, items, _ = inputs.read(table)
    if not items:
        raise UserError("none of the clips could be read; `serlib scan` lists why")
    return inputs.dataset(items, None).features


def pooled_log_mels(run: LoadedRun, table: pd.DataFrame, stats: MelStats) -> np.ndarray:
    """Each clip's standardised log-mel averaged over time, [N, n_mels]: its average spectrum."""
    return np.stack([clip.mean(axis=1) for clip in standardised_log_mels(run, table, stats)])


def clip_embeddings(run: LoadedRun, table: pd.DataFrame, stats: MelStats) -> np.ndarray:
    """The run's embeddings [N, D] of the table's clips, their inputs standardised with ``stats``.

    The model is used as trained (its own batch-norm statistics), so only the input changes.
    """
    inputs = replace(mel_inputs(run), stats=stats, target_stats=None)
    _, items, _ = inputs.read(table)
    if not items:
        raise UserError("none of the clips could be read; `serlib scan` lists why")
    loader = inputs.loader(inputs.dataset(items, None), 16, shuffle=False)
    with torch.no_grad():
        found = predict(run.model, loader, embeddings=True)
    return found.embedding[np.argsort(found.index)]


def domain_distances(
    run_dir: str | Path,
    max_per_set: int | None = 300,
    seed: int = 0,
    places: Sequence[str] = PLACES,
) -> pd.DataFrame:
    """Proxy A-distance between a run's source-test and target-test clips, at each of ``places``
    and with each statistics for the target: rows ``places``, columns ``STATISTICS``.

    ``attrs["clips"]`` holds how many clips per domain the probe saw (the smaller set's size).
    """
    unknown = [place for place in places if place not in PLACES]
    if unknown:
        raise UserError(f"places must be among {PLACES}, got {unknown}")
    run = load_run(run_dir)
    source_stats = mel_inputs(run).stats
    statistics = {STATISTICS[0]: source_stats, STATISTICS[1]: target_adaptation_statistics(run)}
    source = evaluation_clips(run_dir, "source_test", max_per_set, seed)
    target = evaluation_clips(run_dir, "target_test", max_per_set, seed)
    measure = {PLACES[0]: pooled_log_mels, PLACES[1]: clip_embeddings}
    values = {column: {} for column in STATISTICS}
    for place in places:
        source_values = measure[place](run, source, source_stats)
        for column, stats in statistics.items():
            target_values = measure[place](run, target, stats)
            values[column][place] = proxy_a_distance(source_values, target_values, seed=seed)
    table = pd.DataFrame(values).loc[list(places), list(STATISTICS)]
    table.attrs["clips"] = min(len(source), len(target))
    return table


def same_data(first: str | Path, other: str | Path) -> bool:
    """Whether two runs read the same test clips with the same input statistics (one input row
    then describes both)."""
    runs = [load_run(folder) for folder in (first, other)]
    splits = [run.config["splits"] for run in runs]
    stats = [mel_inputs(run).stats for run in runs]
    same_clips = all(
        splits[0].get(key) == splits[1].get(key)
        for key in ("source_test", "target_test", "target_all")
    )
    same_stats = np.array_equal(stats[0].mean, stats[1].mean) and np.array_equal(
        stats[0].std, stats[1].std
    )
    return same_clips and same_stats


def distance_table(
    runs: Mapping[str, str | Path], max_per_set: int | None = 300, seed: int = 0
) -> pd.DataFrame:
    """The distances of several runs in one long table: place, run, statistics, distance, clips.

    The input distance depends only on the clips and the input statistics, not on the model, so
    it is measured once, on the first run (its ``run`` entry is empty); every other run must read
    the same clips with the same statistics (runs of one course do). Embeddings: every run.
    """
    if not runs:
        raise UserError("give at least one run folder")
    names, folders = list(runs), list(runs.values())
    for name, folder in zip(names[1:], folders[1:], strict=True):
        if not same_data(folders[0], folder):
            raise UserError(
                f"{name} reads other test clips or input statistics than {names[0]}; "
                "measure runs trained on other data in a table of their own"
            )
    rows = []
    for index, (name, folder) in enumerate(runs.items()):
        places = PLACES if index == 0 else PLACES[1:]
        measured = domain_distances(folder, max_per_set, seed, places)
        for place in places:
            for column in STATISTICS:
                rows.append(
                    {
                        "place": place,
                        "run": "" if place == PLACES[0] else name,
                        "target standardised with": column,
                        "proxy A-distance": float(measured.loc[place, column]),
                        "clips per domain": measured.attrs["clips"],
                    }
                )
    return pd.DataFrame(rows)


def is_saturated(distance: float) -> bool:
    """Whether a proxy A-distance is at its ceiling (``serlib.phrasing.PAD_SATURATED``): the probe
    (almost) never errs, so the value cannot show whether the domains moved closer."""
    return distance >= PAD_SATURATED


def pair_words(before: float, after: float) -> str:
    """``"1.000 -> 0.400"``, the two distances a sentence compares."""
    return f"{before:.3f} -> {after:.3f}"


def statistics_finding(where: str, before: float, after: float) -> str:
    """What standardising the target with its own statistics did to the distance on ``where``."""
    values = pair_words(before, after)
    if is_saturated(before) and is_saturated(after):
        return (
            f"on {where} the proxy A-distance is saturated with either statistics ({values}): "
            "the domains stay perfectly separable there"
        )
    moved = direction(before, after, PAD_TOLERANCE)
    if moved == "same":
        return (
            f"the target's own statistics did not change the proxy A-distance on {where} "
            f"({values}, within {PAD_TOLERANCE})"
        )
    if moved == "down":
        return (
            f"the target's own statistics lowered the proxy A-distance on {where} ({values}): "
            "the domains became harder to tell apart there"
        )
    return (
        f"the target's own statistics raised the proxy A-distance on {where} ({values}): "
        "the domains became easier to tell apart there"
    )


def encoder_change(inputs: float, embeddings: float) -> str:
    """How the distance moved from the inputs to the embeddings, in words with the values."""
    values = pair_words(inputs, embeddings)
    if is_saturated(inputs) and is_saturated(embeddings):
        return f"saturated on both ({values})"
    moved = direction(inputs, embeddings, PAD_TOLERANCE)
    if moved == "same":
        return f"as separable ({values}, within {PAD_TOLERANCE})"
    return f"{'less' if moved == 'down' else 'more'} separable ({values})"


def encoder_finding(run: str, inputs: Sequence[float], embeddings: Sequence[float]) -> str:
    """What a run's encoder did to the separability of its inputs, with each statistics."""
    parts = [
        f"with {column} for the target, {encoder_change(before, after)}"
        for column, before, after in zip(STATISTICS, inputs, embeddings, strict=True)
    ]
    return f"from inputs to {run}'s embeddings: {'; '.join(parts)}"


def distance_findings(table: pd.DataFrame) -> list[str]:
    """Sentences about ``distance_table`` output, phrased for every outcome: what the target's own
    statistics did to the inputs and to each run's embeddings, and what each encoder did."""
    value = table.set_index(["place", "run", "target standardised with"])["proxy A-distance"]
    inputs = [float(value[PLACES[0], "", column]) for column in STATISTICS]
    lines = [statistics_finding("the input log-mels", *inputs)]
    for run in dict.fromkeys(table.loc[table["place"] == PLACES[1], "run"]):
        embeddings = [float(value[PLACES[1], run, column]) for column in STATISTICS]
        lines.append(statistics_finding(f"{run}'s embeddings", *embeddings))
        lines.append(encoder_finding(run, inputs, embeddings))
    return lines


# ----- neighbours in the embedding: is the target apart, and is it ordered inside? -------------


def nearest_neighbours(vectors: np.ndarray) -> np.ndarray:
    """For each row of ``vectors`` [N, D], the index of its nearest other row (Euclidean)."""
    squared = (vectors**2).sum(axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * vectors @ vectors.T
    np.fill_diagonal(distances, np.inf)
    return distances.argmin(axis=1)


def neighbour_agreement(vectors: np.ndarray, values: Sequence) -> tuple[float, float]:
    """The share of clips whose nearest neighbour shares their ``values`` (domain, emotion), and
    the share expected if the values were scattered at random (the sum of squared shares)."""
    values = np.asarray(values)
    if len(values) < 2:
        raise UserError("neighbour_agreement needs at least two clips")
    agree = float((values[nearest_neighbours(np.asarray(vectors, float))] == values).mean())
    _, counts = np.unique(values, return_counts=True)
    return agree, float(((counts / counts.sum()) ** 2).sum())


NEIGHBOUR_MARGIN = 0.10
"""A neighbour agreement within 10 points of its chance level reads as "scattered"."""


def agreement_words(agree: float, chance: float) -> str:
    """``"94 % (25 % by chance)"``: an agreement beside the level chance would give."""
    return f"{100 * agree:.0f} % ({100 * chance:.0f} % by chance)"


def embedding_findings(vectors: np.ndarray, clips: pd.DataFrame, run: str) -> list[str]:
    """Two sentences about a run's embedding (``analysis.run_embeddings`` output), phrased for
    every outcome: whether the target clips sit apart from the source (their nearest neighbour is
    another target clip) and whether, among target clips only, the same emotions sit together.
    Measured in the embedding itself, not in a 2-D picture of it."""
    agree, chance = neighbour_agreement(vectors, clips["domain"])
    words = agreement_words(agree, chance)
    if agree - chance < NEIGHBOUR_MARGIN:
        domains = f"the domains are mixed in {run}'s embedding: {words} of clips have a nearest "
        domains += "neighbour from their own domain"
    else:
        apart = "apart" if agree >= 0.9 else "partly apart"
        domains = f"source and target sit {apart} in {run}'s embedding: {words} of clips have a "
        domains += "nearest neighbour from their own domain"
    target = (clips["domain"] == "target").to_numpy()
    if target.sum() < 2:
        return [domains]
    agree, chance = neighbour_agreement(vectors[target], clips.loc[target, "label"])
    words = agreement_words(agree, chance)
    if agree - chance < NEIGHBOUR_MARGIN:
        inside = f"inside the target, emotions are scattered: {words} of target clips have a "
        inside += "nearest target neighbour of the same emotion"
    else:
        inside = f"inside the target, the same emotions sit together: {words} of target clips "
        inside += "have a nearest target neighbour of the same emotion"
    return [domains, inside]
