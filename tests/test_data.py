"""Batches have the documented shapes, crops and orders are reproducible, masking stays in bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from serlib.augment import SpecAugment
from serlib.data import FeatureDataset, WaveformDataset, encode_labels
from serlib.epochs import epoch_seed, set_loader_epoch, target_batches
from serlib.features import MelStats
from serlib.predict import predict
from serlib.sampling import EpochSampler, make_loader

N_MELS = 8


def ramps(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    """Clips whose frame t holds t plus a per-clip integer offset: exact in float16 up to 2048."""
    offsets = np.random.default_rng(seed).integers(-3, 4, size=len(lengths))
    return [
        (np.tile(np.arange(n, dtype=np.float32), (N_MELS, 1)) + off).astype(np.float16)
        for n, off in zip(lengths, offsets, strict=True)
    ]


def no_normalisation(features: list[np.ndarray], **kwargs: object) -> FeatureDataset:
    return FeatureDataset(features, normalisation="none", **kwargs)


def batches(loader: torch.utils.data.DataLoader, epoch: int) -> list[dict]:
    set_loader_epoch(loader, epoch)
    return list(loader)


def test_fixed_length_batch_has_documented_fields() -> None:
    features = ramps([12, 4, 9])
    dataset = no_normalisation(features, labels=[0, 2, 1], n_frames=6, domain=1)
    batch = next(iter(make_loader(dataset, batch_size=3, shuffle=False)))
    assert batch["x"].shape == (3, 1, N_MELS, 6) and batch["x"].dtype == torch.float32
    # evaluation order: longest clip first (12, 9, then 4 frames), each row keeps its index
    assert batch["index"].tolist() == [0, 2, 1] and batch["label"].dtype == torch.long
    assert batch["mask"].dtype == torch.bool and batch["mask"].sum(dim=1).tolist() == [6, 6, 4]
    assert batch["label"].tolist() == [0, 1, 2] and batch["domain"].tolist() == [1, 1, 1]
    assert torch.all(batch["x"][2, 0, :, 4:] == 0)  # short clip padded with pad_value


def test_evaluation_batches_go_longest_first_and_predictions_come_back_in_table_order() -> None:
    lengths = [3, 40, 5, 38, 4, 39]
    dataset = no_normalisation(ramps(lengths), labels=[0, 1, 0, 1, 0, 1], n_frames=None)
    loader = make_loader(dataset, batch_size=2, shuffle=False)
    padded = [batch["x"].shape[-1] for batch in loader]
    assert padded == [40, 38, 4]  # in table order the batches would pad to 40, 38, 39

    class MeanModel(torch.nn.Module):
        input_keys = ("x",)

        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> dict:
            mean = x.mean(dim=(1, 2, 3)) * self.scale
            logits = torch.stack([mean, -mean], dim=1)
            return {"logits": logits, "embedding": logits}

    model = MeanModel()
    found = predict(model, loader, embeddings=True)
    assert found.index.tolist() == list(range(len(lengths)))
    assert found.label.tolist() == [0, 1, 0, 1, 0, 1]


def test_unlabelled_items_have_label_minus_one() -> None:
    batch = next(iter(make_loader(no_normalisation(ramps([5, 5])), 2, shuffle=False)))
    assert batch["label"].tolist() == [-1, -1]


def test_variable_length_batches_pad_to_the_longest_with_a_mask() -> None:
    dataset = no_normalisation(ramps([3, 7, 5]), n_frames=None, fixed_length=False)
    batch = next(iter(make_loader(dataset, 3, shuffle=False)))  # longest first: 7, 5, 3
    assert batch["x"].shape[-1] == 7 and batch["mask"].sum(dim=1).tolist() == [7, 5, 3]
    np.testing.assert_allclose(
        batch["x"][0, 0, 0].numpy(), dataset.features[1][0].astype(np.float32)
    )
    capped = no_normalisation(ramps([3, 7, 5]), n_frames=4, fixed_length=False, crop="start")
    batch = next(iter(make_loader(capped, 3, shuffle=False)))
    assert batch["x"].shape[-1] == 4 and sorted(batch["mask"].sum(dim=1).tolist()) == [3, 4, 4]


def test_crops_are_reproducible_per_epoch_and_differ_between_epochs() -> None:
    features = ramps([400] * 6)
    first_frames = []
    for epoch in (0, 1, 0):
        dataset = no_normalisation(features, n_frames=300, seed=5)
        dataset.set_epoch(epoch)
        first_frames.append(
            [float(dataset[i]["x"][0, 0, 0]) - float(features[i][0, 0]) for i in range(6)]
        )
    assert first_frames[0] == first_frames[2] and first_frames[0] != first_frames[1]
    assert all(0 <= start <= 100 for start in first_frames[0])
    centred = no_normalisation(features, n_frames=300, crop="center")
    assert float(centred[0]["x"][0, 0, 0]) - float(features[0][0, 0]) == 50


def test_resumed_run_sees_the_same_batches() -> None:
    """Epoch 2 of a run that went through epochs 0 and 1 equals epoch 2 of a fresh run."""
    features = ramps([20 + i for i in range(10)])
    labels = np.arange(10) % 3

    def loader() -> torch.utils.data.DataLoader:
        dataset = no_normalisation(features, labels=labels, n_frames=8, seed=11)
        return make_loader(dataset, batch_size=4, shuffle=True, seed=11)

    full_run = loader()
    batches(full_run, 0), batches(full_run, 1)
    resumed = batches(loader(), 2)
    for a, b in zip(batches(full_run, 2), resumed, strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["x"], b["x"])
    assert not torch.equal(batches(loader(), 1)[0]["index"], resumed[0]["index"])


def test_epoch_sampler_permutes_and_balances() -> None:
    sampler = EpochSampler(50, seed=1)
    assert sorted(sampler) == list(range(50)) and list(sampler) != list(range(50))
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]
    labels = np.array([0] * 90 + [1] * 10)
    balanced = EpochSampler(100, seed=2, labels=labels, num_samples=4000)
    share = np.mean(labels[list(balanced)] == 1)
    assert 0.45 < share < 0.55
    with pytest.raises(ValueError, match="labelled"):
        EpochSampler(3, labels=[0, -1, 1])


def test_normalisations() -> None:
    features = ramps([30, 50, 40], seed=3)
    stats = MelStats.fit(features)
    whole = FeatureDataset(features, n_frames=None, fixed_length=False, stats=stats)
    frames = np.concatenate([whole[i]["x"][0].numpy() for i in range(3)], axis=1)
    np.testing.assert_allclose(frames.mean(axis=1), 0, atol=1e-3)
    np.testing.assert_allclose(frames.std(axis=1), 1, atol=1e-3)
    per_clip = FeatureDataset(features, n_frames=None, normalisation="utterance")
    x = per_clip[1]["x"][0].numpy()
    np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-3)
    np.testing.assert_allclose(x.std(axis=1), 1, atol=1e-3)
    with pytest.raises(ValueError, match="needs stats"):
        FeatureDataset(features)
    with pytest.raises(ValueError, match="crop"):
        FeatureDataset(features, normalisation="none", crop="middle")


def test_encode_labels_names_unknown_labels() -> None:
    names = ["angry", "happy", "neutral", "sad"]
    assert encode_labels(["sad", "angry"], names).tolist() == [3, 0]
    with pytest.raises(ValueError, match="calm"):
        encode_labels(["sad", "calm"], names)


def first_indices(loader: torch.utils.data.DataLoader, epoch: int, n: int) -> list[list[int]]:
    """The item indices of the first ``n`` target batches of ``epoch``."""
    batches = target_batches(loader, epoch)
    return [next(batches)["index"].tolist() for _ in range(n)]


def test_target_batches_restart_the_target_deterministically() -> None:
    """A DANN epoch outlasts its small target loader: each restart is a new, repeatable pass."""
    target = make_loader(
        no_normalisation(ramps([10] * 5), n_frames=8, domain=1),
        2,
        shuffle=True,
        seed=2,
        drop_last=True,
    )  # 2 batches a pass
    first, again = first_indices(target, 3, 6), first_indices(target, 3, 6)
    assert first == again
    passes = {tuple(first[i] + first[i + 1]) for i in (0, 2, 4)}
    assert len(passes) > 1  # each restart draws its own order
    assert first_indices(target, 4, 6) != first
    batch = next(target_batches(target, 0))
    assert batch["domain"].tolist() == [1, 1] and batch["label"].tolist() == [-1, -1]
    empty = make_loader(no_normalisation(ramps([10]), n_frames=8), 2, shuffle=True, drop_last=True)
    with pytest.raises(ValueError, match="no batches"):
        next(target_batches(empty, 0))


def test_epoch_seed_depends_on_every_argument() -> None:
    seeds = {epoch_seed(s, e, c, k) for s in (0, 1) for e in (0, 1) for c in (0, 1) for k in (0, 1)}
    assert len(seeds) == 16 and all(0 <= seed < 2**63 for seed in seeds)
    assert epoch_seed(3, 4) == epoch_seed(3, 4, 0, 0)


def test_spec_augment_masks_inside_real_frames_only() -> None:
    x = torch.ones(6, 1, 32, 50)
    mask = torch.arange(50)[None, :] < torch.tensor([50, 40, 30, 20, 10, 5])[:, None]
    augment = SpecAugment(freq_masks=0, time_masks=3, time_width=8, mask_value=-1.0)
    out = augment(x, mask, generator=torch.Generator().manual_seed(0))
    hidden_frames = (out == -1.0).all(dim=2)[:, 0]  # [B, T]
    assert hidden_frames.any() and not (hidden_frames & ~mask).any()
    again = augment(x, mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    bands = SpecAugment(freq_masks=2, freq_width=4, time_masks=0)(
        x, generator=torch.Generator().manual_seed(1)
    )
    hidden_bands = (bands == 0).all(dim=3)[:, 0]  # [B, n_mels]
    assert 0 < hidden_bands.sum(dim=1).max() <= 8 and torch.equal(
        bands == 0, hidden_bands[:, None, :, None].expand_as(bands)
    )
    assert torch.equal(augment.eval()(x, mask), x)


def test_waveform_batches_for_wav2vec2(tmp_path: Path) -> None:
    paths = []
    for i, seconds in enumerate((0.5, 1.0, 2.0)):
        paths.append(tmp_path / f"w{i}.wav")
        sf.write(paths[-1], np.random.default_rng(i).normal(0.3, 0.1, int(seconds * 16000)), 16000)
    (tmp_path / "bad.wav").write_bytes(b"")
    paths.insert(1, tmp_path / "bad.wav")
    dataset = WaveformDataset(paths, labels=[0, 1, 2, 3], max_seconds=1.5, crop="center")
    assert [Path(s.path).name for s in dataset.skipped] == ["bad.wav"] and dataset.kept == [0, 2, 3]
    batch = next(iter(make_loader(dataset, 3, shuffle=False)))
    assert batch["wave"].shape == (3, 24000) and batch["attention_mask"].dtype == torch.long
    assert batch["attention_mask"].sum(dim=1).tolist() == [8000, 16000, 24000]
    assert batch["label"].tolist() == [0, 2, 3]
    first = batch["wave"][0, :8000]
    assert abs(float(first.mean())) < 1e-4 and abs(float(first.std()) - 1) < 1e-2
    assert torch.all(batch["wave"][0, 8000:] == 0)
