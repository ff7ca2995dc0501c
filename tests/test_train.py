"""The training loop on random tensors: it learns, checkpoints, resumes exactly, and checks inputs."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from toy_batches import FailingLoader, ToyMels

from serlib.checkpoints import atomic_path, load_checkpoint, load_state, load_weights, save_weights
from serlib.config import TrainConfig
from serlib.epochs import global_seed
from serlib.errors import UserError
from serlib.hardware import make_accelerator, reusing_freed_memory
from serlib.models import DANN, CRNNEncoder, EmotionClassifier
from serlib.models.adabn import SplitBatchNorm2d
from serlib.predict import predict
from serlib.train import check_every_process_trains, fit, train_one_epoch

torch.set_num_threads(1)
N_MELS, FRAMES, CLASSES = 16, 24, 3


def loaders(target: bool = False):
    train = DataLoader(ToyMels(48, seed=0), batch_size=8, shuffle=True)
    val = DataLoader(ToyMels(24, seed=1), batch_size=8)
    if not target:
        return train, val
    return train, val, DataLoader(ToyMels(24, seed=2, shift=0.7), batch_size=8, shuffle=True)


def crnn(adversarial: bool = False, seed: int = 0, split_batchnorm: bool = False):
    torch.manual_seed(seed)
    encoder = CRNNEncoder(n_mels=N_MELS, channels=(8, 8), lstm_hidden=8)
    if not adversarial:
        return EmotionClassifier(encoder, CLASSES, hidden=8)
    model = DANN(encoder, CLASSES, emotion_hidden=8, domain_hidden=8)
    return SplitBatchNorm2d.convert(model) if split_batchnorm else model


CONFIG = TrainConfig(epochs=4, lr=5e-3, cpu=True, patience=10)


def test_fit_learns_separable_classes_and_keeps_the_best_epoch():
    train, val = loaders()
    result = fit(crnn(), train, val, CONFIG, labels=["a", "b", "c"], progress=False)
    assert len(result.history) == 4
    val_uas = [row["val_ua"] for row in result.history]
    assert result.best_val_ua == max(val_uas) >= 0.9
    assert result.best_epoch == int(np.argmax(val_uas))
    again = predict(result.model, val)
    assert again.report(["a", "b", "c"])["ua"] == pytest.approx(result.best_val_ua)
    assert sorted(again.index.tolist()) == list(range(24))


def test_dann_run_writes_a_complete_run_folder(tmp_path):
    train, val, target = loaders(target=True)
    result = fit(
        crnn(adversarial=True),
        train,
        val,
        CONFIG,
        target_loader=target,
        run_dir=tmp_path,
        progress=False,
    )
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    for column in ("train_domain_loss", "train_domain_acc", "grl_coefficient", "val_ua"):
        assert column in header
    coefficients = [row["grl_coefficient"] for row in result.history]
    assert coefficients == sorted(coefficients) and 0 < coefficients[0] <= CONFIG.grl_cap
    saved = load_checkpoint(tmp_path / "checkpoint")
    assert saved.state["epoch"] == 3 and saved.state["tracker"]["finished"]
    assert set(saved.weights) == set(result.model.state_dict())
    best = saved.state["tracker"]["best_epoch"]
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(saved.best_weights[name], tensor), name
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == sorted(
        [
            f"best-{best:04d}.safetensors",
            "epoch-0003.safetensors",
            "epoch-0003.state.pt",
            "latest.json",
        ]
    )
    assert not list(tmp_path.rglob("*.tmp"))
    # the state holds only plain values: it loads with weights_only=True
    assert load_state(tmp_path / "checkpoint" / "epoch-0003.state.pt")["optimizer"]["state"]


def test_resume_after_a_crash_ends_exactly_like_an_uninterrupted_run(tmp_path):
    train, val, target = loaders(target=True)
    straight = fit(
        crnn(adversarial=True),
        train,
        val,
        CONFIG,
        target_loader=target,
        run_dir=tmp_path / "straight",
        progress=False,
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(
            crnn(adversarial=True),
            FailingLoader(train, fail_after=14),
            val,
            CONFIG,
            target_loader=target,
            run_dir=tmp_path / "crashed",
            progress=False,
        )  # 6 batches an epoch: dies in the middle of the third epoch
    assert json.loads((tmp_path / "crashed/checkpoint/latest.json").read_text())["epoch"] == 1
    # a "best model" from the lost epoch must not survive the resume
    zeros = {k: torch.zeros_like(v) for k, v in straight.model.state_dict().items()}
    save_weights(tmp_path / "crashed" / "model.safetensors", zeros)
    resumed = fit(
        crnn(adversarial=True, seed=99),
        train,
        val,
        CONFIG,
        target_loader=target,
        run_dir=tmp_path / "crashed",
        resume=True,
        progress=False,
    )
    drop_time = [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history]
    assert drop_time == [
        {k: v for k, v in row.items() if k != "seconds"} for row in straight.history
    ]
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    train, val = loaders()
    first = fit(crnn(), train, val, CONFIG, run_dir=tmp_path, progress=False)
    again = fit(crnn(seed=5), train, val, CONFIG, run_dir=tmp_path, resume=True, progress=False)
    assert again.history == first.history
    assert torch.equal(again.model.head[0].weight, first.model.head[0].weight)


def test_early_stopping_counts_epochs_without_a_better_validation_ua():
    train, val = loaders()
    config = TrainConfig(epochs=20, lr=5e-3, cpu=True, patience=2)
    result = fit(crnn(), train, val, config, progress=False)
    assert result.stopped_early and len(result.history) == result.best_epoch + 3 < 20


def test_fit_checks_its_arguments():
    train, val = loaders()
    with pytest.raises(ValueError, match="target_loader"):
        fit(crnn(adversarial=True), train, val, CONFIG, progress=False)
    with pytest.raises(ValueError, match="run_dir"):
        fit(crnn(), train, val, CONFIG, resume=True, progress=False)
    with pytest.raises(UserError, match="epochs must be > 0"):
        TrainConfig(epochs=0)
    with pytest.raises(UserError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")
    with pytest.raises(UserError, match="adversary must be one of reversal, confusion"):
        TrainConfig(adversary="wasserstein")
    with pytest.raises(UserError, match="fp16 mixed precision needs a GPU"):
        make_accelerator(TrainConfig(cpu=True, mixed_precision="fp16"))


def test_one_process_can_train_in_float32_then_bf16_then_float32_again():
    # a notebook trains one run after another; Accelerate's process-wide state must not pin the first
    layer = torch.nn.Linear(4, 4)
    for precision, dtype in (
        ("no", torch.float32),
        ("bf16", torch.bfloat16),
        ("no", torch.float32),
    ):
        accelerator = make_accelerator(TrainConfig(cpu=True, mixed_precision=precision))
        assert accelerator.mixed_precision == precision
        with accelerator.autocast():  # bf16 autocast really runs on the CPU
            assert layer(torch.randn(2, 4)).dtype == dtype


def test_dann_with_the_confusion_adversary_learns_the_task_and_the_domain_head():
    train, val, target = loaders(target=True)
    config = TrainConfig(epochs=8, lr=5e-3, cpu=True, adversary="confusion")
    result = fit(crnn(adversarial=True), train, val, config, target_loader=target, progress=False)
    assert result.best_val_ua >= 0.9
    # the head still learns to tell the shifted toy target apart (it is trained on its own loss)
    assert max(row["train_domain_acc"] for row in result.history) > 0.6


def test_dann_with_target_batchnorm_splits_every_training_batch_by_domain(monkeypatch):
    seen = []
    forward = SplitBatchNorm2d.forward

    def recording(self, x):
        seen.append((self.training, self.split, x.shape[0]))
        return forward(self, x)

    monkeypatch.setattr(SplitBatchNorm2d, "forward", recording)
    train, val, target = loaders(target=True)
    config = TrainConfig(epochs=1, lr=5e-3, cpu=True, target_batchnorm=True)
    model = crnn(adversarial=True, split_batchnorm=True)
    fit(model, train, val, config, target_loader=target, progress=False)
    training = [(split, rows) for is_training, split, rows in seen if is_training]
    assert training and all(split == 8 and rows == 16 for split, rows in training)
    assert all(split is None for is_training, split, _ in seen if not is_training)
    # a DANN built without split layers cannot honour target_batchnorm: said, not ignored
    with pytest.raises(ValueError, match="split_batchnorm=True"):
        fit(crnn(adversarial=True), train, val, config, target_loader=target, progress=False)


def test_every_epoch_of_every_seed_seeds_the_generators_differently():
    seeds = {global_seed(seed, epoch) for seed in range(3) for epoch in range(100)}
    assert len(seeds) == 300 and all(0 <= seed < 2**31 for seed in seeds)
    assert global_seed(7, 3) == (7 * 1_000_003 + 3 * 7919) % (2**31 - 1)  # saved runs used these


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        temporary.write_text("half a ne")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


def test_gradient_accumulation_steps_the_optimizer_every_nth_batch():
    for accumulation, expected_steps in ((1, 6), (2, 3), (3, 2)):
        config = TrainConfig(epochs=1, batch_size=8, grad_accumulation=accumulation, cpu=True)
        accelerator = make_accelerator(config)
        model = crnn()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        steps = []
        optimizer.register_step_post_hook(lambda *args, counter=steps: counter.append(1))
        train, _ = loaders()  # 48 clips in batches of 8: 6 batches
        model, optimizer, train = accelerator.prepare(model, optimizer, train)
        train_one_epoch(model, train, optimizer, accelerator, config, 0, progress=False)
        assert len(steps) == expected_steps


# ----- the faster CPU step: same numbers, less work ----------------------------------------------


def test_pooling_before_the_relu_gives_the_studys_numbers_forward_and_backward():
    from serlib.models.crnn import ConvBlock

    torch.manual_seed(0)
    block = ConvBlock(2, 4).train()
    conv, norm, pool, relu = block
    study_order = torch.nn.Sequential(conv, norm, torch.nn.ReLU(), pool)  # the same weights
    x = torch.randn(3, 2, 8, 10)
    outputs, grads = [], []
    for net in (block, study_order):
        inputs = x.clone().requires_grad_(True)
        out = net(inputs)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        outputs.append(out.detach())
        grads.append((inputs.grad, conv.weight.grad.clone(), norm.weight.grad.clone()))
        block.zero_grad()
    assert torch.equal(outputs[0], outputs[1])
    for mine, study in zip(*grads, strict=True):
        assert torch.equal(mine, study)


def test_channels_last_weights_keep_their_names_and_load_either_way(tmp_path):
    model = crnn()
    conv = model.encoder.conv[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    assert "encoder.conv.0.0.weight" in weights and "encoder.conv.0.1.running_mean" in weights
    save_weights(tmp_path / "model.safetensors", model.state_dict())  # no layout error
    other = crnn(seed=1)
    other.load_state_dict(weights)  # a run saved before channels-last (plain layout) loads
    x, mask = torch.randn(2, 1, N_MELS, FRAMES), torch.ones(2, FRAMES, dtype=torch.bool)
    model.eval(), other.eval()
    assert torch.equal(model(x, mask)["logits"], other(x, mask)["logits"])


def minor_faults_while(work) -> int:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    work()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(sys.platform != "linux", reason="the allocator setting is for glibc")
def test_training_steps_reuse_freed_memory_and_glibc_defaults_come_back_after():

    def one_step() -> None:  # a 64 MB activation, allocated, written and freed, like a conv map
        torch.empty(16 * 2**20).fill_(1.0)

    pages = 16 * 2**20 * 4 // 4096
    with reusing_freed_memory(torch.device("cpu")) as applied:
        assert applied
        for _ in range(5):  # the heap settles after a few steps (memory freed by earlier tests)
            one_step()
        assert minor_faults_while(one_step) < pages // 10
    one_step()
    assert minor_faults_while(one_step) > pages // 2  # the default: every page faulted again
    with reusing_freed_memory(torch.device("meta")) as applied:  # not a CPU: nothing to tune
        assert not applied


def test_bf16_on_a_cpu_without_bf16_instructions_is_a_warning(monkeypatch):
    from serlib import hardware

    config = TrainConfig(cpu=True, mixed_precision="bf16")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no bf16 instructions"):
        hardware.check_precision_device(config)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hardware.check_precision_device(config)


# ----- several processes --------------------------------------------------------------------------


def test_several_processes_without_a_gpu_are_joined_on_the_cpu(monkeypatch):
    from serlib import hardware

    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert hardware.launched_on_cpus()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not hardware.launched_on_cpus()


def test_a_multi_process_run_must_predict_on_prepared_loaders():
    class TwoProcesses:  # what predict asks of an Accelerator before it runs anything
        num_processes = 2

    _, val = loaders()
    with pytest.raises(ValueError, match="accelerator.prepare"):
        predict(crnn(), val, TwoProcesses())


def test_a_training_set_too_small_for_every_process_is_refused():
    class Shard(list):  # a prepared loader whose process got no batch
        pass

    accelerator = make_accelerator(CONFIG)
    with pytest.raises(UserError, match="too small for 1 process"):
        check_every_process_trains(Shard(), accelerator)


def test_weights_load_on_the_device_a_multi_process_cpu_run_names(tmp_path):
    model = crnn()
    save_weights(tmp_path / "w.safetensors", model.state_dict())
    loaded = load_weights(tmp_path / "w.safetensors", torch.device("cpu", 0))
    assert set(loaded) == set(model.state_dict())
