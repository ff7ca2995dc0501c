"""Pretrained speech encoders (wav2vec2, HuBERT, WavLM) from transformers, as serlib encoders.

A speech encoder turns a raw 16 kHz waveform into one vector per 20 ms frame::

    waveform            [B, T]          zero mean, unit variance per clip (as the checkpoint expects)
    CNN feature encoder [B, F, 512]     7 strided convolutions, 320x fewer steps (frozen by default)
    transformer         [B, F, D]       12 layers in a base model, D = 768
    hidden states       [S, B, F, D]    S = layers + 1: the transformer's input (the CNN's
                                        projected output + positional convolution), every layer's
    pooling             [B, D]          mean over the frames that are speech, not padding

``SpeechEncoder`` wraps any such checkpoint so that the DANN wrapper and ``EmotionClassifier``
can put their heads on it, exactly as on the CRNN. With ``layer_weighting`` it learns a softmax
weight per hidden state and pools their weighted sum (the SUPERB recipe: emotion lives more in
the middle layers than in the last one); without it, it pools the last layer.

Two ways to use it (``serlib.models.pretrained.choose_mode`` picks one):

* fine-tuning (GPU): the transformer trains in mixed precision and the run pools the last layer
  (``build_model`` builds the encoder without ``layer_weighting``); batch 4 of 6-s clips of a base
  model peaks at about 2.8 GiB in fp16, 2.1 GiB with ``gradient_checkpointing``
  (benchmarks/RESULTS_w2v2.md), far inside a 16 GB T4;
* frozen features (CPU): ``extract_pooled_states`` runs the encoder once per file and keeps the
  mean of every hidden state, [S, D] (``serlib.cache.load_pooled_states`` stores them);
  ``LayerMixEncoder`` learns the softmax layer weights and a projection (Linear + ReLU, D wide),
  and the heads train on its output, from those cached vectors, in minutes. Mean pooling and the
  weighted sum are both linear, so pooling first loses nothing; the projection comes after both.

Which checkpoint, and where it is found, is ``serlib.models.pretrained``'s job;
``build_wav2vec_encoder`` asks it, then loads the weights. The name ``tiny`` builds a small
randomly initialised wav2vec2 (``tiny_config``) instead, for tests and offline workshops.

transformers is imported inside the functions that build a model: importing it takes seconds,
and a CRNN user never needs it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import try_to_load_from_cache
from torch import nn

from serlib.models.pretrained import (
    EncoderNotAvailable,
    EncoderSource,
    cached_snapshot,
    choose_encoder,
    how_to_provide,
    resolve_encoder,
)

SAMPLE_RATE = 16_000
"""All wav2vec2-family checkpoints are trained on 16 kHz audio."""

PREPROCESSOR_FILE = "preprocessor_config.json"
"""The checkpoint's feature-extractor settings; its ``do_normalize`` says how to prepare audio."""


def tiny_config(kind: str = "wav2vec2"):
    """A wav2vec2-shaped config small enough for CPU tests: 64 wide, 2 layers, 50 frames/s.

    The conv stack keeps the real 320x downsampling (strides 5, 4, 4, 4) so frame counts, masks
    and pooling behave as with ``wav2vec2-base``; only the widths and depths shrink.
    ``kind`` may also be ``hubert`` or ``wavlm`` to exercise those architectures.
    """
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig  # slow import: see above

    config_class = {"wav2vec2": Wav2Vec2Config, "hubert": HubertConfig, "wavlm": WavLMConfig}
    if kind not in config_class:
        raise ValueError(f"unknown tiny kind {kind!r}; choose one of {', '.join(config_class)}")
    return config_class[kind](
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32, 32, 32, 32),
        conv_kernel=(10, 8, 4, 4),
        conv_stride=(5, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        vocab_size=32,
    )


def tiny_identity(seed: int) -> str:
    """The identity of the tiny encoder built with ``seed``: a digest of its config and the seed,
    so cached features of two different tiny encoders never mix."""
    digest = hashlib.sha1(tiny_config().to_json_string().encode()).hexdigest()[:12]
    return f"tiny:{digest}:seed{seed}"


# --------------------------------------------------------------------------------------------
# Loading the backbone from a resolved source
# --------------------------------------------------------------------------------------------


def load_backbone(source: EncoderSource, cache_dir: str | Path | None = None, seed: int = 0):
    """The transformers model for ``source``, in eval mode; tiny ones are seeded, not downloaded.

    Folder and cached checkpoints load with ``local_files_only=True``, so transformers never tries
    the network for them; a hub checkpoint that cannot be downloaded raises the same
    ``EncoderNotAvailable`` advice as one that is missing offline.
    """
    from transformers import AutoModel  # slow import: see the module docstring

    if source.kind == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AutoModel.from_config(tiny_config()).eval()
    try:
        model = AutoModel.from_pretrained(
            source.location,
            cache_dir=cache_dir,
            local_files_only=source.kind in {"folder", "cache"},
        )
    except OSError as error:
        if source.kind != "hub":
            raise
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise EncoderNotAvailable(
            f"encoder {source.name!r} is not on disk and could not be downloaded ({reason}); "
            f"{how_to_provide(source.name)}"
        ) from error
    return model.eval()


def backbone_from_config(config: dict):
    """An untrained backbone with the architecture described by ``config`` (a config.json dict).

    Used to rebuild a saved run's encoder before its own weights are loaded into it, so that
    evaluating a fine-tuned run never needs the original checkpoint.
    """
    from transformers import AutoConfig, AutoModel  # slow import: see the module docstring

    config = dict(config)
    model_type = config.pop("model_type", None)
    if model_type is None:
        raise ValueError("the saved encoder config has no model_type")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **config)).eval()


def wants_normalized_input(source: EncoderSource, cache_dir: str | Path | None = None) -> bool:
    """Whether the checkpoint was trained on zero-mean unit-variance audio (its feature extractor's
    ``do_normalize``; true for wav2vec2-base and when unknown)."""
    if source.kind == "folder":
        preprocessor = Path(source.location) / PREPROCESSOR_FILE
    elif source.kind in {"cache", "hub"}:
        found = try_to_load_from_cache(source.location, PREPROCESSOR_FILE, cache_dir=cache_dir)
        preprocessor = Path(found) if isinstance(found, str) else None
    else:
        preprocessor = None
    if preprocessor is None or not preprocessor.is_file():
        return True
    return bool(json.loads(preprocessor.read_text()).get("do_normalize", True))


# --------------------------------------------------------------------------------------------
# The pieces: input normalisation, frame counts, pooling, the layer mix
# --------------------------------------------------------------------------------------------


def uses_attention_mask(config) -> bool:
    """Checkpoints with layer-norm conv stacks take an attention mask; group-norm ones (base
    models) were trained without one and must see zero padding instead, kept short by grouping
    clips of similar length into a batch (``serlib.sampling.waveform_loader``)."""
    return getattr(config, "feat_extract_norm", "layer") == "layer"


def normalize_waveform(waveform: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each clip's real samples; padding stays exactly 0.

    What transformers' ``Wav2Vec2FeatureExtractor`` does to its input (epsilon 1e-7), done on
    the batch tensor so it can run on the GPU.
    """
    keep = mask.to(waveform.dtype)
    count = keep.sum(dim=1, keepdim=True).clamp(min=1.0)
    mean = (waveform * keep).sum(dim=1, keepdim=True) / count
    variance = (((waveform - mean) * keep) ** 2).sum(dim=1, keepdim=True) / count
    return (waveform - mean) / torch.sqrt(variance + 1e-7) * keep


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples one output frame of the conv stack sees: the shortest clip that yields a frame
    (400 samples, 25 ms, for wav2vec2-base)."""
    field = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        field = (field - 1) * stride + kernel
    return int(field)


def frame_counts(samples: torch.Tensor, config) -> torch.Tensor:
    """Frames the CNN feature encoder makes from clips of ``samples`` [B] samples.

    Each convolution (no padding) turns n steps into floor((n - kernel) / stride) + 1, the
    ``torch.nn.Conv1d`` formula; an adapter (rare in speech-emotion checkpoints) adds strided
    kernel-1 steps of its own.
    """
    lengths = samples.long()
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    if getattr(config, "add_adapter", False):
        for _ in range(config.num_adapter_layers):
            lengths = torch.div(lengths - 1, config.adapter_stride, rounding_mode="floor") + 1
    return lengths


def masked_mean(frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the time axis (-2) of ``frames`` [..., F, D], counting only real frames."""
    keep = frame_mask.to(frames.dtype).unsqueeze(-1)
    return (frames * keep).sum(dim=-2) / keep.sum(dim=-2).clamp(min=1.0)


def mix_layers(states: torch.Tensor, layer_logits: torch.Tensor) -> torch.Tensor:
    """Softmax-weighted sum over the layer axis (0) of ``states`` [S, ...]."""
    weights = torch.softmax(layer_logits.float(), dim=0).to(states.dtype)
    return torch.tensordot(weights, states, dims=([0], [0]))


def enable_gradient_checkpointing(backbone: nn.Module) -> None:
    """Recompute transformer activations in the backward pass: about 3x less activation memory
    for about 30 % more compute (the name changed in transformers 5)."""
    enable = getattr(backbone, "activation_checkpointing_enable", None)
    if enable is None:
        enable = backbone.gradient_checkpointing_enable
    enable()


# --------------------------------------------------------------------------------------------
# The encoders
# --------------------------------------------------------------------------------------------


class SpeechEncoder(nn.Module):
    """Waveform [B, T] (+ sample mask [B, T]) -> utterance embedding [B, D].

    ``backbone`` is a transformers wav2vec2/HuBERT/WavLM model. The CNN feature encoder is
    frozen unless ``freeze_feature_encoder=False`` (it is the part that generalises best and the
    most memory-hungry to train). With ``layer_weighting`` the embedding pools a learned softmax
    mix of all hidden states; layerdrop is then switched off, because a dropped layer would leave
    its weight nothing to weigh.
    """

    input_keys = ("wave", "attention_mask")
    """The batch entries ``forward`` takes (``serlib.data.collate_waves``): waveform, sample mask."""

    def __init__(
        self,
        backbone: nn.Module,
        layer_weighting: bool = False,
        freeze_feature_encoder: bool = True,
        normalize: bool = True,
        source: EncoderSource | None = None,
    ):
        super().__init__()
        config = backbone.config
        self.backbone = backbone
        self.source = source
        self.embedding_dim = int(config.hidden_size)
        self.num_hidden_states = int(config.num_hidden_layers) + 1
        self.pass_attention_mask = uses_attention_mask(config)
        self.min_samples = receptive_field(config.conv_kernel, config.conv_stride)
        self.min_training_samples = self.min_samples
        if getattr(config, "apply_spec_augment", True) and config.mask_time_prob > 0:
            hop = int(np.prod(config.conv_stride))
            self.min_training_samples += (config.mask_time_length - 1) * hop
        self.normalize = normalize
        self.layer_weighting = layer_weighting
        if layer_weighting:
            config.layerdrop = 0.0
            self.layer_logits = nn.Parameter(torch.zeros(self.num_hidden_states))
        if freeze_feature_encoder:
            self.freeze_feature_encoder()

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the CNN feature encoder."""
        for parameter in self.backbone.feature_extractor.parameters():
            parameter.requires_grad = False

    def frame_mask(self, sample_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """[B, F] True for frames computed from real samples, from each clip's sample count."""
        lengths = frame_counts(sample_mask.sum(dim=1), self.backbone.config)
        frames = torch.arange(num_frames, device=sample_mask.device)
        return frames.unsqueeze(0) < lengths.to(sample_mask.device).unsqueeze(1)

    def hidden_states(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All hidden states [S, B, F, D] (S = layers + 1) and the frame mask [B, F]."""
        x, mask = self._check_inputs(x, mask)
        output = self._run_backbone(x, mask, all_layers=True)
        states = torch.stack(tuple(output.hidden_states))
        return states, self.frame_mask(mask, states.shape[2])

    def forward(
        self, wave: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x, mask = self._check_inputs(wave, attention_mask)
        output = self._run_backbone(x, mask, all_layers=self.layer_weighting)
        if self.layer_weighting:
            frames = mix_layers(self._stacked(output.hidden_states), self.layer_logits)
        else:
            frames = output.last_hidden_state
        return masked_mean(frames, self.frame_mask(mask, frames.shape[1]))

    @torch.no_grad()
    def pooled_hidden_states(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean-pooled states of every layer, [B, S, D]: the frozen-feature cache entry."""
        states, frame_mask = self.hidden_states(x, mask)
        return masked_mean(states, frame_mask).transpose(0, 1)

    def _check_inputs(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate, then right-pad the batch so that the backbone can run on it.

        Returns the waveform and the mask of samples the encoder treats as real. Clips shorter
        than the conv stack's receptive field are zero-padded to it (one frame, not a crash); in
        training, a batch shorter than one SpecAugment span (10 frames, 0.2 s) is padded to that
        span, since transformers refuses to mask a shorter sequence. Padding stays out of pooling.
        """
        if x.ndim != 2:
            raise ValueError(f"expected a waveform batch [B, T], got shape {tuple(x.shape)}")
        if mask is None:
            mask = torch.ones_like(x, dtype=torch.bool)
        if mask.shape != x.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != waveform shape {tuple(x.shape)}")
        mask = mask.bool()
        if not bool(mask[:, 0].all()):
            raise ValueError("every clip needs real samples from its start (right padding only)")
        needed = self.min_training_samples if self.training else self.min_samples
        if x.shape[1] < needed:
            extra = needed - x.shape[1]
            x = torch.nn.functional.pad(x, (0, extra))
            mask = torch.nn.functional.pad(mask, (0, extra), value=False)
        x = x * mask.to(x.dtype)
        lengths = mask.sum(dim=1).clamp(min=self.min_samples)
        return x, torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]

    def _run_backbone(self, x: torch.Tensor, mask: torch.Tensor, all_layers: bool):
        if self.normalize:
            x = normalize_waveform(x, mask)
        attention_mask = mask.long() if self.pass_attention_mask else None
        return self.backbone(x, attention_mask=attention_mask, output_hidden_states=all_layers)

    def _stacked(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if len(hidden_states) != self.num_hidden_states:
            raise RuntimeError(
                f"the backbone returned {len(hidden_states)} hidden states, expected "
                f"{self.num_hidden_states}; is layerdrop on?"
            )
        return torch.stack(tuple(hidden_states))


class LayerMixEncoder(nn.Module):
    """Cached per-layer pooled states [B, S, D] -> embedding [B, D]: the frozen-feature encoder.

    Two steps. The layer mix: with ``layer_weighting`` a learned softmax weight per hidden state
    (the SUPERB recipe; uniform at the start), without it the last layer alone. Then, with
    ``projection``, a trainable Linear(D, D) + ReLU: the frozen encoder's features cannot move, so
    without it a DANN's reversed gradient reaches only the S layer-mix logits and has nothing to
    align; the projection gives the adversary (and the emotion head) features it can reshape.
    """

    input_keys = ("x",)

    def __init__(
        self,
        num_hidden_states: int,
        embedding_dim: int,
        layer_weighting: bool = True,
        projection: bool = True,
    ):
        super().__init__()
        self.num_hidden_states = int(num_hidden_states)
        self.embedding_dim = int(embedding_dim)
        self.layer_weighting = layer_weighting
        if layer_weighting:
            self.layer_logits = nn.Parameter(torch.zeros(self.num_hidden_states))
        width = self.embedding_dim  # the heads read D-wide embeddings, as from the encoder itself
        layers = [nn.Linear(width, width), nn.ReLU()] if projection else []  # []: older runs
        self.projection = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.mixed(x))

    def mixed(self, x: torch.Tensor) -> torch.Tensor:
        """The layer mix alone, [B, D]: the frozen features before the projection."""
        expected = (self.num_hidden_states, self.embedding_dim)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected pooled states [B, {expected[0]}, {expected[1]}], got {tuple(x.shape)}"
            )
        if self.layer_weighting:
            return mix_layers(x.transpose(0, 1), self.layer_logits)
        return x[:, -1]

    def layer_weights(self) -> torch.Tensor:
        """The current softmax weight per layer (uniform start; one-hot on the last without mixing)."""
        if self.layer_weighting:
            return torch.softmax(self.layer_logits.detach(), dim=0)
        weights = torch.zeros(self.num_hidden_states)
        weights[-1] = 1.0
        return weights


# --------------------------------------------------------------------------------------------
# Building an encoder by name; frozen features of one clip
# --------------------------------------------------------------------------------------------


def build_wav2vec_encoder(
    name: str | None = None,
    layer_weighting: bool = False,
    freeze_feature_encoder: bool = True,
    gradient_checkpointing: bool = False,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> SpeechEncoder:
    """Resolve ``name`` (default: ``choose_encoder()``), fail fast if it is unavailable, load it
    and wrap it as a ``SpeechEncoder``; ``encoder.source`` says where it came from."""
    source = resolve_encoder(name or choose_encoder(), cache_dir=cache_dir)
    if source.kind == "tiny":  # its config and seed make these weights: both are their identity
        source = replace(source, identity=tiny_identity(seed))
    backbone = load_backbone(source, cache_dir=cache_dir, seed=seed)
    if source.kind == "hub":  # now downloaded: name the exact revision, as for a cached one
        snapshot = cached_snapshot(source.name, cache_dir)
        if snapshot is not None:
            source = replace(source, identity=f"hub:{source.name}@{snapshot.name}")
    if gradient_checkpointing:
        enable_gradient_checkpointing(backbone)
    return SpeechEncoder(
        backbone,
        layer_weighting=layer_weighting,
        freeze_feature_encoder=freeze_feature_encoder,
        normalize=wants_normalized_input(source, cache_dir=cache_dir),
        source=source,
    )


def extract_pooled_states(
    encoder: SpeechEncoder, waveform: np.ndarray, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Per-layer mean-pooled states [S, D] (float32) of one mono 16 kHz clip.

    One clip at a time, so there is no padding at all: the cached features are exactly what the
    encoder gives the clip alone, whichever kind of normalisation the checkpoint uses.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"expected a mono waveform [T], got shape {waveform.shape}")
    encoder.eval()
    x = torch.from_numpy(waveform).unsqueeze(0).to(device)
    return encoder.pooled_hidden_states(x)[0].float().cpu().numpy()


# --------------------------------------------------------------------------------------------
# Saving and rebuilding a fine-tuned encoder
# --------------------------------------------------------------------------------------------


def describe_speech_encoder(encoder: SpeechEncoder) -> dict:
    """What a run folder must hold to rebuild ``encoder``'s architecture without the hub: its
    transformers config and our settings. The weights themselves go to model.safetensors."""
    source = encoder.source
    return {
        "encoder": source.name if source else None,
        "encoder_label": source.label if source else "unknown encoder",
        "identity": source.identity if source else None,
        "backbone_config": encoder.backbone.config.to_dict(),
        "layer_weighting": encoder.layer_weighting,
        "normalize": encoder.normalize,
    }


def rebuild_speech_encoder(description: dict) -> SpeechEncoder:
    """An encoder with the architecture of ``describe_speech_encoder``'s output and random
    weights, ready for ``load_state_dict``; needs no checkpoint and no network."""
    encoder = SpeechEncoder(
        backbone_from_config(description["backbone_config"]),
        layer_weighting=bool(description["layer_weighting"]),
        normalize=bool(description["normalize"]),
    )
    if description.get("encoder"):
        encoder.source = EncoderSource(
            name=description["encoder"], kind="run", location="", identity=description["identity"]
        )
    return encoder
