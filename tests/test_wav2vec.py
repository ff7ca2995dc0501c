"""The wav2vec2-family encoder: padding, layer mixing, frozen features, and offline loading.

Everything runs on the tiny random config (no download, a few seconds on a CPU). Covers
``serlib.models.wav2vec`` (the encoder), ``serlib.models.pretrained`` (which checkpoint, found
where, trained how), and the Wav2Vec2 parts of ``serlib.data`` (length-grouped batches, pooled-state
datasets) and ``serlib.cache`` (pooled-state cache).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from serlib.config import profile_settings
from serlib.data import WaveformDataset
from serlib.errors import UserError
from serlib.models import pretrained
from serlib.models.pretrained import (
    TINY_LABEL,
    EncoderNotAvailable,
    choose_encoder,
    choose_mode,
    resolve_encoder,
)
from serlib.models.wav2vec import (
    LayerMixEncoder,
    SpeechEncoder,
    build_wav2vec_encoder,
    extract_pooled_states,
    frame_counts,
    normalize_waveform,
    tiny_config,
)
from serlib.sampling import EpochSampler, LengthGroupedSampler, clip_lengths, waveform_loader
from serlib.train import parameter_groups

SECOND = 16_000


@pytest.fixture(autouse=True)
def one_thread_and_offline(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(pretrained.ENCODER_ENV, raising=False)


def tiny_backbone(seed: int = 0, kind: str = "wav2vec2", **overrides):
    """A tiny random backbone in eval mode, optionally with config fields changed."""
    from transformers import AutoModel

    config = tiny_config(kind)
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    return AutoModel.from_config(config).eval()


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random clips of the given lengths, zero-padded to the longest, with their sample mask."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for row, n in enumerate(lengths):
        x[row, :n] = torch.randn(n, generator=generator)
        mask[row, :n] = True
    return x, mask


# ---------------------------------------------------------------- the encoder itself


def test_tiny_encoder_is_labelled_seeded_and_shaped():
    first = build_wav2vec_encoder("tiny", seed=3)
    second = build_wav2vec_encoder("tiny", seed=3)
    other = build_wav2vec_encoder("tiny", seed=4)
    assert first.source.label == TINY_LABEL and not first.source.pretrained
    assert first.embedding_dim == 64 and first.num_hidden_states == 3
    x, mask = padded_batch([SECOND, SECOND // 2])
    with torch.no_grad():
        out = first(x, mask)
        assert out.shape == (2, 64)
        torch.testing.assert_close(out, second(x, mask))
        assert not torch.allclose(out, other(x, mask))


def test_feature_encoder_frozen_by_default_and_lr_groups():
    from serlib.models import build_model

    encoder = build_wav2vec_encoder("tiny")
    assert not any(p.requires_grad for p in encoder.backbone.feature_extractor.parameters())
    assert all(p.requires_grad for p in encoder.backbone.encoder.parameters())
    model = build_model("w2v2-dann", num_classes=4, encoder=encoder)
    config = profile_settings("full", "w2v2").train
    groups = parameter_groups(model, config)
    assert [g["lr"] for g in groups] == [2e-5, 3e-4] and config.weight_decay == 0.01
    backbone = {id(p) for p in encoder.backbone.parameters()}
    assert all(id(p) in backbone for p in groups[0]["params"])  # the slow group is the backbone
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in groups for p in g["params"]) == trainable
    assert model.head[0].in_features == 64 and model.head[0].out_features == 256
    assert model.domain_head[0].out_features == 64
    thawed = build_wav2vec_encoder("tiny", freeze_feature_encoder=False)
    assert all(p.requires_grad for p in thawed.backbone.feature_extractor.parameters())


def test_layer_norm_config_with_attention_mask_ignores_padding():
    """A layer-norm checkpoint gets the attention mask: padding must not change an embedding."""
    backbone = tiny_backbone(feat_extract_norm="layer", do_stable_layer_norm=True)
    encoder = SpeechEncoder(backbone, layer_weighting=True).eval()
    assert encoder.pass_attention_mask
    lengths = [SECOND, 7_000, 12_345]
    x, mask = padded_batch(lengths)
    with torch.no_grad():
        batched = encoder(x, mask)
        for row, n in enumerate(lengths):
            alone = encoder(x[row : row + 1, :n])
            torch.testing.assert_close(batched[row], alone[0], atol=1e-4, rtol=1e-4)


def test_group_norm_config_gets_no_attention_mask_but_pools_real_frames(monkeypatch):
    """Base-style checkpoints were trained without masks: none is passed, pooling still masks."""
    encoder = SpeechEncoder(tiny_backbone()).eval()
    assert not encoder.pass_attention_mask
    seen = {}
    original = encoder.backbone.forward

    def spy(input_values, attention_mask=None, **kwargs):
        seen["attention_mask"] = attention_mask
        seen["input_values"] = input_values
        return original(input_values, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(encoder.backbone, "forward", spy)
    x, mask = padded_batch([SECOND, 6_400])
    x[1, 6_400:] = 5.0  # garbage beyond the mask must be zeroed before the encoder sees it
    with torch.no_grad():
        encoder(x, mask)
    assert seen["attention_mask"] is None
    assert torch.all(seen["input_values"][1, 6_400:] == 0)
    real = seen["input_values"][1, :6_400]
    assert abs(float(real.mean())) < 1e-4 and abs(float(real.std()) - 1.0) < 1e-2
    frame_mask = encoder.frame_mask(mask, 50)
    assert frame_mask.sum(dim=1).tolist() == [49, 19]  # 320x downsampling, receptive field 345


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm"])
def test_frame_counts_match_the_frames_the_model_makes(kind):
    backbone = tiny_backbone(kind=kind)
    for n in (345, 346, 665, 666, 9_999, SECOND):
        with torch.no_grad():
            made = backbone(torch.randn(1, n)).last_hidden_state.shape[1]
        assert frame_counts(torch.tensor([n]), backbone.config).tolist() == [made], n


def test_frames_are_counted_per_clip():
    encoder = SpeechEncoder(tiny_backbone())
    lengths = torch.tensor([SECOND, 9_999, 345])
    mask = torch.arange(SECOND)[None] < lengths[:, None]
    assert encoder.frame_mask(mask, 60).sum(dim=1).tolist() == [49, 31, 1]
    assert encoder.min_samples == 345
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        encoder(torch.zeros(2, 1, 500))
    with pytest.raises(ValueError, match="right padding"):
        encoder(torch.zeros(1, 500), torch.arange(500)[None] > 10)


def test_normalize_waveform_matches_the_transformers_feature_extractor():
    from transformers import Wav2Vec2FeatureExtractor

    lengths = [SECOND, 4_321, 16_001, 400]
    generator = torch.Generator().manual_seed(7)
    x = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros_like(x, dtype=torch.bool)
    for row, n in enumerate(lengths):
        x[row, :n] = 0.3 * torch.randn(n, generator=generator) + 0.05 * row
        x[row, n:] = 9.0  # whatever lies beyond the mask must not count
        mask[row, :n] = True
    expected = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm(
        [row.numpy().copy() for row in x], mask.int().numpy()
    )
    ours = normalize_waveform(x, mask)
    np.testing.assert_allclose(ours.numpy(), np.stack(expected), atol=1e-5, rtol=0)
    assert torch.all(ours[~mask] == 0)


def test_very_short_clips_are_padded_not_fatal():
    """A 20 ms clip (shorter than one frame) and, in training, a batch shorter than one
    SpecAugment span (which transformers refuses to mask) still give embeddings."""
    encoder = SpeechEncoder(tiny_backbone(), layer_weighting=True)
    x, mask = padded_batch([320, 800])
    with torch.no_grad():
        out = encoder.eval()(x, mask)
    assert out.shape == (2, 64) and torch.isfinite(out).all()
    assert encoder.min_training_samples == 345 + 9 * 320
    encoder.train()
    encoder(x, mask).sum().backward()
    assert torch.isfinite(encoder.layer_logits.grad).all()


def test_layer_weighting_turns_layerdrop_off_and_mixes_every_layer():
    backbone = tiny_backbone()
    assert backbone.config.layerdrop > 0
    encoder = SpeechEncoder(backbone, layer_weighting=True).train()
    assert backbone.config.layerdrop == 0.0
    x, mask = padded_batch([SECOND, SECOND])
    for _ in range(3):  # with layerdrop on, some calls would return fewer hidden states
        states, _ = encoder.hidden_states(x, mask)
        assert states.shape[0] == 3
    with torch.no_grad():
        encoder.layer_logits.copy_(torch.tensor([-1e4, -1e4, 0.0]))
    encoder.eval()
    last_only = SpeechEncoder(backbone, layer_weighting=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(x, mask), last_only(x, mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["hubert", "wavlm"])
def test_other_architectures(kind):
    encoder = SpeechEncoder(tiny_backbone(kind=kind), layer_weighting=True).eval()
    x, mask = padded_batch([SECOND, 8_000])
    with torch.no_grad():
        assert encoder(x, mask).shape == (2, 64)
        assert encoder.pooled_hidden_states(x, mask).shape == (2, 3, 64)


def test_gradient_checkpointing_trains_the_transformer_only():
    encoder = build_wav2vec_encoder("tiny", gradient_checkpointing=True, layer_weighting=True)
    backbone = encoder.backbone
    checkpointing = getattr(backbone, "is_activation_checkpointing", None)  # transformers >= 5
    assert checkpointing if checkpointing is not None else backbone.is_gradient_checkpointing
    encoder.train()
    x, mask = padded_batch([SECOND, 10_000])
    encoder(x, mask).pow(2).sum().backward()
    assert encoder.layer_logits.grad is not None
    assert encoder.backbone.encoder.layers[0].attention.q_proj.weight.grad is not None
    assert all(p.grad is None for p in encoder.backbone.feature_extractor.parameters())


# ---------------------------------------------------------------- frozen features


def test_cached_pooled_states_reproduce_the_weighted_encoder():
    """Mean pooling and the layer mix commute, so heads on cached states see the same embedding."""
    encoder = build_wav2vec_encoder("tiny", layer_weighting=True).eval()
    with torch.no_grad():
        encoder.layer_logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (SECOND, 7_777)]
    cached = np.stack([extract_pooled_states(encoder, clip) for clip in clips])
    assert cached.shape == (2, 3, 64) and cached.dtype == np.float32
    mixer = LayerMixEncoder(3, 64, layer_weighting=True)
    with torch.no_grad():
        mixer.layer_logits.copy_(encoder.layer_logits)
        from_cache = mixer.mixed(torch.from_numpy(cached))
        direct = torch.cat([encoder(torch.from_numpy(c)[None]) for c in clips])
        projected = mixer(torch.from_numpy(cached))
    torch.testing.assert_close(from_cache, direct, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(projected, mixer.projection(from_cache))  # the projection comes last
    assert projected.shape == (2, 64) and (projected >= 0).all()  # Linear + ReLU, 64 wide
    last = LayerMixEncoder(3, 64, layer_weighting=False, projection=False)
    torch.testing.assert_close(last(torch.from_numpy(cached)), torch.from_numpy(cached[:, -1]))
    assert last.layer_weights().tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="pooled states"):
        mixer(torch.zeros(2, 4, 64))


def test_length_grouped_sampler_keeps_the_epoch_and_cuts_padding():

    rng = np.random.default_rng(1)
    lengths = rng.integers(1_000, 100_000, size=203)
    labels = rng.integers(0, 4, size=203)
    base = EpochSampler(203, seed=5, labels=labels)  # class-balanced draws, with replacement
    grouped = LengthGroupedSampler(EpochSampler(203, seed=5, labels=labels), lengths, 4, window=5)

    def padding(order: list[int]) -> int:
        batches = [np.array(order[i : i + 4]) for i in range(0, len(order), 4)]
        return int(sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches))

    for epoch in (0, 1):
        base.set_epoch(epoch)
        grouped.set_epoch(epoch)
        drawn, order = list(base), list(grouped)
        assert sorted(order) == sorted(drawn) and len(grouped) == 203  # same draws, new order
        assert padding(order) < 0.3 * padding(drawn)
        assert order == list(grouped)  # a resumed epoch repeats itself
    grouped.set_epoch(0)
    assert list(grouped) != order
    evaluation = LengthGroupedSampler(EpochSampler(203, shuffle=False), lengths, 4)
    assert np.all(np.diff(lengths[list(evaluation)]) <= 0)  # longest first


def test_waveform_loader_batches_similar_lengths(tmp_path):

    seconds = [0.3, 2.0, 0.35, 1.9, 0.4, 2.1, 0.32, 1.95]
    dataset = WaveformDataset(write_clips(tmp_path, seconds), [0, 1] * 4, max_seconds=2.0)
    assert clip_lengths(dataset).tolist() == [min(int(s * SECOND), 32_000) for s in seconds]
    loader = waveform_loader(dataset, 4, shuffle=False)
    widths = [batch["wave"].shape[1] for batch in loader]
    assert widths == [32_000, 6_400]  # the long clips together, then the short ones
    trained = waveform_loader(dataset, 2, shuffle=True, seed=3, balanced=True)
    mixed = 0
    for batch in trained:  # sorted draws: at most one batch straddles short and long clips
        real = batch["attention_mask"].sum(dim=1)
        mixed += int(real.min() < 0.8 * real.max())
    assert mixed <= 1


# ---------------------------------------------------------------- finding checkpoints offline


def test_choose_encoder_precedence(monkeypatch):
    assert choose_encoder() == "facebook/wav2vec2-base"
    monkeypatch.setenv("SERLIB_W2V2", "/models/hubert")
    assert choose_encoder() == "/models/hubert"
    assert choose_encoder(profile="tiny") == "tiny"
    assert choose_encoder("org/model", profile="tiny") == "org/model"


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_hub_layout_folder_loads_offline_with_identical_outputs(tmp_path, weights):
    original = tiny_backbone(seed=11)
    folder = tmp_path / "my-wav2vec2"
    folder.mkdir()
    original.config.save_pretrained(folder)
    state = {k: v.contiguous() for k, v in original.state_dict().items()}
    if weights == "model.safetensors":
        save_file(state, str(folder / weights), metadata={"format": "pt"})
    else:
        torch.save(state, folder / weights)
    encoder = build_wav2vec_encoder(str(folder))
    assert encoder.source.kind == "folder" and encoder.source.pretrained
    x, mask = padded_batch([SECOND])
    with torch.no_grad():
        expected = SpeechEncoder(original)(x, mask)
        torch.testing.assert_close(encoder(x, mask), expected)


def test_hf_cache_snapshot_is_used_without_network(tmp_path):
    original = tiny_backbone(seed=5)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-w2v2"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    original.config.save_pretrained(snapshot)
    save_file(dict(original.state_dict()), str(snapshot / "model.safetensors"), {"format": "pt"})
    source = resolve_encoder("someone/tiny-w2v2", cache_dir=tmp_path / "hub")
    assert source.kind == "cache" and commit in source.identity
    encoder = build_wav2vec_encoder("someone/tiny-w2v2", cache_dir=tmp_path / "hub")
    x, mask = padded_batch([SECOND])
    with torch.no_grad():
        torch.testing.assert_close(encoder(x, mask), SpeechEncoder(original)(x, mask))


def test_missing_checkpoints_fail_fast_with_a_one_line_how_to(tmp_path, monkeypatch):
    started = time.perf_counter()
    for name in (str(tmp_path / "nowhere"), "./not-here"):
        with pytest.raises(EncoderNotAvailable, match="does not exist"):
            resolve_encoder(name)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderNotAvailable, match="no config.json"):
        resolve_encoder(str(empty))
    tiny_config().save_pretrained(empty)
    with pytest.raises(EncoderNotAvailable, match="no weights"):
        resolve_encoder(str(empty))
    with pytest.raises(EncoderNotAvailable) as offline:
        build_wav2vec_encoder("facebook/wav2vec2-base", cache_dir=tmp_path / "empty-cache")
    message = str(offline.value)
    assert "\n" not in message and "HF_HUB_OFFLINE" in message
    assert "--encoder" in message and "tiny" in message and "hf download" in message
    assert "SERLIB_W2V2" in message
    assert isinstance(offline.value, UserError)  # the command line answers it in one line
    assert time.perf_counter() - started < 5.0
    with pytest.raises(EncoderNotAvailable, match="non-empty"):
        resolve_encoder("  ")
    with pytest.raises(EncoderNotAvailable, match="neither a folder nor a hub model id"):
        resolve_encoder("not a model")


def test_a_cached_snapshot_without_weights_is_not_a_checkpoint(tmp_path):
    """An interrupted download leaves config.json alone in the cache: that is not usable."""
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "models--someone--partial"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    tiny_config().save_pretrained(repo / "snapshots" / commit)
    assert pretrained.cached_snapshot("someone/partial", tmp_path / "hub") is None
    with pytest.raises(EncoderNotAvailable, match="HF_HUB_OFFLINE"):
        resolve_encoder("someone/partial", cache_dir=tmp_path / "hub")


def test_online_a_hub_model_is_left_to_from_pretrained_and_its_failure_explained(
    tmp_path, monkeypatch
):
    """With the network allowed, resolving asks nobody (transformers downloads when loading);
    a failed download ends in the same one-line advice as a missing checkpoint offline."""
    from huggingface_hub import constants
    from transformers import AutoModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)  # the Makefile sets it
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    source = resolve_encoder("someone/not-cached", cache_dir=tmp_path / "empty-cache")
    assert (source.kind, source.location) == ("hub", "someone/not-cached")

    def unreachable(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck")

    monkeypatch.setattr(AutoModel, "from_pretrained", unreachable)
    with pytest.raises(EncoderNotAvailable, match="could not be downloaded") as failed:
        build_wav2vec_encoder("someone/not-cached", cache_dir=tmp_path / "empty-cache")
    message = str(failed.value)
    assert "\n" not in message and "couldn't connect" in message and "--encoder" in message


# ---------------------------------------------------------------- saving, modes, frozen runs


def test_fine_tuned_encoder_round_trips_through_its_description():
    from serlib.models import build_model
    from serlib.models.wav2vec import describe_speech_encoder, rebuild_speech_encoder

    encoder = build_wav2vec_encoder("tiny", layer_weighting=True, seed=2)
    with torch.no_grad():
        encoder.layer_logits.copy_(torch.tensor([0.5, -0.5, 1.0]))
    model = build_model("w2v2", num_classes=4, encoder=encoder).eval()
    description = describe_speech_encoder(encoder)
    assert description["encoder_label"] == TINY_LABEL
    rebuilt = build_model("w2v2", num_classes=4, encoder=rebuild_speech_encoder(description))
    rebuilt.load_state_dict(dict(model.state_dict()))
    rebuilt.eval()
    x, mask = padded_batch([SECOND, 9_000])
    with torch.no_grad():
        assert torch.equal(rebuilt(x, mask)["logits"], model(x, mask)["logits"])


def test_choose_mode(monkeypatch):
    monkeypatch.delenv("SERLIB_W2V2_MODE", raising=False)
    # Without word of a GPU (the command line) the full profile is the GPU one.
    assert choose_mode(profile="full") == "finetune"
    assert choose_mode(profile="workshop") == choose_mode(profile="tiny") == "frozen"
    # Told whether a GPU is there (the notebooks), the rule follows it, except in tiny.
    assert choose_mode(profile="workshop", gpu=True) == "finetune"
    assert choose_mode(profile="full", gpu=False) == "frozen"
    assert choose_mode(profile="tiny", gpu=True) == "frozen"
    monkeypatch.setenv("SERLIB_W2V2_MODE", "finetune")
    assert choose_mode(profile="tiny") == "finetune"
    assert choose_mode("frozen", profile="full") == "frozen"
    with pytest.raises(UserError, match="SERLIB_W2V2_MODE.*frozen, finetune"):
        choose_mode("half")


def write_clips(folder, seconds: list[float]) -> list[str]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for i, duration in enumerate(seconds):
        path = folder / f"clip{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(int(duration * SECOND)).astype(np.float32), SECOND)
        paths.append(str(path))
    return paths


def test_pooled_states_are_extracted_once_and_feed_a_dann_model(tmp_path, monkeypatch):
    import pandas as pd

    from serlib.audio import load_audio
    from serlib.cache import load_pooled_states
    from serlib.data import PooledStatesDataset
    from serlib.inputs import FrozenInputs
    from serlib.models import build_model

    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    paths = write_clips(tmp_path, [0.5, 1.2, 0.8])
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    table = pd.DataFrame({"path": [*paths, str(tmp_path / "broken.wav")], "label": list("abab")})
    encoder = build_wav2vec_encoder("tiny")
    first = load_pooled_states(paths, encoder, progress=False)
    again = load_pooled_states(paths, encoder, progress=False)
    assert first.n_computed == 3 and again.n_computed == 0
    for a, b in zip(first.arrays, again.arrays, strict=True):
        assert a.shape == (3, 64) and np.array_equal(a, b)
    fresh = extract_pooled_states(encoder, load_audio(paths[1]))
    np.testing.assert_allclose(first.arrays[1].astype(np.float32), fresh, rtol=2e-3, atol=2e-3)
    other_seed = load_pooled_states(paths, build_wav2vec_encoder("tiny", seed=1), progress=False)
    assert other_seed.n_computed == 3  # different weights, different cache entries

    inputs = FrozenInputs.from_encoder(encoder)
    kept, arrays, skipped = inputs.read(table)
    assert len(kept) == 3 and len(skipped) == 1 and "broken.wav" in skipped[0].path
    restored = FrozenInputs.from_dict(inputs.to_dict())
    assert restored == inputs and restored.to_dict()["encoder_label"] == TINY_LABEL
    source = inputs.dataset(arrays, [0, 1, 0], train=True)
    target = PooledStatesDataset(arrays[:2], None, domain=1)
    batch = PooledStatesDataset.collate([source[0], source[1], source[2]])
    target_batch = PooledStatesDataset.collate([target[0], target[1]])
    assert batch["x"].shape == (3, 3, 64) and batch["label"].tolist() == [0, 1, 0]
    assert target_batch["label"].tolist() == [-1, -1] and target_batch["domain"].tolist() == [1, 1]
    model = build_model("w2v2-dann", 4, encoder=restored.head_encoder())
    out = model(torch.cat([batch["x"], target_batch["x"]]), grl_coefficient=0.5)
    assert out["logits"].shape == (5, 4) and out["domain_logits"].shape == (5, 2)
    # A run whose encoder has changed since must not silently read other features.
    stale = FrozenInputs.from_dict({**inputs.to_dict(), "identity": "tiny:other"})
    with pytest.raises(ValueError, match="not the one this run was trained on"):
        stale.read(table)


def test_frozen_dann_has_a_projection_to_align_and_w2v2_has_the_same_one():
    """Frozen features cannot move: the reversed domain gradient must reach something that can."""
    import torch.nn.functional as F

    from serlib.inputs import FrozenInputs
    from serlib.models import build_model

    inputs = FrozenInputs("tiny", "tiny:test:seed0", num_hidden_states=3, embedding_dim=64)
    torch.manual_seed(0)
    dann = build_model("w2v2-dann", 4, encoder=inputs.head_encoder()).eval()
    plain = build_model("w2v2", 4, encoder=inputs.head_encoder())
    shapes = {name: p.shape for name, p in dann.encoder.named_parameters()}
    assert shapes == {name: p.shape for name, p in plain.encoder.named_parameters()}
    assert shapes == {
        "layer_logits": (3,),
        "projection.0.weight": (64, 64),
        "projection.0.bias": (64,),
    }
    states, domains = torch.randn(6, 3, 64), torch.tensor([0, 0, 0, 1, 1, 1])
    weight = dann.encoder.projection[0].weight
    through_reversal = F.cross_entropy(dann(states, grl_coefficient=0.4)["domain_logits"], domains)
    (reversed_grad,) = torch.autograd.grad(through_reversal, weight)
    without = F.cross_entropy(dann.domain_head(dann.encoder(states)), domains)
    (plain_grad,) = torch.autograd.grad(without, weight)
    assert plain_grad.abs().max() > 0
    torch.testing.assert_close(reversed_grad, -0.4 * plain_grad, rtol=1e-5, atol=1e-9)
    # A run saved before the projection existed reads back without one, so its weights still load.
    older = FrozenInputs.from_dict({k: v for k, v in inputs.to_dict().items() if k != "projection"})
    assert not older.projection and list(older.head_encoder().state_dict()) == ["layer_logits"]


def test_frozen_training_settings():
    config = profile_settings("workshop", "w2v2-frozen").train
    assert config.encoder_lr is None and config.lr == 3e-4 and config.weight_decay == 0.01
    assert (config.epochs, config.batch_size) == (40, 32)
    assert profile_settings("tiny", "w2v2-frozen", epochs=7, batch_size=None).train.epochs == 7


# ---------------------------------------------------------------- whole runs (train, evaluate, predict)


@pytest.mark.parametrize(
    ("model", "mode"), [("w2v2-dann", "frozen"), ("w2v2", "finetune")], ids=["frozen", "finetune"]
)
def test_tiny_run_trains_evaluates_predicts_and_reloads(
    model, mode, iemocap_corpus, ravdess_corpus, tmp_path, monkeypatch
):
    from serlib.runs import evaluate_run, load_run, predict_files, train_run

    monkeypatch.setenv("SERLIB_HOME", str(tmp_path / "home"))
    started = time.perf_counter()
    result = train_run(
        model,
        f"iemocap:{iemocap_corpus.root}",
        tmp_path / "run",
        target=f"ravdess:{ravdess_corpus.root}",
        profile="tiny",
        epochs=2,
        w2v2_mode=mode,
        progress=False,
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["encoder"] == "tiny" and config["encoder_label"] == TINY_LABEL
    assert config["w2v2_mode"] == mode
    assert config["inputs"]["kind"] == ("w2v2-pooled" if mode == "frozen" else "waveform")
    assert {"source_test", "target_test"} <= set(result.metrics)
    for name in ("config.json", "model.safetensors", "history.csv", "metrics.json"):
        assert (tmp_path / "run" / name).is_file()

    assert result.metrics["model"]["encoder_label"] == TINY_LABEL
    scores = evaluate_run(tmp_path / "run", f"ravdess:{ravdess_corpus.root}", "test")
    assert scores["encoder_label"] == TINY_LABEL
    assert scores["n"] == result.metrics["target_test"]["n"]
    assert scores["ua"] == pytest.approx(result.metrics["target_test"]["ua"])
    files = sorted(str(p) for p in Path(ravdess_corpus.root).rglob("*.wav"))[:3]
    reloaded = load_run(tmp_path / "run")
    trained = dataclasses.replace(reloaded, model=result.model.eval())
    first, skipped = predict_files(trained, files)
    again, _ = predict_files(reloaded, files)
    assert not skipped and [r["path"] for r in first] == files
    assert first == again  # the checkpoint round-trip gives identical outputs
    assert time.perf_counter() - started < 60
