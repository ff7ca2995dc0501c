"""What a run showed, in sentences: the findings each notebook prints at its end.

The course's Markdown explains methods and what to look for; what a run *showed* is printed by these
functions from that run's own files (metrics.json, history.csv, config.json), so the text under a
figure can never contradict it. Every sentence is phrased for every outcome: a finding that can
read "rose" can also read "did not change" (within a stated tolerance, ``serlib.phrasing``) or
"fell". The notebook-level functions (``baseline_findings`` for 02, ``dann_findings`` for 03,
``wav2vec_findings`` for 04, ``shift_findings`` for 05) take a mapping from course run names
(``course.COURSE_RUNS``: "crnn", "dann", "oracle", ...) to run folders and leave out every sentence
whose runs have not finished. The sentences about one or two runs are ``serlib.run_findings``'
(re-exported here, so a notebook needs only ``from serlib import findings``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from serlib.results import read_config
from serlib.run_findings import (
    Run,
    collapse,
    compare_runs,
    domain_accuracy,
    domain_drop,
    encoder_note,
    gap_or_change,
    gap_recovered,
    grl_ramp,
    has_results,
    label_scheme_finding,
    name_of,
    oracle_gap,
    per_class_shift,
    proxy_a_distance,
    proxy_a_distance_of,
    recall_drop,
    source_cost,
    top_confusions,
    ua_change,
)

__all__ = [
    "report",
    "baseline_findings",
    "dann_findings",
    "wav2vec_findings",
    "shift_findings",
    "collapse",
    "compare_runs",
    "domain_accuracy",
    "domain_drop",
    "encoder_note",
    "gap_or_change",
    "gap_recovered",
    "grl_ramp",
    "label_scheme_finding",
    "oracle_gap",
    "per_class_shift",
    "proxy_a_distance",
    "recall_drop",
    "source_cost",
    "top_confusions",
    "ua_change",
]


def report(lines: Sequence[str], title: str = "What we found") -> None:
    """Print a heading and one bullet per finding (wrapped for a notebook's width)."""
    print(title)
    print("=" * len(title))
    if not lines:
        print("- nothing to report: none of the runs these findings read has finished")
    for line in lines:
        print(textwrap.fill(line, width=100, initial_indent="- ", subsequent_indent="  "))


def finished(runs: Mapping[str, Run], *names: str) -> list[Path] | None:
    """The folders of ``names`` when every one of them has finished, else None (skip the finding)."""
    folders = [runs.get(name) for name in names]
    if all(has_results(folder) for folder in folders):
        return [Path(folder) for folder in folders]
    return None


def baseline_findings(runs: Mapping[str, Run]) -> list[str]:
    """Notebook 02: what the change of domain did to the CRNN, and how far the oracle is above it."""
    lines = []
    if found := finished(runs, "crnn"):
        (crnn,) = found
        lines += [domain_drop(crnn), collapse(crnn), top_confusions(crnn, "target_test")]
        lines.append(top_confusions(crnn, "source_test"))
    if found := finished(runs, "crnn", "oracle"):
        lines.append(oracle_gap(*found))
    return lines


def adversary_findings(runs: Mapping[str, Run], name: str) -> list[str]:
    """One adversarial run against the CRNN: its domain head, the gap, the classes, the source."""
    found = finished(runs, "crnn", name)
    if not found:
        return []
    crnn, adapted = found
    cap = float(read_config(adapted)["train"]["grl_cap"])
    lines = [grl_ramp(adapted, cap)] if name == "dann" else []
    lines += [domain_accuracy(adapted), gap_or_change(crnn, adapted, runs.get("oracle"))]
    lines += [per_class_shift(crnn, adapted, "target_test"), collapse(adapted)]
    return lines + [source_cost(crnn, adapted)]


def dann_findings(runs: Mapping[str, Run]) -> list[str]:
    """Notebook 03: what gradient reversal, then the confusion adversary, did to the CRNN."""
    lines = adversary_findings(runs, "dann") + adversary_findings(runs, "dann-confusion")
    compared = {n: runs[n] for n in ("crnn", "dann", "dann-confusion") if has_results(runs.get(n))}
    if len(compared) == 3:
        labels = {name_of(folder): folder for folder in compared.values()}
        lines += [compare_runs(labels, "target_test"), compare_runs(labels, "source_test")]
    return lines


def wav2vec_findings(runs: Mapping[str, Run]) -> list[str]:
    """Notebook 04: the Wav2Vec2 runs against each other and against the CRNNs of 02 and 03."""
    lines = []
    if found := finished(runs, "w2v2"):
        lines.append(encoder_note(found[0]))
    if found := finished(runs, "w2v2", "w2v2-dann"):
        plain, adapted = found
        lines += [gap_or_change(plain, adapted, runs.get("oracle")), source_cost(plain, adapted)]
        before, after = proxy_a_distance_of(plain), proxy_a_distance_of(adapted)
        if before is not None and after is not None:
            lines.append(
                proxy_a_distance(before, after, "the W2V2 embeddings, without and with DANN")
            )
        lines.append(collapse(adapted))
    compared = {
        name_of(runs[n]): runs[n]
        for n in ("crnn", "dann", "w2v2", "w2v2-dann")
        if has_results(runs.get(n))
    }
    if any(key.startswith("W2V2") for key in compared) and len(compared) > 1:
        lines += [compare_runs(compared, "source_test"), compare_runs(compared, "target_test")]
    return lines


def shift_findings(runs: Mapping[str, Run]) -> list[str]:
    """Notebook 05: where the shift shows, what each fix recovered, and the final ranking."""
    lines = []
    if found := finished(runs, "crnn"):
        lines.append(recall_drop(found[0]))
    if found := finished(runs, "crnn", "dann"):
        before, after = (proxy_a_distance_of(run) for run in found)
        if before is not None and after is not None:
            lines.append(
                proxy_a_distance(before, after, "the CRNN embeddings, without and with DANN")
            )
        lines.append(per_class_shift(*found, "target_test"))
    if found := finished(runs, "crnn", "crnn-seed5"):
        lines.append(label_scheme_finding(*found))
    if found := finished(runs, "dann", "dann-transductive"):
        lines.append(ua_change(*found, "target_test"))
    for fix in ("crnn-target-statistics", "crnn-target-batchnorm"):
        if found := finished(runs, "crnn", fix):
            lines.append(gap_or_change(*found, runs.get("oracle")))
    ranked = {  # seed5 has another chance level: its UA is not comparable with the others'
        name_of(folder): folder
        for name, folder in runs.items()
        if has_results(folder) and name not in ("crnn-seed5", "oracle")  # the oracle is a bound
    }
    if len(ranked) > 1:
        lines.append(compare_runs(ranked, "target_test"))
    return lines
