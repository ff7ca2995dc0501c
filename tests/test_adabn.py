"""AdaBN: batch-norm statistics estimated on other data, swapped in and out without touching weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from serlib.models.adabn import (
    SplitBatchNorm2d,
    batchnorm_statistics,
    estimate_batchnorm_statistics,
    load_batchnorm_statistics,
    split_domains,
    using_batchnorm_statistics,
)

torch.set_num_threads(1)


class Tiny(nn.Module):
    """A linear layer into batch norm: what the statistics see is easy to compute by hand."""

    input_keys = ("x",)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": self.norm(self.linear(x))}


def batches(shift: float, n: int = 5, size: int = 8) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    return [{"x": torch.randn(size, 3, generator=generator) * 2 + shift} for _ in range(n)]


def test_estimate_gives_exact_averages_and_leaves_the_model_as_it_was():
    model = Tiny().train()
    model.norm.running_mean.fill_(0.3)
    before = batchnorm_statistics(model)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}
    target = batches(shift=5.0)
    estimated = estimate_batchnorm_statistics(model, target, Tiny.input_keys)
    with torch.no_grad():
        features = [model.linear(b["x"]) for b in target]
    mean = torch.stack([f.mean(dim=0) for f in features]).mean(dim=0)
    var = torch.stack([f.var(dim=0, unbiased=True) for f in features]).mean(dim=0)
    assert torch.allclose(estimated["norm.running_mean"], mean, atol=1e-5)
    assert torch.allclose(estimated["norm.running_var"], var, atol=1e-4)
    assert int(estimated["norm.num_batches_tracked"]) == len(target)
    after = batchnorm_statistics(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert model.training and model.norm.momentum == 0.1


def test_scoring_with_other_statistics_is_undone_after_the_block():
    model = Tiny().eval()
    x = batches(shift=5.0)[0]["x"]
    source_out = model(x)["logits"]
    target_stats = estimate_batchnorm_statistics(model, batches(shift=5.0), Tiny.input_keys)
    with using_batchnorm_statistics(model, target_stats):
        adapted = model(x)["logits"]
    assert not torch.allclose(adapted, source_out)
    # standardised with its own domain's statistics, the target batch is centred again
    assert adapted.mean().abs() < source_out.mean().abs()
    assert torch.equal(model(x)["logits"], source_out)
    with using_batchnorm_statistics(model, None):
        assert torch.equal(model(x)["logits"], source_out)


def test_bad_statistics_and_models_without_batch_norm_are_refused():
    model = Tiny()
    with pytest.raises(ValueError, match="do not match"):
        load_batchnorm_statistics(model, {"other.running_mean": torch.zeros(4)})
    with pytest.raises(ValueError, match="no batch-norm layers"):
        estimate_batchnorm_statistics(nn.Sequential(nn.Linear(3, 3)), batches(0.0), ("x",))
    with pytest.raises(ValueError, match="no batches"):
        estimate_batchnorm_statistics(model, [], Tiny.input_keys)
    assert model.norm.momentum == 0.1  # restored even when it failed


def test_split_batch_norm_normalises_each_domain_alone_and_keeps_source_statistics():
    torch.manual_seed(0)
    source, target = torch.randn(6, 2, 3, 5), torch.randn(4, 2, 3, 5) * 3 + 7
    split, plain = SplitBatchNorm2d(2).train(), nn.BatchNorm2d(2).train()
    model = nn.Sequential(split)
    with split_domains(model, n_source=6):
        out = split(torch.cat([source, target]))
    assert split.split is None  # reset after the block
    assert torch.allclose(out[:6], plain(source), atol=1e-5)
    target_alone = (target - target.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(
        target.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + split.eps
    )
    assert torch.allclose(out[6:], target_alone, atol=1e-4)
    # running statistics: the source half's only, exactly as a plain layer that saw the source
    assert torch.allclose(split.running_mean, plain.running_mean)
    assert torch.allclose(split.running_var, plain.running_var)
    # without a split it is a plain batch norm
    both = torch.cat([source, target])
    assert torch.allclose(split.eval()(both), plain.eval()(both))
    with pytest.raises(ValueError, match="no SplitBatchNorm2d"):
        with split_domains(nn.Sequential(nn.BatchNorm2d(2)), n_source=3):
            pass


def test_convert_swaps_in_split_batch_norm_with_the_same_weights_names_and_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Sequential(nn.BatchNorm2d(3)))
    model(torch.randn(4, 1, 6, 6))  # training mode: running statistics move away from 0/1
    with torch.no_grad():
        model[1].weight.mul_(2.0)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    parameters = [id(p) for p in model.parameters()]
    x = torch.randn(5, 1, 6, 6)
    expected = model.eval()(x)

    converted = SplitBatchNorm2d.convert(model)
    assert converted is model
    assert type(model[1]) is SplitBatchNorm2d and type(model[2][0]) is SplitBatchNorm2d
    assert not model[1].training  # the mode is kept
    assert list(model.state_dict()) == list(before)  # same keys, same order
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert [id(p) for p in model.parameters()] == parameters  # an optimizer's tensors stay valid
    assert torch.equal(model(x), expected)
    assert SplitBatchNorm2d.convert(model) is model  # converting twice changes nothing
