"""The findings the notebooks print (serlib.findings, serlib.run_findings), on fixture run folders.

Each fixture run is written with chosen confusion matrices, histories and configs in the formats
``serlib.runs.train_run`` writes, so every branch (rose / unchanged / fell, saturated or not,
collapsed or not) is reached on purpose, and the numbers in each sentence are checked against the
numbers in the files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serlib import findings, run_findings
from serlib.models.dann import grl_coefficient

LABELS = ["angry", "happy", "neutral", "sad"]


def scores(confusion: list[list[int]], labels: list[str] = LABELS) -> dict:
    """A metrics.json entry for one set, computed from its confusion matrix (rows = true labels)."""
    matrix = np.asarray(confusion, dtype=float)
    totals = matrix.sum(axis=1)
    recall = {
        label: (float(matrix[i, i] / totals[i]) if totals[i] else None)
        for i, label in enumerate(labels)
    }
    present = [value for value in recall.values() if value is not None]
    return {
        "protocol": "fixture",
        "ua": float(np.mean(present)),
        "wa": float(np.trace(matrix) / matrix.sum()),
        "macro_f1": 0.0,
        "n": int(matrix.sum()),
        "labels": labels,
        "recall": recall,
        "confusion": [[int(x) for x in row] for row in matrix],
    }


def diagonal(correct: list[int], per_class: int = 10) -> list[list[int]]:
    """A confusion matrix with ``correct[i]`` of ``per_class`` clips right, the rest sent to the
    next class (so recall i = correct[i] / per_class)."""
    size = len(correct)
    matrix = [[0] * size for _ in range(size)]
    for i, right in enumerate(correct):
        matrix[i][i] = right
        matrix[i][(i + 1) % size] += per_class - right
    return matrix


def write_run(
    folder: Path,
    *,
    source: list[list[int]] | None = None,
    target: list[list[int]] | None = None,
    history: dict | None = None,
    config: dict | None = None,
    pad: float | None = None,
    labels: list[str] = LABELS,
) -> Path:
    """A run folder with metrics.json (the given sets), history.csv and config.json."""
    folder.mkdir(parents=True)
    metrics: dict = {"model": {"kind": "crnn"}}
    if source is not None:
        metrics["source_test"] = scores(source, labels)
    if target is not None:
        metrics["target_test"] = scores(target, labels)
    if pad is not None:
        metrics["proxy_a_distance"] = {"value": pad, "between": "fixture"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame(history or {"epoch": [1, 2]}).to_csv(folder / "history.csv", index=False)
    saved = {"scheme": "4class", "labels": labels, "train": {"grl_cap": 0.7}} | (config or {})
    (folder / "config.json").write_text(json.dumps(saved))
    return folder


COLLAPSED = [[10, 0, 0, 0], [10, 0, 0, 0], [10, 0, 0, 0], [10, 0, 0, 0]]
"""Every clip of every class predicted *angry*: UA = chance = 25 %."""


# ----- report ---------------------------------------------------------------------------------


def test_report_prints_a_heading_and_one_bullet_per_finding(capsys):
    findings.report(["first finding", "second " + "word " * 30], title="What we found")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["What we found", "============="]
    assert lines[2] == "- first finding"
    assert lines[3].startswith("- second") and lines[4].startswith("  word")  # wrapped, indented
    assert all(len(line) <= 100 for line in lines)
    findings.report([])
    assert "nothing to report" in capsys.readouterr().out


# ----- collapse and confusions ------------------------------------------------------------------


def test_collapse_names_the_class_and_the_share_it_takes(tmp_path):
    crnn = write_run(tmp_path / "crnn", target=COLLAPSED)
    assert findings.collapse(crnn) == (
        "CRNN sends 100 % of target test clips to *angry* (*angry* is 25 % of them): it has "
        "collapsed onto one label"
    )
    majority = write_run(
        tmp_path / "dann", target=[[10, 0, 0, 0], [6, 4, 0, 0], [5, 0, 5, 0], [3, 0, 0, 7]]
    )
    assert "DANN-CRNN sends 60 % of target test clips to *angry*, more than half" in (
        findings.collapse(majority)
    )
    spread = write_run(tmp_path / "oracle", target=diagonal([8, 7, 6, 9]))
    sentence = findings.collapse(spread)
    assert sentence.startswith("no class takes more than half of Oracle CRNN (upper bound)'s")
    predicted = np.asarray(diagonal([8, 7, 6, 9])).sum(axis=0)
    assert f"takes {100 * predicted.max() / predicted.sum():.0f} %" in sentence


def test_top_confusions_are_the_largest_row_normalised_errors(tmp_path):
    run = write_run(
        tmp_path / "crnn",
        source=[[6, 3, 1, 0], [2, 8, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]],
        target=[[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]],
    )
    assert findings.top_confusions(run, "source_test") == (
        "on the source test set, CRNN's largest confusions are *angry* -> *happy* (30 % of "
        "*angry* clips) and *happy* -> *angry* (20 % of *happy* clips)"
    )
    assert "largest confusion is *angry* -> *happy*" in findings.top_confusions(
        run, "source_test", k=1
    )
    assert findings.top_confusions(run, "target_test") == (
        "CRNN confuses no class on the target test set: every clip gets its own label"
    )
    with pytest.raises(ValueError, match="no 'target_all' scores"):
        findings.top_confusions(run, "target_all")


# ----- comparisons of two runs ------------------------------------------------------------------


@pytest.fixture
def gap_runs(tmp_path):
    """A collapsed CRNN (target UA 25 %) and an oracle at 85 %."""
    crnn = write_run(tmp_path / "crnn", source=diagonal([9, 8, 7, 6]), target=COLLAPSED)
    oracle = write_run(tmp_path / "oracle", target=diagonal([9, 8, 8, 9]))
    return tmp_path, crnn, oracle


def test_gap_recovered_reads_recovered_unchanged_lost_and_no_gap(gap_runs):
    root, crnn, oracle = gap_runs
    same = write_run(root / "dann", target=diagonal([6, 2, 1, 1]))  # UA 25 %, as the CRNN
    sentence = findings.gap_recovered(crnn, same, oracle)
    assert sentence.startswith("DANN-CRNN did not change the gap between CRNN at 25.0 % and")
    assert "the oracle at 85.0 % (an upper bound trained on target labels)" in sentence
    assert "within 1 point of source-only, so it recovered none of it" in sentence

    raised = write_run(root / "dann-confusion", target=diagonal([10, 2, 1, 1]))  # UA 35 %
    gap = 0.85 - 0.25
    assert findings.gap_recovered(crnn, raised, oracle) == (
        f"DANN-CRNN, confusion adversary recovered {100 * 0.10 / gap:.0f} % of the gap between "
        "CRNN at 25.0 % and the oracle at 85.0 % (an upper bound trained on target labels): "
        "35.0 % target test UA"
    )
    lowered = write_run(root / "w2v2", target=diagonal([4, 2, 1, 1]))  # UA 20 %
    sentence = findings.gap_recovered(crnn, lowered, oracle)
    assert "lost ground" in sentence and "fell to 20.0 %" in sentence
    assert f"{100 * 0.05 / gap:.0f} % of the gap in the wrong direction" in sentence
    past = write_run(root / "crnn-target-statistics", target=diagonal([10, 10, 9, 9]))  # 95 %
    assert findings.gap_recovered(crnn, past, oracle) == (
        "CRNN + target statistics went past the oracle: 95.0 % target test UA against the "
        "oracle's 85.0 % (trained on labelled target adaptation speakers), up from CRNN's 25.0 %; "
        "this oracle run is no ceiling, so no share of the gap is given"
    )
    no_gap = findings.gap_recovered(crnn, raised, crnn)
    assert "there is no gap for DANN-CRNN, confusion adversary to recover" in no_gap


def test_ua_change_and_source_cost_read_up_same_and_down(tmp_path):
    crnn = write_run(tmp_path / "crnn", source=diagonal([8, 8, 8, 8]), target=COLLAPSED)
    same = write_run(tmp_path / "dann", source=diagonal([8, 8, 8, 8]), target=COLLAPSED)
    lower = write_run(tmp_path / "dann-confusion", source=diagonal([6, 8, 8, 8]))
    higher = write_run(tmp_path / "crnn-target-statistics", source=diagonal([10, 8, 8, 8]))
    assert findings.source_cost(crnn, same) == (
        "DANN-CRNN kept CRNN's source test UA (80.0 % against 80.0 %, within 1 point): adapting "
        "cost nothing on the source"
    )
    assert findings.source_cost(crnn, lower) == (
        "DANN-CRNN, confusion adversary's source test UA is 5.0 points below CRNN's (75.0 % "
        "against 80.0 %): adapting cost source accuracy"
    )
    assert "5.0 points above CRNN's (85.0 % against 80.0 %)" in findings.source_cost(crnn, higher)
    assert findings.ua_change(crnn, same, "target_test") == (
        "DANN-CRNN did not change target test UA (25.0 % against 25.0 % for CRNN, within 1 point)"
    )
    assert findings.ua_change(crnn, lower, "source_test").startswith(
        "DANN-CRNN, confusion adversary lowered source test UA by 5.0 points"
    )
    assert "raised source test UA by 5.0 points" in findings.ua_change(crnn, higher, "source_test")


def test_per_class_shift_names_the_classes_that_moved(tmp_path):
    crnn = write_run(tmp_path / "crnn", target=diagonal([5, 5, 5, 5]))
    copy = write_run(tmp_path / "dann", target=diagonal([5, 5, 5, 5]))
    moved = write_run(tmp_path / "dann-confusion", target=diagonal([8, 2, 5, 5]))
    assert findings.per_class_shift(crnn, copy, "target_test") == (
        "DANN-CRNN's target test confusion matrix is identical to CRNN's: no class moved"
    )
    assert findings.per_class_shift(crnn, moved, "target_test") == (
        "compared with CRNN, DANN-CRNN, confusion adversary's target test recall rose for "
        "*angry* (+30.0 points: 50 % -> 80 %), fell for *happy* (-30.0 points: 50 % -> 20 %) "
        "and stayed within 5 points for *neutral* and *sad*"
    )


def test_compare_runs_ranks_by_ua_and_calls_close_scores_a_tie(tmp_path):
    runs = {
        "CRNN": write_run(tmp_path / "a", target=diagonal([5, 5, 5, 5])),  # 50.0 %
        "DANN": write_run(tmp_path / "b", target=diagonal([5, 5, 5, 5])),  # 50.0 %
        "oracle": write_run(tmp_path / "c", target=diagonal([9, 9, 9, 9])),  # 90.0 %
        "W2V2": write_run(tmp_path / "d", target=COLLAPSED),  # 25.0 %
        "missing": tmp_path / "never-trained",
    }
    assert findings.compare_runs(runs, "target_test") == (
        "ranked by target test UA, chance 25.0 %: oracle at 90.0 %; then CRNN at 50.0 % and DANN "
        "at 50.0 %, tied (within 1 point); then W2V2 at 25.0 % (not run: missing)"
    )


def test_domain_drop_and_oracle_gap(tmp_path):
    crnn = write_run(tmp_path / "crnn", source=diagonal([9, 8, 7, 8]), target=COLLAPSED)
    assert findings.domain_drop(crnn) == (
        "CRNN scores 80.0 % UA on source test speakers and 25.0 % on target test speakers: the "
        "change of domain costs 55.0 points; on the target it is at chance (25.0 %)"
    )
    even = write_run(tmp_path / "dann", source=diagonal([5, 5, 5, 5]), target=diagonal([5] * 4))
    assert "the two are the same (within 1 point)" in findings.domain_drop(even)
    oracle = write_run(tmp_path / "oracle", target=diagonal([9, 9, 9, 9]))
    assert "scores 90.0 % UA on the same target test speakers: 65.0 points above CRNN" in (
        run_findings.oracle_gap(crnn, oracle)
    )
    assert "no gap to recover" in run_findings.oracle_gap(oracle, crnn)


# ----- proxy A-distance, the GRL ramp, the domain head ------------------------------------------


def test_proxy_a_distance_says_when_it_is_saturated_and_which_way_it_moved():
    saturated = findings.proxy_a_distance(2.0, 1.96, "the CRNN embeddings")
    assert saturated.startswith("the proxy A-distance (the CRNN embeddings) is saturated at 2.0")
    assert "2.000 before, 1.960 after" in saturated and "perfectly separable" in saturated
    assert "fell (2.000 before, 1.400 after" in findings.proxy_a_distance(2.0, 1.4, "x")
    assert "rose (0.800 before, 1.200 after" in findings.proxy_a_distance(0.8, 1.2, "x")
    assert "did not change (1.200 before, 1.230 after" in findings.proxy_a_distance(1.2, 1.23, "x")


def test_grl_ramp_says_when_the_coefficient_reached_its_cap(tmp_path):
    cap = 0.7
    reached = math.log((1 + cap) / (1 - cap)) / 10  # 2/(1+exp(-10p))-1 = cap
    assert run_findings.ramp_progress(cap) == pytest.approx(reached, abs=1e-6)
    assert grl_coefficient(reached + 1e-6, cap=cap) == cap
    history = {"epoch": [1, 2, 3, 4], "grl_coefficient": [0.7, 0.7, 0.7, 0.7]}
    sentence = findings.grl_ramp(pd.DataFrame(history), cap)
    assert f"reaches its cap of 0.7 at p = {reached:.2f}, 17 % of the way" in sentence
    assert "by the end of epoch 1 of 4, so it was constant for the rest of training" in sentence
    rising = pd.DataFrame({"epoch": [1, 2], "grl_coefficient": [0.4, 0.6]})
    assert "stopped after 2 epochs, before it got there (0.60)" in findings.grl_ramp(rising, cap)
    uncapped = findings.grl_ramp(rising, 1.0)
    assert "above what the ramp" in uncapped and "grew throughout training (to 0.60" in uncapped
    assert "stays 0" in findings.grl_ramp(rising, 0.0)
    assert findings.grl_ramp(pd.DataFrame({"epoch": [1]}), cap).startswith("this run has no")
    run = write_run(tmp_path / "dann", history=history)
    assert "by the end of epoch 1 of 4" in findings.grl_ramp(run, cap)  # a run folder works too


@pytest.mark.parametrize(
    ("accuracy", "expected"),
    [
        ([0.8, 0.9, 0.95], "was never fooled: its training accuracy stayed well above 0.5 (from "
         "0.80 to 0.95 over 3 epochs, 0.95 at the end)"),
        ([0.9, 0.7, 0.52], "ended confused: 0.52, near 0.5, it cannot tell the domains apart "
         "(from 0.52 to 0.90 over 3 epochs)"),
        ([0.5, 0.2, 0.1], "ended fooled: 0.10, well below 0.5, it is confidently wrong"),
        ([0.9, 0.05, 0.88], "ended well above 0.5 (0.88): by the end it tells the domains apart; it "
         "swung from 0.05 to 0.90 over 3 epochs"),
    ],
)  # fmt: skip
def test_domain_accuracy_reads_fooled_confused_or_never_fooled(accuracy, expected, tmp_path):
    history = pd.DataFrame({"epoch": range(1, 4), "train_domain_acc": accuracy})
    assert expected in findings.domain_accuracy(history)
    run = write_run(tmp_path / "dann", history=history.to_dict("list"))
    assert findings.domain_accuracy(run).startswith("DANN-CRNN's domain head ")
    crnn = write_run(tmp_path / "crnn")
    assert findings.domain_accuracy(crnn) == "this run has no domain head"


# ----- notebook-level findings ------------------------------------------------------------------


@pytest.fixture
def course_runs(tmp_path) -> dict[str, Path]:
    """The course's runs with chosen results: a collapsed CRNN, DANNs that barely move, an oracle."""
    dann_history = {
        "epoch": [1, 2, 3],
        "train_domain_acc": [0.9, 0.95, 0.97],
        "grl_coefficient": [0.7, 0.7, 0.7],
    }
    return {
        "crnn": write_run(
            tmp_path / "crnn", source=diagonal([9, 8, 7, 8]), target=COLLAPSED, pad=2.0
        ),
        "dann": write_run(
            tmp_path / "dann",
            source=diagonal([9, 8, 7, 8]),
            target=COLLAPSED,
            history=dann_history,
            pad=2.0,
        ),
        "dann-confusion": write_run(
            tmp_path / "dann-confusion",
            source=diagonal([9, 8, 8, 8]),
            target=diagonal([6, 2, 2, 2]),
            history={"epoch": [1, 2], "train_domain_acc": [0.6, 0.5], "grl_coefficient": [0, 0]},
        ),
        "oracle": write_run(tmp_path / "oracle", target=diagonal([9, 8, 8, 9])),
        "w2v2": write_run(
            tmp_path / "w2v2",
            source=diagonal([6, 6, 6, 6]),
            target=diagonal([4, 3, 3, 3]),
            config={"encoder": "tiny", "encoder_label": "tiny random", "w2v2_mode": "frozen"},
            pad=1.9,
        ),
        "w2v2-dann": write_run(
            tmp_path / "w2v2-dann",
            source=diagonal([6, 6, 6, 5]),
            target=diagonal([4, 4, 3, 3]),
            config={"encoder": "tiny", "encoder_label": "tiny random", "w2v2_mode": "frozen"},
            pad=1.9,
        ),
        "crnn-seed5": write_run(
            tmp_path / "crnn-seed5",
            source=diagonal([8] * 5),
            target=diagonal([3, 2, 2, 2, 2]),
            labels=["angry", "frustrated", "happy", "neutral", "sad"],
            config={"scheme": "seed5"},
        ),
        "crnn-target-statistics": write_run(
            tmp_path / "crnn-target-statistics",
            source=diagonal([9, 8, 7, 8]),
            target=diagonal([7, 6, 5, 6]),
        ),
    }


def test_baseline_findings_state_the_drop_the_collapse_and_the_oracle_gap(course_runs):
    lines = findings.baseline_findings(course_runs)
    assert lines[0].startswith("CRNN scores 80.0 % UA on source test speakers and 25.0 %")
    assert lines[1].startswith("CRNN sends 100 % of target test clips to *angry*")
    assert lines[2].startswith("on the target test set, CRNN's largest confusions are *happy*")
    assert lines[3].startswith("on the source test set")
    assert "upper bound" in lines[4] and "85.0 % UA" in lines[4]
    assert len(findings.baseline_findings({"crnn": course_runs["crnn"]})) == 4
    assert findings.baseline_findings({}) == []


def test_dann_findings_follow_both_adversaries(course_runs):
    lines = findings.dann_findings(course_runs)
    text = "\n".join(lines)
    assert "reaches its cap of 0.7" in lines[0]
    assert "DANN-CRNN's domain head was never fooled" in lines[1]
    assert "DANN-CRNN did not change the gap between CRNN at 25.0 %" in lines[2]
    assert "identical to CRNN's: no class moved" in lines[3]
    assert "kept CRNN's source test UA" in text
    assert "DANN-CRNN, confusion adversary's domain head ended confused: 0.50" in text
    assert "DANN-CRNN, confusion adversary recovered" in text
    assert lines[-2].startswith("ranked by target test UA, chance 25.0 %: DANN-CRNN, confusion")
    assert lines[-1].startswith("ranked by source test UA")
    without_oracle = {k: v for k, v in course_runs.items() if k != "oracle"}
    assert "did not change target test UA" in "\n".join(findings.dann_findings(without_oracle))


def test_wav2vec_findings_say_when_the_encoder_is_random(course_runs):
    lines = findings.wav2vec_findings(course_runs)
    assert lines[0].startswith("the W2V2 runs use tiny random with frozen encoder features: a")
    assert "W2V2-DANN (tiny encoder) recovered" in lines[1]
    assert "kept W2V2 (tiny encoder)'s source test UA" not in lines[2]  # 60.0 -> 57.5: a cost
    assert "2.5 points below" in lines[2]
    assert "did not change (1.900 before, 1.900 after" in lines[3]
    assert any(line.startswith("ranked by target test UA") for line in lines)
    assert findings.wav2vec_findings({"crnn": course_runs["crnn"]}) == []


def test_shift_findings_cover_each_fix_and_leave_seed5_out_of_the_ranking(course_runs):
    lines = findings.shift_findings(course_runs)
    text = "\n".join(lines)
    assert lines[0].startswith("CRNN's recall from source test to target test speakers, worst")
    assert "saturated at 2.0 (2.000 before, 2.000 after" in text
    assert "1.00 x chance with 4class (25.0 % against 25.0 %)" in text
    assert "1.10 x chance with seed5 (22.0 % against 20.0 %)" in text
    assert "CRNN + target statistics recovered" in text
    assert "seed5" not in lines[-1] and lines[-1].startswith("ranked by target test UA")
