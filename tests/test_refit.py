"""Refitting (``TrainConfig.refit``, ``--refit``): once the number of epochs is fixed, the
validation speakers train too, every epoch runs and the last is kept; the ``recipe`` profile does."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tone_corpora import write_balanced_ravdess, write_emodb, write_ravdess
from torch import nn
from torch.utils.data import DataLoader
from toy_batches import ToyMels

from serlib.checkpoints import load_checkpoint, load_weights
from serlib.cli import main
from serlib.config import RECIPE, REFIT_RULE, TrainConfig, profile_settings
from serlib.corpora import load_corpus
from serlib.emobox_runs import format_summary, run_emobox_cross, selection
from serlib.errors import UserError
from serlib.models import DANN, CRNNEncoder, EmotionClassifier
from serlib.protocol import fold_protocol, refit_protocol, speakers_of
from serlib.results import trained_epochs
from serlib.runs import cross_validate, load_run
from serlib.splits import SPLIT_SEED, speaker_folds
from serlib.train import fit

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory):
    return write_ravdess(tmp_path_factory.mktemp("corpora") / "ravdess")


def small_crnn() -> nn.Module:
    torch.manual_seed(0)
    return EmotionClassifier(CRNNEncoder(n_mels=8, channels=(8, 8), lstm_hidden=8), 3, hidden=8)


# ----- the protocol and the settings -------------------------------------------------------------


def test_refit_moves_the_validation_speakers_into_training_and_leaves_the_test_alone(ravdess):
    table = load_corpus("ravdess", ravdess).table
    fold = speaker_folds(table, n_folds=3, seed=SPLIT_SEED)[0]
    speakers = fold.speakers()
    refit = refit_protocol(fold_protocol(fold, []))
    assert "source_val" not in refit.tables and "source_val" not in refit.descriptions
    assert speakers_of(refit.tables["source_train"]) == sorted(speakers["train"] + speakers["val"])
    assert len(refit.tables["source_train"]) == len(fold.train) + len(fold.val)
    assert refit.tables["source_test"].equals(fold.test)
    assert ", ".join(speakers["val"]) in refit.descriptions["source_train"]
    with pytest.raises(ValueError, match="no source_val set to refit on"):
        refit_protocol(refit)


def test_refit_is_refused_with_a_rule_that_needs_validation_naming_the_fix():
    with pytest.raises(UserError, match="set keep 'last' \\(--keep last\\), or turn refit off"):
        TrainConfig(refit=True, schedule="cosine")
    with pytest.raises(UserError, match="use schedule 'cosine' \\(--schedule cosine\\)"):
        TrainConfig(refit=True, keep="last")
    recipe = profile_settings(RECIPE, "crnn").train
    assert (recipe.refit, recipe.keep, recipe.schedule) == (True, "last", "cosine")
    assert not TrainConfig().refit  # every other profile keeps its validation speakers


def test_the_recipe_profile_is_the_candidate_its_round_measured():
    """benchmarks/run_recipe.py's ``refit`` runs on the full profile what ``recipe`` trains."""
    path = Path(__file__).parents[1] / "benchmarks" / "run_recipe.py"
    spec = importlib.util.spec_from_file_location("run_recipe", path)
    recipe_benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe_benchmark)
    measured = profile_settings("full", "crnn", **recipe_benchmark.CANDIDATES["refit"])
    assert measured == profile_settings(RECIPE, "crnn")


def test_the_command_line_turns_refit_on_and_off(monkeypatch, tmp_path):
    received = []

    def fake_train_run(model, source, out, **options):
        received.append(options.get("refit"))  # absent: not given
        return type("Result", (), {"run_dir": tmp_path, "metrics": {}})()

    monkeypatch.setattr("serlib.runs.train_run", fake_train_run)
    base = ["train", "--model", "crnn", "--source", "ravdess:x", "--out", "o"]
    for flags in ([], ["--refit"], ["--no-refit"]):
        assert main([*base, *flags]) == 0
    assert received == [None, True, False]  # None: the profile keeps its own value


def test_the_emobox_summaries_say_how_the_weights_were_chosen():
    assert "keeps the epoch with the best UA on 2" in selection(TrainConfig())
    assert "choose nothing" in selection(TrainConfig(keep="last"))
    assert "refit" in selection(profile_settings(RECIPE, "crnn").train)


# ----- training without validation -------------------------------------------------------------


def test_fit_without_validation_runs_every_epoch_and_keeps_the_last(tmp_path):
    train = DataLoader(ToyMels(48, 0, n_mels=8, frames=12), batch_size=8, shuffle=True)
    config = TrainConfig(epochs=3, lr=5e-3, cpu=True, schedule="cosine", keep="last", refit=True)
    result = fit(small_crnn(), train, None, config, run_dir=tmp_path, progress=False)
    assert len(result.history) == 3 and result.best_epoch == 2 and result.best_val is None
    assert not any(key.startswith("val_") for row in result.history for key in row)
    saved = load_weights(tmp_path / "model.safetensors")
    final = load_checkpoint(tmp_path / "checkpoint").weights
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor.cpu(), saved[name]) and torch.equal(saved[name], final[name])
    torch.manual_seed(0)  # a DANN refits too: its target batches arrive, no validation does
    dann = DANN(CRNNEncoder(n_mels=8, channels=(8, 8), lstm_hidden=8), 3, emotion_hidden=8)
    target = DataLoader(ToyMels(24, 1, shift=1.0, n_mels=8, frames=12), batch_size=8, shuffle=True)
    adapted = fit(dann, train, None, config, target_loader=target, progress=False)
    assert len(adapted.history) == 3 and "train_domain_acc" in adapted.history[-1]
    with pytest.raises(ValueError, match="without a val_loader, fit needs keep='last'"):
        fit(small_crnn(), train, None, TrainConfig(epochs=1, cpu=True), progress=False)


def test_a_refit_cross_validation_trains_on_validation_speakers_and_resumes(
    ravdess, home, tmp_path
):
    options = dict(scheme="4class", n_folds=3, profile="tiny", epochs=2, progress=False)
    refit = dict(schedule="cosine", keep="last", refit=True)
    summary = cross_validate(f"ravdess:{ravdess}", tmp_path / "cv", **options, **refit)
    table = load_corpus("ravdess", ravdess).table
    for fold in speaker_folds(table, n_folds=3, seed=SPLIT_SEED):
        run = tmp_path / "cv" / fold.name
        config = json.loads((run / "config.json").read_text())
        speakers = fold.speakers()
        assert "source_val" not in config["splits"]
        assert config["splits"]["source_train"] == sorted(speakers["train"] + speakers["val"])
        assert config["splits"]["source_test"] == speakers["test"]
        metrics = json.loads((run / "metrics.json").read_text())
        assert "source_val" not in metrics
        assert metrics["selection"] | {"epochs_run": 2} == {
            "rule": REFIT_RULE, "best_epoch": 2, "best_val_ua": None, "epochs_run": 2,
            "stopped_early": False,
        }  # fmt: skip
        lines = trained_epochs(run)  # what a notebook shows of a run trained ahead
        assert len(lines) == 2 and all(line.endswith("*") and "val" not in line for line in lines)
        assert load_run(run).config["train"]["refit"] is True
    again = cross_validate(f"ravdess:{ravdess}", tmp_path / "cv", resume=True, **options, **refit)
    assert again == summary  # finished folds are read back, not trained again
    with pytest.raises(UserError, match="cannot resume .*refit"):
        cross_validate(f"ravdess:{ravdess}", tmp_path / "cv", resume=True, **options,
                       schedule="cosine", keep="last")  # fmt: skip


def test_under_emobox_cross_track_a_refit_trains_on_every_source_speaker(home, tmp_path):
    target = write_balanced_ravdess(tmp_path / "ravdess")
    source = write_emodb(tmp_path / "emodb")
    refit = dict(schedule="cosine", keep="last", refit=True)
    summary = run_emobox_cross(
        f"emodb:{source}", f"ravdess:{target}", tmp_path / "out", profile="tiny", epochs=1,
        progress=False, **refit,
    )  # fmt: skip
    run = json.loads((tmp_path / "out" / "emodb_to_ravdess" / "config.json").read_text())
    assert "source_val" not in run["splits"]
    assert run["splits"]["source_train"] == speakers_of(load_corpus("emodb", source).table)
    assert summary["test"]["n"] == 240 and "refit" in summary["description"]
    assert "serlib trains on every training speaker" in format_summary(summary)
