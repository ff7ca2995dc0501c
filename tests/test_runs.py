"""Run folders end to end on tiny tone corpora: train, evaluate, predict, and the protocols."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from tone_corpora import tone_clip, write_emodb, write_ravdess

from serlib.analysis import embed_clips, run_embeddings
from serlib.checkpoints import load_state
from serlib.cli import main
from serlib.corpora import load_corpus
from serlib.errors import UserError
from serlib.features import FrontendConfig, MelStats, log_mel, trim_silence
from serlib.inputs import MelInputs, WaveInputs, inputs_from_dict, log_mels
from serlib.predict import predict
from serlib.protocol import CorpusRef, labelled_table, split_target
from serlib.runs import cross_validate, evaluate_run, load_run, predict_files, train_run
from serlib.splits import SPLIT_SEED, speaker_folds

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return write_ravdess(root / "ravdess"), write_emodb(root / "emodb")


def train_crnn(corpora, out, **options):
    """The module's CRNN run (RAVDESS-like tones -> EmoDB-like tones, tiny, 12 epochs), with options."""
    source, target = corpora
    return train_run(
        "crnn",
        f"ravdess:{source}",
        out,
        target=f"emodb:{target}",
        profile="tiny",
        epochs=12,
        progress=False,
        **options,
    )


@pytest.fixture(scope="module")
def crnn_run(corpora, home, tmp_path_factory):
    return train_crnn(corpora, tmp_path_factory.mktemp("runs") / "crnn")


def test_source_only_run_learns_and_writes_the_contract_files(crnn_run):
    out = crnn_run.run_dir
    for name in ("config.json", "model.safetensors", "history.csv", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"source_val", "source_test", "target_test", "target_all", "selection"}
    assert metrics["source_test"]["ua"] >= 0.6  # tones are easy; chance is 0.25
    assert metrics["selection"]["rule"] == "best source-validation UA"
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == ["angry", "happy", "neutral", "sad"]
    assert config["parameters"] == 2_356_804 and config["inputs"]["kind"] == "logmel"
    assert len(config["inputs"]["stats"]["mean"]) == 128
    splits = config["splits"]
    assert not set(splits["source_train"]) & set(splits["source_test"])
    assert not set(splits["target_test"]) & set(splits["source_train"])
    table = pd.read_csv(out / "predictions" / "target_test.csv", dtype={"speaker": str})
    assert list(table.columns) == [
        "path",
        "speaker",
        "label",
        "pred",
        "prob_angry",
        "prob_happy",
        "prob_neutral",
        "prob_sad",
    ]
    assert np.allclose(table.filter(like="prob_").sum(axis=1), 1.0, atol=1e-3)
    assert set(table["speaker"]) == set(splits["target_test"])


def test_evaluate_reproduces_the_run_metrics(crnn_run, corpora, capsys):
    source, target = corpora
    metrics = crnn_run.metrics
    report = evaluate_run(crnn_run.run_dir, f"emodb:{target}", split="test")
    assert report["ua"] == pytest.approx(metrics["target_test"]["ua"])
    assert report["n"] == metrics["target_test"]["n"]
    code = main(
        [
            "evaluate",
            "--run",
            str(crnn_run.run_dir),
            "--corpus",
            f"ravdess:{source}",
            "--split",
            "test",
            "--json",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(printed) >= {"ua", "wa", "macro_f1", "n", "labels", "confusion"}
    assert printed["ua"] == pytest.approx(metrics["source_test"]["ua"])
    assert np.array(printed["confusion"]).sum() == printed["n"]


def test_each_clip_is_scored_once_and_the_scores_equal_a_fresh_scoring(crnn_run, corpora):
    """Validation predictions come from the kept epoch, target test from all target speakers:
    the numbers must be those of scoring every set on its own with the saved model."""
    source, target = corpora
    out, metrics = crnn_run.run_dir, crnn_run.metrics
    best = crnn_run.history[metrics["selection"]["best_epoch"] - 1]
    assert metrics["source_val"]["ua"] == pytest.approx(best["val_ua"], abs=1e-12)
    splits = json.loads((out / "config.json").read_text())["splits"]
    run = load_run(out)
    table, _ = labelled_table(CorpusRef.parse(f"ravdess:{source}"), "4class", run.labels)
    table = table[table["speaker"].isin(splits["source_val"])].reset_index(drop=True)
    dataset, _, _ = run.dataset(table)
    loader = run.inputs.loader(dataset, run.config["train"]["batch_size"], shuffle=False)
    val = predict(run.model, loader).report(run.labels)
    assert val["confusion"] == metrics["source_val"]["confusion"]
    on_its_own = evaluate_run(out, f"emodb:{target}", split="test")
    assert on_its_own["confusion"] == metrics["target_test"]["confusion"]
    test = pd.read_csv(out / "predictions" / "target_test.csv")
    every = pd.read_csv(out / "predictions" / "target_all.csv").set_index("path")
    assert len(test) < len(every)
    shared = every.loc[test["path"]].reset_index()
    pd.testing.assert_frame_equal(test, shared[test.columns])


def test_the_embeddings_saved_at_scoring_are_those_of_the_model(crnn_run):
    """``embeddings/<set>.npy`` has one row per predictions row, and the notebooks' embedding
    pictures read them: the same clips as before, the vectors the model gives them."""
    out = crnn_run.run_dir
    for name in ("source_test", "target_test", "target_all"):
        rows = np.load(out / "embeddings" / f"{name}.npy")
        assert rows.shape == (len(pd.read_csv(out / "predictions" / f"{name}.csv")), 256)
    vectors, clips = run_embeddings(out, max_per_set=5, seed=1)
    assert list(clips["set"]) == ["source_test"] * 5 + ["target_test"] * 5
    recomputed = [
        embed_clips(load_run(out), part[["path", "speaker", "label"]])[0]
        for _, part in clips.groupby("set", sort=False)
    ]
    assert np.allclose(vectors, np.concatenate(recomputed), atol=1e-3)


def test_predict_reads_any_rate_and_channel_count(crnn_run, tmp_path, capsys):
    mono = tone_clip(600.0, seed=1, noise=0.01, rate=44100)
    stereo = tmp_path / "angry_stereo_44k.wav"
    sf.write(stereo, np.stack([mono, mono], axis=1), 44100)
    flac = tmp_path / "sad_8k.flac"
    sf.write(flac, tone_clip(150.0, seed=2, noise=0.01, rate=8000), 8000)
    results, skipped = predict_files(crnn_run.run_dir, [stereo, flac])
    assert not skipped and [r["path"] for r in results] == [str(stereo), str(flac)]
    for result in results:
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEnot audio")
    code = main(["predict", "--run", str(crnn_run.run_dir), str(stereo), str(broken)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out.startswith(f"{stereo}\t") and "prob" not in captured.out
    assert f"{broken}:" in captured.err and len(captured.err.splitlines()) == 1


def test_target_batchnorm_changes_only_the_target_scores(crnn_run, corpora, tmp_path):
    _, target = corpora
    out = tmp_path / "crnn-adabn"
    result = train_crnn(corpora, out, target_batchnorm=True)
    assert (out / "target_batchnorm.safetensors").is_file()
    # the same seed trains the same weights; the source is scored with the source statistics
    assert result.metrics["source_test"] == crnn_run.metrics["source_test"]
    assert "batch-norm statistics" in result.metrics["target_test"]["protocol"]
    report = evaluate_run(out, f"emodb:{target}", split="test")
    assert report["ua"] == pytest.approx(result.metrics["target_test"]["ua"])
    clip = sorted(target.rglob("*.wav"))[0]
    as_target, _ = predict_files(out, [clip], target=True)
    as_source, _ = predict_files(out, [clip])
    plain, _ = predict_files(crnn_run.run_dir, [clip])
    assert as_source[0]["probabilities"] == pytest.approx(plain[0]["probabilities"])
    assert as_target[0]["probabilities"] != pytest.approx(as_source[0]["probabilities"])


def test_dann_with_target_batchnorm_trains_and_scores_the_target_with_its_statistics(
    corpora, home, tmp_path
):
    source, target = corpora
    out = tmp_path / "dann-dsbn"
    argv = ["train", "--model", "dann", "--source", f"ravdess:{source}"]
    argv += ["--target", f"emodb:{target}", "--out", str(out), "--profile", "tiny"]
    assert main([*argv, "--epochs", "2", "--target-batchnorm"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "target_batchnorm.safetensors").is_file()
    assert "disjoint" in metrics["target_test"]["protocol"]
    report = evaluate_run(out, f"emodb:{target}", split="test")
    assert report["ua"] == pytest.approx(metrics["target_test"]["ua"])


def test_the_saved_model_loads_without_pickle(crnn_run):
    run = load_run(crnn_run.run_dir)
    for name, tensor in crnn_run.model.state_dict().items():
        assert torch.equal(tensor.cpu(), run.model.state_dict()[name]), name
    latest = json.loads((crnn_run.run_dir / "checkpoint" / "latest.json").read_text())
    state = load_state(crnn_run.run_dir / "checkpoint" / latest["state"])  # weights_only=True
    assert state["tracker"]["finished"]


def test_dann_adapts_on_speakers_it_is_not_tested_on(corpora, home, tmp_path):
    source, target = corpora
    result = train_run(
        "dann",
        f"ravdess:{source}",
        tmp_path / "dann",
        target=f"emodb:{target}",
        profile="tiny",
        epochs=2,
        progress=False,
    )
    config = json.loads((tmp_path / "dann" / "config.json").read_text())
    adapt, test = set(config["splits"]["target_adapt"]), set(config["splits"]["target_test"])
    assert adapt and test and not adapt & test
    assert "disjoint" in result.metrics["target_test"]["protocol"]
    assert "PARTLY TRANSDUCTIVE" in result.metrics["target_all"]["protocol"]
    assert "train_domain_acc" in (tmp_path / "dann" / "history.csv").read_text()
    assert 0.0 <= result.metrics["proxy_a_distance"]["value"] <= 2.0


def test_train_command_takes_the_confusion_adversary(corpora, home, tmp_path, capsys):
    source, target = corpora
    out = tmp_path / "dann-confusion"
    argv = ["train", "--model", "dann", "--source", f"ravdess:{source}"]
    argv += ["--target", f"emodb:{target}", "--out", str(out), "--profile", "tiny"]
    assert main([*argv, "--epochs", "1", "--adversary", "confusion"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["adversary"] == "confusion"
    assert "target_test" in json.loads((out / "metrics.json").read_text())


def test_train_command_trains_under_bf16_autocast_on_the_cpu(corpora, home, tmp_path):
    source, _ = corpora
    out = tmp_path / "crnn-bf16"
    argv = ["train", "--model", "crnn", "--source", f"ravdess:{source}", "--out", str(out)]
    assert main([*argv, "--profile", "tiny", "--epochs", "1", "--mixed-precision", "bf16"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["mixed_precision"] == "bf16"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["source_test"]["ua"] <= 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is valid where a GPU trains")
def test_fp16_on_the_cpu_is_refused_before_any_work(corpora, home, tmp_path, capsys):
    source, _ = corpora
    argv = ["train", "--model", "crnn", "--source", f"ravdess:{source}"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--mixed-precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert "fp16 mixed precision needs a GPU" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_oracle_and_transductive_runs_say_what_they_are(corpora, home, tmp_path):
    source, target = corpora
    oracle = train_run(
        "crnn",
        f"emodb:{target}",
        tmp_path / "oracle",
        target=f"emodb:{target}",
        profile="tiny",
        epochs=1,
        progress=False,
    )
    assert "ORACLE" in oracle.metrics["target_test"]["protocol"]
    assert "source_test" not in oracle.metrics
    config = json.loads((tmp_path / "oracle" / "config.json").read_text())
    trained_on = set(config["splits"]["source_train"]) | set(config["splits"]["source_val"])
    assert trained_on.isdisjoint(config["splits"]["target_test"])
    transductive = train_run(
        "dann",
        f"ravdess:{source}",
        tmp_path / "trans",
        target=f"emodb:{target}",
        profile="tiny",
        epochs=1,
        transductive=True,
        progress=False,
    )
    assert "TRANSDUCTIVE" in transductive.metrics["target_all"]["protocol"]
    splits = json.loads((tmp_path / "trans" / "config.json").read_text())["splits"]
    assert set(splits["target_adapt"]) == set(splits["target_all"])


def test_target_statistics_come_from_the_adaptation_speakers_only(corpora, home, tmp_path):
    source, target = corpora
    result = train_run(
        "crnn",
        f"ravdess:{source}",
        tmp_path / "tstats",
        target=f"emodb:{target}",
        profile="tiny",
        epochs=2,
        target_statistics=True,
        progress=False,
    )
    config = json.loads((tmp_path / "tstats" / "config.json").read_text())
    adapt, test = set(config["splits"]["target_adapt"]), set(config["splits"]["target_test"])
    assert adapt and test and not adapt & test
    assert "input statistics" in result.metrics["target_test"]["protocol"]
    run = load_run(tmp_path / "tstats")
    ref = CorpusRef.parse(f"emodb:{target}")
    table, _ = labelled_table(ref, "4class", run.labels)
    _, arrays, _ = log_mels(table[table["speaker"].isin(adapt)], FrontendConfig(), False)
    expected = MelStats.fit(arrays)
    np.testing.assert_allclose(run.inputs.target_stats.mean, expected.mean, rtol=1e-5)
    np.testing.assert_allclose(run.inputs.target_stats.std, expected.std, rtol=1e-5)
    assert not np.allclose(run.inputs.target_stats.mean, run.inputs.stats.mean)
    # evaluate knows the corpus is the run's target and standardises it the same way
    report = evaluate_run(run, f"emodb:{target}", split="test")
    assert report["ua"] == pytest.approx(result.metrics["target_test"]["ua"])
    files = table[table["speaker"].isin(test)]["path"].tolist()[:3]
    as_target = predict_files(run, files, target=True)[0]
    as_source = predict_files(run, files)[0]
    assert [r["probabilities"] for r in as_target] != [r["probabilities"] for r in as_source]


def test_trimmed_runs_fit_statistics_on_trimmed_clips_and_trim_what_they_score(
    corpora, home, tmp_path
):
    source, target = corpora
    out = tmp_path / "trim"
    argv = ["train", "--model", "crnn", "--source", f"ravdess:{source}", "--out", str(out)]
    argv += ["--target", f"emodb:{target}", "--profile", "tiny", "--epochs", "1"]
    # 1 dB: the tone clips' fade-in and fade-out frames count as silence, so trimming shows
    assert main([*argv, "--target-statistics", "--trim-silence", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["input_settings"]["trim_db"] == 1.0
    run = load_run(out)
    assert run.inputs.trim_db == 1.0
    table, _ = labelled_table(CorpusRef.parse(f"emodb:{target}"), "4class", run.labels)
    adapt = table[table["speaker"].isin(config["splits"]["target_adapt"])]
    _, arrays, _ = log_mels(adapt, FrontendConfig(), False)
    trimmed = MelStats.fit([trim_silence(x, 1.0) for x in arrays])
    assert not np.allclose(MelStats.fit(arrays).mean, trimmed.mean)
    np.testing.assert_allclose(run.inputs.target_stats.mean, trimmed.mean, rtol=1e-5)
    report = evaluate_run(run, f"emodb:{target}", split="test")
    assert report["ua"] == pytest.approx(
        json.loads((out / "metrics.json").read_text())["target_test"]["ua"]
    )
    # scoring trims too: a clip inside a second of silence is read as the clip alone
    clip = sf.read(table["path"].iloc[0], dtype="float32")[0]
    padded = np.concatenate([np.zeros(16000, np.float32), clip, np.zeros(16000, np.float32)])
    items = run.inputs.dataset([log_mel(clip), log_mel(padded)], None, train=False)
    assert abs(items[0]["x"].shape[-1] - items[1]["x"].shape[-1]) <= 2
    with pytest.raises(ValueError, match="CRNN models"):
        train_run("w2v2", f"ravdess:{source}", tmp_path / "w2v2", trim_db=40.0)


def test_train_command_passes_a_zero_domain_weight_and_crnn_refuses_one(
    corpora, monkeypatch, tmp_path
):
    # 0 is the control run (no domain loss): a falsy value must still reach train_run
    received = {}

    def fake_train_run(model, source, out, **options):
        received.update(options)
        return SimpleNamespace(run_dir=tmp_path, metrics={})

    monkeypatch.setattr("serlib.runs.train_run", fake_train_run)
    argv = ["train", "--model", "dann", "--source", "ravdess:a", "--target", "emodb:b"]
    assert main([*argv, "--out", str(tmp_path / "d"), "--domain-weight", "0"]) == 0
    assert received["domain_weight"] == 0.0
    assert "adversary" not in received  # options not given keep the profile's values
    monkeypatch.undo()
    source, target = corpora
    with pytest.raises(ValueError, match="DANN models only"):
        train_run("crnn", f"ravdess:{source}", tmp_path / "c", domain_weight=0.0)
    with pytest.raises(ValueError, match="domain_weight must be >= 0"):
        train_run(
            "dann", f"ravdess:{source}", tmp_path / "d", target=f"emodb:{target}", domain_weight=-1
        )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"normalisation": "utterance"}, "global normalisation only"),
        ({"target": None}, "need a --target corpus"),
    ],
)
def test_target_statistics_refuse_runs_they_do_not_fit(corpora, home, tmp_path, options, message):
    source, target = corpora
    arguments = {"target": f"emodb:{target}", "profile": "tiny", "epochs": 1} | options
    with pytest.raises(ValueError, match=message):
        train_run("crnn", f"ravdess:{source}", tmp_path / "x", target_statistics=True, **arguments)


def test_target_split_is_speaker_disjoint_and_fixed(corpora):
    table = pd.DataFrame(
        {
            "speaker": [f"s{i}" for i in range(6) for _ in range(2)],
            "corpus": "emodb",
            "gender": ["F", "M"] * 6,
        }
    )
    parts = split_target(table)
    assert set(parts["adapt"]["speaker"]).isdisjoint(parts["test"]["speaker"])
    assert parts["test"]["speaker"].nunique() == 3
    assert split_target(table)["test"].equals(parts["test"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "dann", "--source", "ravdess:{source}"], "give --target"),
        (["--model", "crnn", "--source", "ravdess"], "NAME:DIR"),
        (["--model", "crnn", "--source", "ravdess:/no/such/folder"], "not found"),
        (["--model", "crnn", "--source", "timit:{source}"], "unknown corpus"),
        (
            ["--model", "crnn", "--source", "ravdess:{source}", "--adversary", "confusion"],
            "adversary applies to DANN models only",
        ),
        (
            ["--model", "crnn", "--source", "ravdess:{source}", "--target-batchnorm"],
            "target batch norm needs a --target corpus",
        ),
        (
            [
                "--model",
                "w2v2",
                "--source",
                "ravdess:{source}",
                "--target",
                "emodb:{target}",
                "--target-batchnorm",
            ],
            "target batch norm applies to the crnn and dann models only",
        ),
    ],
)
def test_train_command_bad_usage_exits_2_with_one_line(argv, message, corpora, tmp_path, capsys):
    source, target = corpora
    argv = [a.format(source=source, target=target) for a in argv]
    argv = ["train", *argv, "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_run_folder_is_never_overwritten_or_resumed_with_other_settings(crnn_run, corpora):
    source, target = corpora
    with pytest.raises(ValueError, match="already holds a run"):
        train_run("crnn", f"ravdess:{source}", crnn_run.run_dir, profile="tiny", progress=False)
    with pytest.raises(ValueError, match="cannot resume .* its target"):
        train_run(
            "crnn",
            f"ravdess:{source}",
            crnn_run.run_dir,
            profile="tiny",
            epochs=12,
            resume=True,
            progress=False,
        )
    assert CorpusRef.parse(f"emodb:{target}") == CorpusRef("emodb", str(target.resolve()))


def test_cross_validation_tests_every_speaker_once(corpora, home, tmp_path):
    source, _ = corpora
    summary = cross_validate(
        f"ravdess:{source}", tmp_path / "cv", scheme="4class", n_folds=3, profile="tiny",
        epochs=1, progress=False,
    )  # fmt: skip
    assert list(summary["folds"]) == ["fold1", "fold2", "fold3"]
    tested = [s for fold in summary["folds"].values() for s in fold["speakers"]]
    assert sorted(tested) == [f"Actor_{a:02d}" for a in range(1, 7)]
    assert sum(fold["n"] for fold in summary["folds"].values()) == 6 * 4 * 4
    uas = [fold["ua"] for fold in summary["folds"].values()]
    assert summary["ua_mean"] == pytest.approx(np.mean(uas))
    assert json.loads((tmp_path / "cv" / "summary.json").read_text()) == summary


def test_cross_validation_on_fewer_training_speakers_keeps_the_folds_test_and_validation(
    corpora, home, tmp_path
):
    """A learning curve: each fold trains on N of its speakers, tests and validates as before."""
    source, _ = corpora
    options = dict(scheme="4class", n_folds=3, profile="tiny", epochs=1, progress=False)
    summary = cross_validate(f"ravdess:{source}", tmp_path / "cv", train_speakers=2, **options)
    assert summary["protocol"].endswith("(each speaker tested once, trained on 2 speakers)")
    table = load_corpus("ravdess", source).table
    for full in speaker_folds(table, n_folds=3, seed=SPLIT_SEED):
        config = json.loads((tmp_path / "cv" / full.name / "config.json").read_text())
        splits, speakers = config["splits"], full.speakers()
        assert (splits["source_val"], splits["source_test"]) == (speakers["val"], speakers["test"])
        assert len(splits["source_train"]) == 2
        assert set(splits["source_train"]) < set(speakers["train"])
        assert config["fold"] == f"{full.name}, trained on 2 speakers"
    with pytest.raises(UserError, match="cannot resume .* its fold is 'fold1, trained on 2"):
        cross_validate(
            f"ravdess:{source}", tmp_path / "cv", train_speakers=1, resume=True, **options
        )
    with pytest.raises(UserError, match="train_speakers must be between 1 and 3 .* got 4"):
        cross_validate(f"ravdess:{source}", tmp_path / "more", train_speakers=4, **options)


def test_every_kind_of_inputs_reads_back_from_its_config_entry():
    mel = MelInputs(
        FrontendConfig(), MelStats(np.zeros(128), np.ones(128)), "global", 32, None, 40.0
    )
    for inputs in (mel, WaveInputs(crop_seconds=3.0)):
        restored = inputs_from_dict(json.loads(json.dumps(inputs.to_dict())))
        assert type(restored) is type(inputs) and restored.to_dict() == inputs.to_dict()
    assert inputs_from_dict({"kind": "waveform"}) == WaveInputs()  # run folders older than its crop
    with pytest.raises(ValueError, match="unknown inputs kind 'mfcc'"):
        inputs_from_dict({"kind": "mfcc"})
