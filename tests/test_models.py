"""The CRNN's shapes and size, masking, gradient reversal, the DANN ramp, and the encoder contract."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from serlib.errors import UserError
from serlib.models import (
    DANN,
    CRNNEncoder,
    EmotionClassifier,
    GradientReversal,
    build_model,
    confusion_loss,
    count_parameters,
    encoder_inputs,
    grl_coefficient,
)
from serlib.models.adabn import SplitBatchNorm2d
from serlib.models.dann import DomainAdversarialLoss, concat_inputs

torch.set_num_threads(1)


def test_crnn_has_the_study_size():
    """3 conv blocks + BiLSTM(128) on 128 mels + 256->128->4: 2,356,804 weights (the LSTM is 2.23 M)."""
    model = build_model("crnn", 4)
    total = count_parameters(model)
    print(f"CRNN (4 classes): {total:,} parameters")
    lstm = 2 * 4 * 128 * (128 * 16 + 128 + 2)  # two directions, four gates, input + hidden + biases
    conv = (9 * 1 * 32 + 32 + 64) + (9 * 32 * 64 + 64 + 128) + (9 * 64 * 128 + 128 + 256)
    head = (256 * 128 + 128) + (128 * 4 + 4)
    assert count_parameters(model.encoder.lstm) == lstm == 2_230_272
    assert total == lstm + conv + head == 2_356_804


def test_band_pooling_feeds_the_bilstm_the_mean_over_mel_bands():
    """``pool_bands``: 128 features a step instead of 2048, so a BiLSTM of 0.26 M weights."""
    torch.manual_seed(0)
    pooled = build_model("crnn", 4, pool_bands=True)
    lstm = 2 * 4 * 128 * (128 + 128 + 2)  # as in the study's CRNN, but 128 inputs, not 128 * 16
    assert count_parameters(pooled.encoder.lstm) == lstm == 264_192
    encoder, x = pooled.encoder.eval(), torch.randn(2, 1, 128, 40)
    with torch.no_grad():
        maps = encoder.conv(x)  # [2, 128, 16, 5]
        by_hand, _ = encoder.lstm(maps.mean(dim=2).transpose(1, 2))  # [2, 5, 256]
        torch.testing.assert_close(encoder(x), by_hand.mean(dim=1))
    with pytest.raises(RuntimeError, match="size mismatch"):  # a run must say it was pooled
        build_model("crnn", 4).load_state_dict(pooled.state_dict())
    with pytest.raises(UserError, match="pool_bands applies to CRNN models"):
        build_model("w2v2", 4, pool_bands=True)


def test_crnn_shapes_and_probabilities():
    model = build_model("crnn", 5).eval()
    x = torch.randn(3, 1, 128, 40)
    out = model(x, torch.ones(3, 40, dtype=torch.bool))
    assert out["embedding"].shape == (3, 256)
    assert out["logits"].shape == (3, 5)
    assert torch.isfinite(out["logits"]).all()


def test_crnn_ignores_what_the_mask_hides():
    """Frames far past the real ones change nothing once the mask marks them as padding."""
    torch.manual_seed(0)
    encoder = CRNNEncoder(n_mels=32).eval()
    x = torch.randn(2, 1, 32, 128)
    mask = torch.zeros(2, 128, dtype=torch.bool)
    mask[:, :64] = True
    noisy = x.clone()
    noisy[..., 96:] = 10 * torch.randn_like(noisy[..., 96:])
    with torch.no_grad():
        assert torch.allclose(encoder(x, mask), encoder(noisy, mask), atol=1e-6)
        assert not torch.allclose(encoder(x), encoder(noisy), atol=1e-3)


def test_crnn_takes_clips_shorter_than_one_pooled_step():
    """5 frames (80 ms) are fewer than the 8 the three pools need: they are padded, not refused."""
    encoder = CRNNEncoder().eval()
    with torch.no_grad():
        assert torch.isfinite(encoder(torch.randn(2, 1, 128, 5))).all()


def test_crnn_rejects_wrong_shapes():
    encoder = CRNNEncoder()
    with pytest.raises(ValueError, match=r"\[B, 1, 128, T\]"):
        encoder(torch.randn(2, 128, 40))
    with pytest.raises(ValueError, match="divisible"):
        CRNNEncoder(n_mels=100)


def test_gradient_reversal_flips_and_scales():
    x = torch.ones(4, requires_grad=True)
    y = GradientReversal()(x, 0.3)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full((4,), -0.3))


def test_grl_ramp_starts_at_zero_rises_and_is_capped():
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(0.1, cap=1.0) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    ramp = [grl_coefficient(p / 20, cap=1.0) for p in range(21)]
    assert all(a < b for a, b in zip(ramp[:-1], ramp[1:], strict=True))
    assert grl_coefficient(1.0) == 0.7  # the study's cap
    assert grl_coefficient(5.0, cap=1.0) == grl_coefficient(1.0, cap=1.0)  # progress is clipped


class WaveEncoder(nn.Module):
    """A stand-in for Wav2Vec2: another input name, another width."""

    input_keys = ("wave",)
    embedding_dim = 6

    def __init__(self):
        super().__init__()
        self.project = nn.Linear(10, 6)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.project(wave)


def test_dann_wraps_any_encoder_and_reverses_only_the_domain_path():
    torch.manual_seed(0)
    model = DANN(WaveEncoder(), num_classes=3, emotion_hidden=4, domain_hidden=4, dropout=0.0)
    batch = {"wave": torch.randn(5, 10), "label": torch.zeros(5)}
    out = model(*encoder_inputs(batch, model.input_keys), grl_coefficient=0.5)
    assert out["logits"].shape == (5, 3) and out["domain_logits"].shape == (5, 2)

    def encoder_grad(coefficient: float) -> torch.Tensor:
        model.zero_grad()
        out = model(batch["wave"], grl_coefficient=coefficient)
        out["domain_logits"].sum().backward()
        return model.encoder.project.weight.grad.clone()

    plain = encoder_grad(-1.0)  # coefficient -1 = no reversal
    assert torch.allclose(encoder_grad(0.5), -0.5 * plain, atol=1e-6)


def test_confusion_loss_moves_only_the_encoder_and_is_lowest_at_fifty_fifty():
    torch.manual_seed(0)
    model = DANN(WaveEncoder(), num_classes=3, emotion_hidden=4, domain_hidden=4, dropout=0.0)
    embedding = model.encoder(torch.randn(5, 10))
    loss = confusion_loss(model.domain_head, embedding)
    loss.backward()
    assert model.encoder.project.weight.grad.abs().sum() > 0
    assert all(weight.grad is None for weight in model.domain_head.parameters())

    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[5.0, 0.0], [0.0, 5.0]]))
    unsure = confusion_loss(head, torch.tensor([[1.0, 1.0]]))  # logits equal: 50/50
    assert unsure.item() == pytest.approx(math.log(2))
    sure = confusion_loss(head, torch.tensor([[1.0, 0.0]]))
    fooled = confusion_loss(head, torch.tensor([[0.0, 1.0]]))
    # bounded below by log 2, and a confidently wrong head scores no better than a right one:
    # the encoder gains nothing by flipping the domains (unlike reversed cross-entropy)
    assert sure.item() == pytest.approx(fooled.item()) and sure.item() > unsure.item()


def test_classifier_and_builder_check_their_inputs():
    with pytest.raises(TypeError, match="embedding_dim"):
        EmotionClassifier(nn.Linear(2, 2), 3)
    with pytest.raises(UserError, match="unknown model"):
        build_model("resnet", 4)
    with pytest.raises(UserError, match="2 classes"):
        build_model("crnn", 1)
    with pytest.raises(UserError, match="split_batchnorm needs the dann model"):
        build_model("crnn", 4, split_batchnorm=True)
    with pytest.raises(UserError, match="divisible"):
        CRNNEncoder(n_mels=100)
    with pytest.raises(KeyError, match="no mask"):
        encoder_inputs({"x": torch.zeros(1)}, ("x", "mask"))
    assert isinstance(build_model("dann", 4), DANN)


def test_only_a_dann_built_with_split_batchnorm_has_split_layers():
    def kinds(model: nn.Module) -> set[type]:
        return {type(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}

    torch.manual_seed(0)
    plain = build_model("dann", 4)
    torch.manual_seed(0)
    split = build_model("dann", 4, split_batchnorm=True)
    assert kinds(plain) == {nn.BatchNorm2d} and kinds(split) == {SplitBatchNorm2d}
    assert kinds(build_model("crnn", 4)) == {nn.BatchNorm2d}
    # same weights from the same seed, under the same names: old run folders load into either
    assert list(plain.state_dict()) == list(split.state_dict())
    for name, tensor in plain.state_dict().items():
        assert torch.equal(tensor, split.state_dict()[name]), name


def hand_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights=None) -> torch.Tensor:
    """Cross-entropy written out: -log softmax at the true class, a weighted mean over rows."""
    log_probabilities = logits - logits.exp().sum(dim=1, keepdim=True).log()
    chosen = -log_probabilities[torch.arange(len(targets)), targets]
    row_weights = torch.ones(len(targets)) if weights is None else weights[targets]
    return (row_weights * chosen).sum() / row_weights.sum()


@pytest.mark.parametrize("adversary", ["reversal", "confusion"])
def test_domain_adversarial_loss_equals_a_hand_computation(adversary):
    """4 source rows (labelled) and 3 target rows, 3 emotions, class weights, coefficient 0.6."""
    generator = torch.Generator().manual_seed(0)
    head = nn.Linear(5, 2)  # the domain head: no dropout, so the confusion term is deterministic
    outputs = {
        "logits": torch.randn(7, 3, generator=generator),
        "domain_logits": torch.randn(7, 2, generator=generator),
        "embedding": torch.randn(7, 5, generator=generator),
    }
    labels = torch.tensor([0, 2, 1, 2])
    class_weights = torch.tensor([0.5, 1.0, 2.0])
    loss = DomainAdversarialLoss(adversary, weight=0.25)
    parts = loss(outputs, labels, 0.6, domain_head=head, class_weights=class_weights)

    emotion = hand_cross_entropy(outputs["logits"][:4], labels, class_weights)
    domains = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    domain = hand_cross_entropy(outputs["domain_logits"], domains)
    expected = emotion + 0.25 * domain
    if adversary == "confusion":
        head_logits = outputs["embedding"] @ head.weight.T + head.bias
        fooling = -(head_logits - head_logits.exp().sum(dim=1, keepdim=True).log()).mean()
        expected = expected + 0.25 * 0.6 * fooling
        assert parts.fooling.item() == pytest.approx(fooling.item(), abs=1e-6)
        assert (
            loss.reversal_coefficient(0.6) == 0.0
        )  # the head's own loss must not reach the encoder
    else:
        assert parts.fooling is None and loss.reversal_coefficient(0.6) == 0.6
    assert parts.emotion.item() == pytest.approx(emotion.item(), abs=1e-6)
    assert parts.domain.item() == pytest.approx(domain.item(), abs=1e-6)
    assert parts.total.item() == pytest.approx(expected.item(), abs=1e-6)
    correct = int((outputs["domain_logits"].argmax(dim=1) == domains).sum())
    assert (parts.domain_correct.item(), parts.domain_seen) == (correct, 7)
    assert parts.domain_accuracy == pytest.approx(correct / 7)


def test_domain_adversarial_loss_checks_its_settings_and_joint_batches_pad_time():
    with pytest.raises(UserError, match="adversary must be one of reversal, confusion"):
        DomainAdversarialLoss("wasserstein")
    with pytest.raises(UserError, match="domain_weight"):
        DomainAdversarialLoss("reversal", weight=-1.0)
    source = (torch.ones(2, 1, 4, 5), torch.ones(2, 5, dtype=torch.bool))
    target = (torch.ones(3, 1, 4, 8), torch.ones(3, 8, dtype=torch.bool))
    x, mask = concat_inputs(source, target)
    assert x.shape == (5, 1, 4, 8) and mask.shape == (5, 8)
    assert not mask[:2, 5:].any() and mask[2:].all() and x[:2, ..., 5:].abs().sum() == 0
