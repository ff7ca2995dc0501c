"""The course opens three boxes by hand; each hand computation must equal serlib's to 1e-5.

Each test is the code a notebook shows (01: a log-mel; 02: one CRNN training step; 03: one DANN
step's loss and what gradient reversal does to the encoder's gradient), followed by the check that
it gives what serlib gives for the same input. If serlib's frontend, loop or loss changes, the
notebook's "equals serlib" stops being true, and these tests say so first.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import librosa
import numpy as np
import torch
import torch.nn.functional as F

from serlib.config import profile_settings
from serlib.features import FrontendConfig, log_mel
from serlib.hardware import make_accelerator
from serlib.models import build_model
from serlib.models.dann import DomainAdversarialLoss, concat_inputs
from serlib.train import build_optimizer, train_one_epoch

torch.set_num_threads(1)

TOLERANCE = 1e-5
"""What the course promises: the hand computation equals serlib's to this (absolute)."""


def voiced_clip(seconds: float = 1.3, sample_rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A speech-like test clip: silence, then a 180 Hz voice with three harmonics, plus noise.

    The length is not a multiple of the hop, and the silence puts part of the picture on the
    80 dB floor, so padding, framing and the floor are all exercised.
    """
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(0.3 / k * np.sin(2 * np.pi * 180 * k * time) for k in (1, 2, 3))
    wave = voice + 0.01 * rng.standard_normal(len(time))
    wave[: sample_rate // 5] = 0.0
    return wave.astype(np.float32)


def log_mel_by_hand(waveform: np.ndarray, config: FrontendConfig) -> torch.Tensor:
    """Notebook 01's cell: frames, window, power spectrum, mel filters, decibels."""
    x = torch.from_numpy(waveform)
    half = config.n_fft // 2
    padded = F.pad(x, (half, half))  # zeros on both sides: frame t is centred on sample t * hop
    window = torch.from_numpy(librosa.filters.get_window("hann", config.n_fft)).float()
    spectrum = torch.stft(  # cuts frames of n_fft samples every hop, windows each, FFT
        padded, config.n_fft, config.hop_length, window=window, center=False, return_complex=True
    )  # [n_fft // 2 + 1 frequencies, T frames]
    power = spectrum.abs() ** 2
    filters = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)
    mel_power = torch.from_numpy(filters) @ power  # [n_mels, T]: each band sums nearby frequencies
    decibels = 10 * torch.log10(mel_power.clamp_min(config.amin))  # log, with a floor at amin
    return torch.maximum(decibels, decibels.max() - config.top_db)  # nothing below peak - 80 dB


def test_log_mel_by_hand_equals_serlib():
    config = FrontendConfig()
    waveform = voiced_clip()
    by_hand = log_mel_by_hand(waveform, config).numpy()
    ours = log_mel(waveform, config)
    assert by_hand.shape == ours.shape == (config.n_mels, 1 + len(waveform) // config.hop_length)
    assert (ours == ours.min()).any()  # the silence really reaches the top_db floor
    np.testing.assert_allclose(by_hand, ours, rtol=0, atol=TOLERANCE)


def frames_by_hand(waveform: np.ndarray, config: FrontendConfig) -> torch.Tensor:
    """The framing torch.stft does, written out: rows of n_fft samples, one every hop."""
    half = config.n_fft // 2
    padded = F.pad(torch.from_numpy(waveform), (half, half))
    return padded.unfold(0, config.n_fft, config.hop_length)  # [T, n_fft]


def test_stft_is_an_fft_of_windowed_frames():
    """What notebook 01 says torch.stft does: FFT of each windowed frame, nothing more."""
    config = FrontendConfig()
    waveform = voiced_clip(seconds=0.4)
    frames = frames_by_hand(waveform, config)
    window = torch.from_numpy(librosa.filters.get_window("hann", config.n_fft)).float()
    half = config.n_fft // 2
    stft = torch.stft(
        F.pad(torch.from_numpy(waveform), (half, half)),
        config.n_fft,
        config.hop_length,
        window=window,
        center=False,
        return_complex=True,
    )
    torch.testing.assert_close(torch.fft.rfft(frames * window).T, stft, rtol=0, atol=1e-4)


def log_mel_batch(n_clips: int, frames: int, seed: int) -> dict[str, torch.Tensor]:
    """A labelled batch shaped like serlib's log-mel batches: x [B, 1, 128, T], mask, label."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(n_clips, 1, 128, frames, generator=generator),
        "mask": torch.ones(n_clips, frames, dtype=torch.bool),
        "label": torch.arange(n_clips) % 4,
    }


def crnn_step_by_hand(model: torch.nn.Module, batch: dict, config) -> float:
    """Notebook 02's cell: forward, cross-entropy, backward, clipping, one AdamW step."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    model.train()  # batch norm uses this batch's statistics, dropout drops
    logits = model(batch["x"], batch["mask"])["logits"]  # [B, 4]
    loss = F.cross_entropy(logits, batch["label"])
    loss.backward()  # every weight's gradient
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)  # the norm capped at 1
    optimizer.step()  # each weight moves against its gradient, scaled by Adam
    optimizer.zero_grad()
    return loss.item()


def serlib_step(model: torch.nn.Module, batch: dict, config) -> float:
    """The same step through serlib's own loop: one epoch on a one-batch loader."""
    optimizer, _ = build_optimizer(model, config)
    row = train_one_epoch(
        model, [batch], optimizer, make_accelerator(config), config, epoch=0, progress=False
    )
    return row["train_loss"]


def largest_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest absolute difference between two models' weights and batch-norm statistics."""
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return max((x.double() - y.double()).abs().max().item() for x, y in pairs)


def test_one_crnn_training_step_by_hand_equals_serlibs_loop():
    """Dropout draws random masks, so both paths start from the same seed: the same units drop.

    (Evaluation mode would switch dropout off but also make batch norm use its running
    statistics, which is not what training does.) Float32 on both sides: no autocast.
    """
    config = replace(profile_settings("workshop", "crnn").train, cpu=True, mixed_precision="no")
    batch = log_mel_batch(8, 64, seed=0)
    torch.manual_seed(0)
    model = build_model("crnn", num_classes=4)
    start = copy.deepcopy(model)
    by_hand = copy.deepcopy(model)

    torch.manual_seed(1)
    hand_loss = crnn_step_by_hand(by_hand, batch, config)
    torch.manual_seed(1)
    serlib_loss = serlib_step(model, batch, config)

    assert abs(hand_loss - serlib_loss) <= TOLERANCE
    assert largest_difference(by_hand, model) <= TOLERANCE
    assert largest_difference(start, model) > 100 * TOLERANCE  # the step really moved the weights
    other_dropout = copy.deepcopy(start)
    torch.manual_seed(2)
    serlib_step(other_dropout, batch, config)
    assert largest_difference(other_dropout, model) > TOLERANCE  # why the seeds above matter


def test_one_dann_loss_by_hand_equals_domain_adversarial_loss():
    """Notebook 03's cell: emotion CE on the source rows + weight x domain CE on every row."""
    torch.manual_seed(0)
    dann = build_model("dann", num_classes=4)
    source, target = log_mel_batch(4, 64, seed=1), log_mel_batch(3, 80, seed=2)
    coefficient, weight = 0.7, 0.5
    inputs = concat_inputs((source["x"], source["mask"]), (target["x"], target["mask"]))
    outputs = dann(*inputs, grl_coefficient=coefficient)  # source rows first, then target rows

    n_source, n_target = len(source["label"]), len(target["label"])
    emotion = F.cross_entropy(outputs["logits"][:n_source], source["label"])  # labelled rows only
    domains = torch.tensor([0] * n_source + [1] * n_target)  # 0 = source, 1 = target
    domain = F.cross_entropy(outputs["domain_logits"], domains)  # every row
    by_hand = emotion + weight * domain

    parts = DomainAdversarialLoss("reversal", weight)(
        outputs, source["label"], coefficient, domain_head=dann.domain_head
    )
    assert abs(by_hand.item() - parts.total.item()) <= TOLERANCE
    assert abs(emotion.item() - parts.emotion.item()) <= TOLERANCE
    assert abs(domain.item() - parts.domain.item()) <= TOLERANCE


def test_gradient_reversal_flips_the_encoders_gradient_and_leaves_the_heads():
    """Notebook 03's cell: the domain loss's gradient on an encoder weight, through the
    reversal layer and without it. Evaluation mode, so both passes see the same network."""
    torch.manual_seed(0)
    dann = build_model("dann", num_classes=4).eval()
    source, target = log_mel_batch(4, 64, seed=1), log_mel_batch(4, 64, seed=2)
    x, mask = concat_inputs((source["x"], source["mask"]), (target["x"], target["mask"]))
    domains = torch.tensor([0] * 4 + [1] * 4)
    coefficient = 0.7

    embedding = dann.encoder(x, mask)
    through_reversal = F.cross_entropy(
        dann.domain_head(dann.reverse(embedding, coefficient)), domains
    )
    without_reversal = F.cross_entropy(dann.domain_head(embedding), domains)
    encoder_weight = dann.encoder.lstm.weight_ih_l0
    head_weight = dann.domain_head[0].weight
    reversed_grads = torch.autograd.grad(
        through_reversal, (encoder_weight, head_weight), retain_graph=True
    )
    plain_grads = torch.autograd.grad(without_reversal, (encoder_weight, head_weight))

    encoder_size, head_size = (grad.abs().max().item() for grad in plain_grads)
    assert encoder_size > 0 and head_size > 0  # gradients worth comparing
    flipped = (reversed_grads[0] + coefficient * plain_grads[0]).abs().max().item()
    assert flipped <= TOLERANCE * encoder_size  # the encoder's gradient: times -coefficient
    unchanged = (reversed_grads[1] - plain_grads[1]).abs().max().item()
    assert unchanged <= TOLERANCE * head_size  # the domain head's own gradient: as it was
