"""The CRNN training recipe's mechanisms: label smoothing, mixup, the cosine schedule, dropout,
speed perturbation, and the ``recipe`` profile that turns them on (each is off by default)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tone_corpora import write_emodb, write_ravdess
from torch import nn
from torch.utils.data import DataLoader
from toy_batches import FailingLoader, ToyMels

from serlib.checkpoints import load_checkpoint, load_weights
from serlib.cli import build_parser, main
from serlib.config import (
    PROFILES,
    RECIPE,
    RECIPE_SETTINGS,
    TRIM_DB,
    InputConfig,
    TrainConfig,
    check_profile,
    check_training_profile,
    profile_settings,
)
from serlib.errors import UserError
from serlib.hardware import make_accelerator
from serlib.inputs import prepare_mel_sets
from serlib.mixup import Mixup
from serlib.models import DANN, CRNNEncoder, EmotionClassifier, build_encoder
from serlib.models.dann import DomainAdversarialLoss
from serlib.protocol import make_protocol
from serlib.run_settings import differing_settings, make_settings
from serlib.runs import load_run
from serlib.train import COSINE_FLOOR, build_optimizer, cosine_factor, fit, train_one_epoch

torch.set_num_threads(1)
N_MELS, FRAMES, CLASSES = 8, 12, 3


# ----- small models and data -------------------------------------------------------------------


class LinearModel(nn.Module):
    """A deterministic classifier on a masked log-mel batch: its loss can be computed by hand."""

    input_keys = ("x", "mask")
    num_classes = CLASSES

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(N_MELS * FRAMES, CLASSES)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        masked = x * mask[:, None, None, :]
        return {"logits": self.linear(masked.flatten(1))}


def one_batch(size: int = 6) -> dict[str, torch.Tensor]:
    """A batch whose clips have different lengths (their masks differ) and all three classes."""
    generator = torch.Generator().manual_seed(1)
    mask = torch.zeros(size, FRAMES, dtype=torch.bool)
    for row in range(size):
        mask[row, : FRAMES - row] = True
    return {
        "x": torch.randn(size, 1, N_MELS, FRAMES, generator=generator),
        "mask": mask,
        "label": torch.arange(size) % CLASSES,
    }


def first_step_loss(config: TrainConfig, seed: int = 5) -> float:
    """The loss ``train_one_epoch`` reports for one batch (measured before its optimizer step)."""
    model = LinearModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    accelerator = make_accelerator(config)
    torch.manual_seed(seed)  # what the step's mixup draws from
    row = train_one_epoch(model, [one_batch()], optimizer, accelerator, config, 0, progress=False)
    return row["train_loss"]


def toy_mels(n: int, seed: int) -> ToyMels:
    """This module's toy log-mels: 8 mels, 12 frames, 3 classes (small enough for many runs)."""
    return ToyMels(n, seed, n_mels=N_MELS, frames=FRAMES, classes=CLASSES)


def small_crnn(adversarial: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    encoder = CRNNEncoder(n_mels=N_MELS, channels=(8, 8), lstm_hidden=8)
    if adversarial:
        return DANN(encoder, CLASSES, emotion_hidden=8, domain_hidden=8)
    return EmotionClassifier(encoder, CLASSES, hidden=8)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return write_ravdess(root / "ravdess"), write_emodb(root / "emodb")


# ----- label smoothing and mixup ---------------------------------------------------------------


def test_label_smoothing_spreads_part_of_each_target_over_every_class():
    batch = one_batch()
    logits = LinearModel()(batch["x"], batch["mask"])["logits"]
    log_p = F.log_softmax(logits, dim=1)
    hard = F.nll_loss(log_p, batch["label"]).item()
    uniform = (-log_p.mean(dim=1)).mean().item()
    assert first_step_loss(TrainConfig(cpu=True)) == pytest.approx(hard, rel=1e-5)
    smoothed = first_step_loss(TrainConfig(cpu=True, label_smoothing=0.1))
    assert smoothed == pytest.approx(0.9 * hard + 0.1 * uniform, rel=1e-5)
    assert smoothed != pytest.approx(hard, rel=1e-3)
    # a DANN's emotion loss smooths the same way
    outputs = {"logits": logits, "domain_logits": torch.zeros(len(logits), 2)}
    parts = DomainAdversarialLoss(label_smoothing=0.1)(
        outputs, batch["label"], 0.0, domain_head=nn.Identity()
    )
    assert parts.emotion.item() == pytest.approx(0.9 * hard + 0.1 * uniform, rel=1e-5)
    with pytest.raises(UserError, match=r"label_smoothing must be in \[0, 1\)"):
        TrainConfig(label_smoothing=1.0)


def test_mixup_blends_each_clip_with_a_partner_and_masks_are_or_ed():
    batch = one_batch()
    torch.manual_seed(3)
    mix = Mixup.draw(6, alpha=0.2)
    assert 0 <= mix.lam <= 1 and sorted(mix.perm.tolist()) == list(range(6))
    assert not torch.equal(mix.perm, torch.arange(6))  # seed 3 moves rows: the test can fail
    x, mask = mix.inputs((batch["x"], batch["mask"]))
    expected = mix.lam * batch["x"] + (1 - mix.lam) * batch["x"][mix.perm]
    torch.testing.assert_close(x, expected)
    assert torch.equal(mask, batch["mask"] | batch["mask"][mix.perm])
    torch.manual_seed(3)
    again = Mixup.draw(6, alpha=0.2)  # torch's global generator: a seeded epoch repeats it
    assert again.lam == mix.lam and torch.equal(again.perm, mix.perm)


def test_a_mixup_step_minimises_both_labels_weighted_as_the_inputs():
    batch = one_batch()
    torch.manual_seed(5)
    mix = Mixup.draw(6, alpha=0.4)  # what train_one_epoch draws first after the same seed
    logits = LinearModel()(*mix.inputs((batch["x"], batch["mask"])))["logits"]
    labels, partners = batch["label"], batch["label"][mix.perm]
    for smoothing in (0.0, 0.1):
        expected = mix.lam * F.cross_entropy(logits, labels, label_smoothing=smoothing) + (
            1 - mix.lam
        ) * F.cross_entropy(logits, partners, label_smoothing=smoothing)
        config = TrainConfig(cpu=True, mixup=0.4, label_smoothing=smoothing)
        assert first_step_loss(config, seed=5) == pytest.approx(expected.item(), rel=1e-5)
    plain = F.cross_entropy(LinearModel()(batch["x"], batch["mask"])["logits"], labels)
    assert first_step_loss(TrainConfig(cpu=True, mixup=0.4)) != pytest.approx(plain.item())


def test_mixup_is_refused_for_dann(corpora, tmp_path):
    train = DataLoader(toy_mels(16, seed=0), batch_size=8)
    config = TrainConfig(epochs=1, cpu=True, mixup=0.2)
    with pytest.raises(UserError, match="mixup applies to supervised models only"):
        fit(small_crnn(adversarial=True), train, train, config, target_loader=train)
    source, target = corpora
    options = {"target": f"emodb:{target}", "profile": RECIPE}
    with pytest.raises(UserError, match="set mixup to 0 .--mixup 0"):
        make_settings("dann", f"ravdess:{source}", mixup=0.2, **options)
    settings = make_settings("dann", f"ravdess:{source}", **options)  # the recipe mixes nothing
    assert settings.train.schedule == RECIPE_SETTINGS["train"]["schedule"]
    with pytest.raises(UserError, match="mixup must be >= 0"):
        TrainConfig(mixup=-0.1)


# ----- the cosine schedule ---------------------------------------------------------------------


def test_cosine_schedule_warms_up_then_decays_to_one_percent_in_the_last_epoch():
    config = TrainConfig(epochs=10, lr=1e-3, schedule="cosine", warmup_epochs=2)
    optimizer, scheduler = build_optimizer(LinearModel(), config)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected_start = [1e-3 / 3, 2e-3 / 3, 1e-3]
    np.testing.assert_allclose(rates[:3], expected_start, rtol=1e-9)
    assert all(a > b for a, b in zip(rates[2:], rates[3:], strict=False))  # decays every epoch
    assert rates[-1] == pytest.approx(COSINE_FLOOR * 1e-3)
    # 11 epochs, 2 of warm-up: epochs 2..10 run the cosine, whose middle (epoch 6) is halfway down
    assert cosine_factor(6, 11, 2) == pytest.approx((1 + COSINE_FLOOR) / 2)
    assert cosine_factor(3, 60, 0) == pytest.approx(
        COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * 3 / 59))
    )
    plateau = build_optimizer(LinearModel(), TrainConfig())[1]
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)  # the default


def test_schedule_settings_are_checked_with_the_fix_in_the_message():
    with pytest.raises(UserError, match="schedule must be one of plateau, cosine, got 'linear'"):
        TrainConfig(schedule="linear")
    with pytest.raises(UserError, match="warmup_epochs applies to the cosine schedule only"):
        TrainConfig(warmup_epochs=2)
    with pytest.raises(UserError, match="warmup_epochs must be >= 0"):
        TrainConfig(schedule="cosine", warmup_epochs=-1)


def test_a_resumed_cosine_mixup_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    train = DataLoader(toy_mels(48, seed=0), batch_size=8, shuffle=True)
    val = DataLoader(toy_mels(24, seed=1), batch_size=8)
    config = TrainConfig(
        epochs=4, lr=5e-3, cpu=True, schedule="cosine", warmup_epochs=1, mixup=0.3,
        label_smoothing=0.1,
    )  # fmt: skip
    straight = fit(small_crnn(), train, val, config, run_dir=tmp_path / "straight", progress=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing = FailingLoader(train, fail_after=14)  # 6 batches an epoch: dies in epoch 3
        fit(small_crnn(), crashing, val, config, run_dir=tmp_path / "crashed", progress=False)
    resumed = fit(
        small_crnn(seed=9), train, val, config, run_dir=tmp_path / "crashed", resume=True,
        progress=False,
    )  # fmt: skip
    without_time = [[{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
                    for result in (straight, resumed)]  # fmt: skip
    assert without_time[0] == without_time[1]
    rates = [row["lr_heads"] for row in straight.history]  # logged after each epoch's step
    np.testing.assert_allclose(rates, [5e-3 * cosine_factor(e + 1, 4, 1) for e in range(4)])
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


# ----- which epoch a run keeps ----------------------------------------------------------------


def test_keep_last_runs_every_epoch_and_keeps_the_last_weights_keep_best_stops_early(tmp_path):
    train = DataLoader(toy_mels(48, seed=0), batch_size=8, shuffle=True)
    val = DataLoader(toy_mels(24, seed=1), batch_size=8)
    common = {"epochs": 6, "lr": 5e-3, "cpu": True, "patience": 1, "schedule": "cosine"}
    best = fit(small_crnn(), train, val, TrainConfig(**common), run_dir=tmp_path / "best",
               progress=False)  # fmt: skip
    last = fit(small_crnn(), train, val, TrainConfig(**common, keep="last"),
               run_dir=tmp_path / "last", progress=False)  # fmt: skip
    # the rule changes what is kept, not how the model trains: the shared epochs are identical
    ran = len(best.history)
    without_time = [[{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
                    for result in (best, last)]  # fmt: skip
    assert without_time[0] == without_time[1][:ran]
    val_ua = [row["val_ua"] for row in last.history]
    assert best.best_val_ua == max(val_ua[:ran])
    assert best.best_epoch == val_ua.index(max(val_ua[:ran]))
    # patience 1 stopped it the first time validation UA did not rise (this toy data does early)
    assert ran < 6 and best.stopped_early and val_ua[ran - 1] <= max(val_ua[: ran - 1])
    assert len(last.history) == 6 and not last.stopped_early  # patience does not apply
    assert (last.best_epoch, last.best_val_ua) == (5, val_ua[-1])
    saved = load_weights(tmp_path / "last" / "model.safetensors")
    final = load_checkpoint(tmp_path / "last" / "checkpoint").weights  # after the last epoch
    for name, tensor in last.model.state_dict().items():
        assert torch.equal(tensor.cpu(), saved[name]) and torch.equal(saved[name], final[name])


def test_keep_is_checked_with_the_choices_in_the_message():
    with pytest.raises(UserError, match="keep must be one of best, last, got 'first'"):
        TrainConfig(keep="first")


# ----- dropout ---------------------------------------------------------------------------------


def test_dropout_drops_lstm_inputs_while_training_only_and_adds_no_weights():
    torch.manual_seed(0)
    plain = CRNNEncoder(n_mels=N_MELS, channels=(8, 8), lstm_hidden=8)
    dropped = CRNNEncoder(n_mels=N_MELS, channels=(8, 8), lstm_hidden=8, dropout=0.5)
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # runs load either way
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())  # the study's CRNN
    dropped.load_state_dict(plain.state_dict())
    x = torch.randn(4, 1, N_MELS, FRAMES)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), dropped.eval()(x))  # scoring: no dropout
        plain.train(), dropped.train()
        assert torch.equal(plain(x), plain(x))
        assert not torch.equal(dropped(x), dropped(x))  # a new mask each call

    with pytest.raises(UserError, match=r"dropout must be in \[0, 1\)"):
        TrainConfig(dropout=1.0)


def test_dropout_and_band_pooling_are_refused_for_wav2vec2(corpora):
    source, target = corpora
    with pytest.raises(UserError, match="dropout applies to CRNN models"):
        make_settings("w2v2", f"ravdess:{source}", encoder="tiny", dropout=0.3)
    with pytest.raises(UserError, match="band pooling applies to CRNN models.*--pool-bands"):
        make_settings("w2v2", f"ravdess:{source}", encoder="tiny", pool_bands=True)
    with pytest.raises(UserError, match="dropout applies to CRNN models"):
        build_encoder("w2v2", dropout=0.3)
    dann = make_settings("dann", f"ravdess:{source}", target=f"emodb:{target}", dropout=0.3)
    assert dann.train.dropout == 0.3


# ----- speed perturbation ----------------------------------------------------------------------


def mel_sets(corpora, speeds=(), labels=None):
    """The run's log-mel datasets of the tone corpora, with and without speed perturbation."""
    source, target = corpora
    settings = make_settings(
        "crnn", f"ravdess:{source}", target=f"emodb:{target}", profile="tiny",
        speed_perturb=speeds,
    )  # fmt: skip
    protocol = make_protocol(
        settings.source, settings.target, "4class", settings.labels,
        adversarial=False, transductive=False,
    )  # fmt: skip
    return prepare_mel_sets(protocol, settings.labels, settings.inputs, 0, progress=False)


def test_speed_perturbation_adds_one_cached_copy_of_the_training_set_per_speed(
    corpora, home, monkeypatch
):
    clean = mel_sets(corpora)
    perturbed = mel_sets(corpora, (0.9, 1.1))
    n = len(clean.datasets["source_train"])
    assert len(perturbed.datasets["source_train"]) == 3 * n
    table = perturbed.tables["source_train"]
    assert table["speed"].value_counts().to_dict() == {1.0: n, 0.9: n, 1.1: n}
    assert table["label"].tolist() == clean.tables["source_train"]["label"].tolist() * 3
    frames = {}
    for speed in (1.0, 0.9, 1.1):
        rows = table.index[table["speed"] == speed]
        frames[speed] = np.array([perturbed.datasets["source_train"].lengths[i] for i in rows])
    for speed in (0.9, 1.1):  # a clip played at speed s lasts 1/s as long (+- a frame or two)
        assert np.all(np.abs(frames[speed] - frames[1.0] / speed) <= 2), speed
    assert frames[0.9].mean() > frames[1.0].mean() > frames[1.1].mean()
    # statistics of the clean clips; every other set exactly as without perturbation
    np.testing.assert_array_equal(perturbed.inputs.stats.mean, clean.inputs.stats.mean)
    np.testing.assert_array_equal(perturbed.inputs.stats.std, clean.inputs.stats.std)
    for name in ("source_val", "source_test", "target_test", "target_all"):
        if name not in clean.tables:
            continue
        assert perturbed.tables[name].equals(clean.tables[name]), name
        assert "speed" not in perturbed.tables[name]
        old, new = clean.datasets[name], perturbed.datasets[name]
        assert len(old) == len(new)
        assert all(torch.equal(old[i]["x"], new[i]["x"]) for i in range(len(old))), name

    # a second run reads the copies from the cache: no audio is decoded again
    def no_decoding(*args, **kwargs):
        raise AssertionError("audio decoded again")

    monkeypatch.setattr("serlib.cache.load_audio", no_decoding)
    again = mel_sets(corpora, (0.9, 1.1))
    assert again.tables["source_train"].equals(table)


def test_speed_perturbation_settings_round_trip_and_are_checked(corpora):
    chosen = InputConfig(speed_perturb=[0.9, 1.1])  # as config.json hands it back: a list
    assert chosen.speed_perturb == (0.9, 1.1)
    saved = json.loads(json.dumps(chosen.to_dict()))
    assert saved["speed_perturb"] == [0.9, 1.1]
    assert InputConfig.from_dict(saved) == chosen
    config = {"train": TrainConfig().to_dict(), "input_settings": chosen.to_dict()}
    assert differing_settings(json.loads(json.dumps(config)), config) == []
    with pytest.raises(UserError, match="speed_perturb takes speeds in"):
        InputConfig(speed_perturb=(1.0,))
    with pytest.raises(UserError, match="speed_perturb takes speeds in"):
        InputConfig(speed_perturb=(3.0,))
    with pytest.raises(UserError, match="speed_perturb lists a speed twice"):
        InputConfig(speed_perturb=(0.9, 0.9))
    source, _ = corpora
    with pytest.raises(UserError, match="speed perturbation applies to CRNN models"):
        make_settings("w2v2", f"ravdess:{source}", profile="tiny", speed_perturb=(0.9,))


def test_a_recipe_run_resumes_on_the_command_line_like_an_uninterrupted_run(
    corpora, home, tmp_path, monkeypatch, capsys
):
    source, target = corpora
    argv = ["train", "--model", "crnn", "--source", f"ravdess:{source}"]
    argv += ["--target", f"emodb:{target}", "--profile", "tiny", "--epochs", "3"]
    argv += ["--mixup", "0.2", "--label-smoothing", "0.1", "--schedule", "cosine"]
    argv += ["--warmup-epochs", "1", "--speed-perturb", "0.9", "1.1", "--trim-silence"]
    argv += ["--dropout", "0.3"]  # its masks must be drawn again alike on resuming
    argv += ["--pool-bands"]  # a smaller BiLSTM: the run must be read back with it
    assert main([*argv, "--out", str(tmp_path / "straight")]) == 0
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["train"]["pool_bands"] is True
    assert load_run(tmp_path / "straight").model.encoder.lstm.input_size == 128
    assert config["input_settings"]["speed_perturb"] == [0.9, 1.1]
    assert (config["train"]["schedule"], config["train"]["mixup"]) == ("cosine", 0.2)
    assert config["train"]["dropout"] == 0.3
    assert config["counts"]["source_train"] == 3 * len(config["splits"]["source_train"]) * 16

    import serlib.train

    real_epoch = serlib.train.train_one_epoch

    def crash_in_epoch_3(*args, **kwargs):
        if args[5] == 2:
            raise RuntimeError("simulated crash")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(serlib.train, "train_one_epoch", crash_in_epoch_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main([*argv, "--out", str(tmp_path / "crashed")])
    monkeypatch.undo()
    assert main([*argv, "--out", str(tmp_path / "crashed"), "--resume"]) == 0

    def history(run: str) -> list[list[str]]:
        lines = (tmp_path / run / "history.csv").read_text().splitlines()
        header = lines[0].split(",")
        keep = [i for i, name in enumerate(header) if name != "seconds"]
        return [[line.split(",")[i] for i in keep] for line in lines]

    runs = ("straight", "crashed")
    assert history("crashed") == history("straight")
    straight, resumed = (load_weights(tmp_path / run / "model.safetensors") for run in runs)
    for name, tensor in straight.items():
        assert torch.equal(tensor, resumed[name]), name
    # resuming with other recipe settings is refused, naming the setting
    other = [a if a != "1.1" else "1.2" for a in argv]
    capsys.readouterr()
    assert main([*other, "--out", str(tmp_path / "crashed"), "--resume"]) == 2
    assert "its speed_perturb is (0.9, 1.1), this command asks for (0.9, 1.2)" in (
        capsys.readouterr().err
    )


# ----- the recipe profile ----------------------------------------------------------------------


def test_the_recipe_profile_is_the_full_crnn_row_with_the_recipe_turned_on():
    full, recipe = profile_settings("full", "crnn"), profile_settings(RECIPE, "crnn")
    changed = {
        key: value
        for part in ("train", "inputs")
        for key, value in getattr(recipe, part).to_dict().items()
        if getattr(full, part).to_dict()[key] != value
    }
    assert changed == {
        "epochs": 40,
        "schedule": "cosine",
        "warmup_epochs": 2,
        "keep": "last",
        "refit": True,
        "trim_db": TRIM_DB,
        "crop_frames": 160,
    }
    assert (recipe.train.batch_size, recipe.train.patience) == (32, 12)
    assert [key for key in PROFILES if key[0] == RECIPE] == [(RECIPE, "crnn")]
    # every default is off: a run that does not ask for the recipe trains as before
    assert (TrainConfig().mixup, TrainConfig().label_smoothing, TrainConfig().schedule) == (
        0.0, 0.0, "plateau",
    )  # fmt: skip
    assert InputConfig().speed_perturb == ()


def test_the_recipe_profile_is_refused_for_wav2vec2_and_by_the_course(corpora):
    source, _ = corpora
    with pytest.raises(UserError, match="use --profile full for wav2vec2 models"):
        profile_settings(RECIPE, "w2v2")
    with pytest.raises(UserError, match="use --profile full for wav2vec2 models"):
        make_settings("w2v2", f"ravdess:{source}", profile=RECIPE, encoder="tiny")
    assert make_settings("crnn", f"ravdess:{source}", profile=RECIPE).inputs.trim_db == TRIM_DB
    assert check_training_profile(RECIPE) == RECIPE
    with pytest.raises(UserError, match="recipe profile is a CRNN training recipe"):
        check_profile(RECIPE)  # the course and the synthetic corpora know tiny, workshop, full


def test_the_command_line_takes_the_recipe_and_its_settings(monkeypatch, tmp_path, capsys):
    parser = build_parser()
    base = ["train", "--model", "crnn", "--source", "ravdess:x", "--out", "o"]
    args = parser.parse_args([*base, "--profile", "recipe"])
    assert args.profile == RECIPE
    for name in ("mixup", "label_smoothing", "schedule", "warmup_epochs", "keep", "speed_perturb"):
        assert getattr(args, name) is None, name  # not given: the profile's value stays
    assert args.dropout is None and args.pool_bands is None
    args = parser.parse_args([*base, "--speed-perturb"])
    assert args.speed_perturb == []  # given without speeds: none (turns the recipe's off)
    bench = ["benchmark", "emobox-folds", "--corpus", "ravdess:x", "--out", "o"]
    assert parser.parse_args([*bench, "--profile", "recipe"]).profile == RECIPE
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--layout", "ravdess", "--out", "o", "--profile", "recipe"])
    assert "invalid choice: 'recipe'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert "decay to 1% in the last epoch" in " ".join(capsys.readouterr().out.split())

    received = {}

    def fake_train_run(model, source, out, **options):
        received.update(options)
        return SimpleNamespace(run_dir=tmp_path, metrics={})

    monkeypatch.setattr("serlib.runs.train_run", fake_train_run)
    extra = ["--mixup", "0", "--label-smoothing", "0.05", "--schedule", "plateau"]
    extra += ["--warmup-epochs", "0", "--speed-perturb", "0.95", "1.05", "--profile", "recipe"]
    extra += ["--keep", "last", "--dropout", "0.2", "--pool-bands"]
    assert main([*base, *extra]) == 0
    assert {k: received[k] for k in ("mixup", "label_smoothing", "schedule")} == {
        "mixup": 0.0,
        "label_smoothing": 0.05,
        "schedule": "plateau",
    }
    assert (received["warmup_epochs"], received["speed_perturb"]) == (0, [0.95, 1.05])
    assert (received["profile"], received["keep"], received["dropout"]) == (RECIPE, "last", 0.2)
    assert received["pool_bands"] is True
