"""Pretrained speech encoders (wav2vec2, HuBERT, WavLM) from transformers, as serlib encoders.

A speech encoder turns a raw 16 kHz waveform into one vector per 20 ms frame::

    waveform            [B, T]          zero mean, unit variance per clip (as the checkpoint expects)
    CNN feature encoder [B, F, 512]     7 strided convolutions, 320x fewer steps (frozen by default)
    transformer         [B, F, D]       12 layers in a base model, D = 768
    pooling             [B, D]          mean over the frames that are speech, not padding

``SpeechEncoder`` wraps any such checkpoint so that the DANN wrapper and ``EmotionClassifier``
can put their heads on it, exactly as on the CRNN. With ``layer_weighting`` it learns a softmax
weight per hidden layer and pools their weighted sum (the SUPERB recipe: emotion lives more in
the middle layers than in the last one).

Two ways to use it:

* fine-tuning (GPU; ``choose_mode`` picks it in the full profile): the transformer trains in
  mixed precision; batch 4 of 6-s clips of a base model peaks at about 2.8 GiB in fp16, 2.1 GiB
  with ``gradient_checkpointing`` (benchmarks/RESULTS_w2v2.md), far inside a 16 GB T4;
* frozen features (CPU, the tiny and workshop profiles): ``pooled_hidden_states`` runs the
  encoder once per file and keeps the mean of every layer, [S, D]; ``LayerMixEncoder`` then
  learns the layer weights (or takes the last layer) and the heads train on those cached vectors
  in minutes.
  Because mean pooling and the weighted sum are both linear, pooling first loses nothing.

Checkpoints come from a local folder laid out as on the hub (``config.json`` plus
``model.safetensors`` or ``pytorch_model.bin``), from the Hugging Face cache, or, when the
network is reachable, from the hub. Nothing else is tried: a checkpoint that is not local and
cannot be fetched raises ``EncoderNotAvailable`` with a one-line how-to, at once. The name
``tiny`` builds a small randomly initialised wav2vec2 instead, for tests and offline workshops;
everything it produces must be labelled ``TINY_LABEL``.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

DEFAULT_ENCODER = "facebook/wav2vec2-base"
"""The study's encoder; 95 M parameters, 12 layers, 768 wide."""

TINY_ENCODER = "tiny"
"""The name of the small random config that needs no download."""

TINY_LABEL = "tiny random encoder (not pretrained)"
"""How every output of the tiny encoder is labelled, so nobody mistakes it for a real result."""

ENCODER_ENV = "SERLIB_W2V2"
"""Environment variable that picks the encoder when ``--encoder`` is not given."""

SAMPLE_RATE = 16_000
"""All wav2vec2-family checkpoints are trained on 16 kHz audio."""

CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""The weight files ``from_pretrained`` reads, single-file or sharded."""

PROBE_TIMEOUT_S = 3.0
"""How long the one reachability check of the hub may take before we give up."""

ENCODER_LR = 2e-5
HEAD_LR = 3e-4
WEIGHT_DECAY = 0.01
"""AdamW settings: the pretrained encoder moves slowly, the fresh heads fast."""


class EncoderNotAvailable(ValueError):
    """The requested checkpoint is neither on disk nor reachable; the message says what to do."""


def how_to_provide(name: str) -> str:
    """The one-line advice shared by every 'not available' message."""
    return (
        f"pass --encoder /path/to/folder (config.json + model.safetensors or pytorch_model.bin), "
        f"or download it once where there is network (`hf download {name}`, then reuse the HF "
        f"cache or copy the folder; Colab has network), or use --encoder {TINY_ENCODER} "
        f"for the small random test encoder"
    )


def choose_encoder(requested: str | None = None, profile: str | None = None) -> str:
    """The encoder to use: ``requested``, else ``tiny`` in the tiny profile, else $SERLIB_W2V2.

    The tiny profile must run offline in seconds, so it never falls back to a download.
    """
    if requested:
        return requested
    if profile == "tiny":
        return TINY_ENCODER
    return os.environ.get(ENCODER_ENV, "").strip() or DEFAULT_ENCODER


def is_tiny(name: str) -> bool:
    """True for the small random config (any spelling of ``tiny``)."""
    return name.strip().lower() == TINY_ENCODER


def encoder_label(name: str) -> str:
    """What outputs, run folders and plots should call this encoder."""
    return TINY_LABEL if is_tiny(name) else name


def tiny_config(kind: str = "wav2vec2"):
    """A wav2vec2-shaped config small enough for CPU tests: 64 wide, 2 layers, 50 frames/s.

    The conv stack keeps the real 320x downsampling (strides 5, 4, 4, 4) so frame counts, masks
    and pooling behave as with ``wav2vec2-base``; only the widths and depths shrink.
    ``kind`` may also be ``hubert`` or ``wavlm`` to exercise those architectures.
    """
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig

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


# --------------------------------------------------------------------------------------------
# Finding a checkpoint without hanging on the network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderSource:
    """Where a checkpoint will be read from.

    ``kind`` is ``tiny`` (built from ``tiny_config``), ``folder`` (a local directory), ``cache``
    (already in the Hugging Face cache) or ``hub`` (to be downloaded; the hub answered a probe).
    ``location`` is what ``from_pretrained`` gets; ``identity`` changes whenever the weights do,
    so feature caches keyed on it never mix two encoders.
    """

    name: str
    kind: str
    location: str
    identity: str

    @property
    def label(self) -> str:
        return encoder_label(self.name)

    @property
    def pretrained(self) -> bool:
        return self.kind != TINY_ENCODER


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when the user told huggingface_hub/transformers to stay offline."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(
        os.environ.get("TRANSFORMERS_OFFLINE")
    )


def _folder_source(name: str, folder: Path) -> EncoderSource:
    """Check a local checkpoint folder the way ``from_pretrained`` will read it."""
    if not folder.is_dir():
        raise EncoderNotAvailable(f"encoder folder {folder} does not exist; {how_to_provide(name)}")
    if not (folder / CONFIG_FILE).is_file():
        raise EncoderNotAvailable(
            f"encoder folder {folder} has no {CONFIG_FILE}; {how_to_provide(name)}"
        )
    weights = [folder / w for w in WEIGHT_FILES if (folder / w).is_file()]
    if not weights:
        raise EncoderNotAvailable(
            f"encoder folder {folder} has no weights ({' or '.join(WEIGHT_FILES[::2])}); "
            f"{how_to_provide(name)}"
        )
    stat = weights[0].stat()
    identity = f"folder:{folder.resolve()}:{weights[0].name}:{stat.st_size}:{stat.st_mtime_ns}"
    return EncoderSource(
        name=name, kind="folder", location=str(folder.resolve()), identity=identity
    )


def _cached_snapshot(repo_id: str, cache_dir: str | Path | None) -> Path | None:
    """The snapshot folder of ``repo_id`` in the HF cache if config and weights are both there."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, CONFIG_FILE, cache_dir=cache_dir)
    if not isinstance(config, str):
        return None
    for weights in WEIGHT_FILES:
        if isinstance(try_to_load_from_cache(repo_id, weights, cache_dir=cache_dir), str):
            return Path(config).parent
    return None


def probe_hub(repo_id: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """One short HEAD request for the checkpoint's config; None if fine, else the reason."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/{repo_id}/resolve/main/{CONFIG_FILE}"
    from huggingface_hub import get_token

    token = get_token()  # private or gated models answer 401 without it
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method="HEAD", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return f"{endpoint} answered 404 for {repo_id!r} (no such model, or a proxy in the way)"
        return f"{endpoint} answered HTTP {error.code} for {repo_id!r} (gated or private: log in)"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"the hub ({endpoint}) is not reachable ({reason})"


def resolve_encoder(
    name: str, cache_dir: str | Path | None = None, probe_timeout: float = PROBE_TIMEOUT_S
) -> EncoderSource:
    """Decide, without hanging, where checkpoint ``name`` comes from; else EncoderNotAvailable.

    Order: ``tiny``; an existing local folder; the HF cache; the hub, but only when
    HF_HUB_OFFLINE is not set and one HEAD request with a ``probe_timeout`` limit succeeds.
    Only in that last case will loading download anything, and then the user asked for it by
    naming a hub model (or leaving the default) with the network on.
    """
    if not isinstance(name, str) or not name.strip():
        raise EncoderNotAvailable(f"encoder name must be a non-empty string, got {name!r}")
    name = name.strip()
    if is_tiny(name):
        digest = hashlib.sha1(tiny_config().to_json_string().encode()).hexdigest()[:12]
        return EncoderSource(name=TINY_ENCODER, kind="tiny", location="", identity=f"tiny:{digest}")
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        return _folder_source(name, path)
    snapshot = _cached_snapshot(name, cache_dir)
    if snapshot is not None:
        identity = f"hub:{name}@{snapshot.name}"
        return EncoderSource(name=name, kind="cache", location=name, identity=identity)
    if hub_offline():
        raise EncoderNotAvailable(
            f"encoder {name!r} is not on disk or in the HF cache and HF_HUB_OFFLINE is set; "
            f"{how_to_provide(name)}"
        )
    problem = probe_hub(name, timeout=probe_timeout)
    if problem is not None:
        raise EncoderNotAvailable(
            f"encoder {name!r} is not on disk and {problem}; {how_to_provide(name)}"
        )
    return EncoderSource(name=name, kind="hub", location=name, identity=f"hub:{name}@main")


def load_backbone(source: EncoderSource, cache_dir: str | Path | None = None, seed: int = 0):
    """The transformers model for ``source``, in eval mode; tiny ones are seeded, not downloaded.

    Cached and folder checkpoints load with ``local_files_only=True`` so transformers never
    tries the network for them.
    """
    from transformers import AutoModel

    if source.kind == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModel.from_config(tiny_config())
    else:
        model = AutoModel.from_pretrained(
            source.location,
            cache_dir=cache_dir,
            local_files_only=source.kind in {"folder", "cache"},
        )
    return model.eval()


def backbone_from_config(config: dict):
    """An untrained backbone with the architecture described by ``config`` (a config.json dict).

    Used to rebuild a saved run's encoder before its own weights are loaded into it, so that
    evaluating a fine-tuned run never needs the original checkpoint.
    """
    from transformers import AutoConfig, AutoModel

    config = dict(config)
    model_type = config.pop("model_type", None)
    if model_type is None:
        raise ValueError("the saved encoder config has no model_type")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **config)).eval()


def wants_normalized_input(source: EncoderSource, cache_dir: str | Path | None = None) -> bool:
    """Whether the checkpoint was trained on zero-mean unit-variance audio (its feature extractor's
    ``do_normalize``; true for wav2vec2-base and when unknown)."""
    if source.kind == "folder":
        preprocessor = Path(source.location) / "preprocessor_config.json"
    elif source.kind in {"cache", "hub"}:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(
            source.location, "preprocessor_config.json", cache_dir=cache_dir
        )
        preprocessor = Path(found) if isinstance(found, str) else None
    else:
        preprocessor = None
    if preprocessor is None or not preprocessor.is_file():
        return True
    return bool(json.loads(preprocessor.read_text()).get("do_normalize", True))


# --------------------------------------------------------------------------------------------
# The encoder module
# --------------------------------------------------------------------------------------------


def uses_attention_mask(config) -> bool:
    """Checkpoints with layer-norm conv stacks take an attention mask; group-norm ones (base
    models) were trained without one and must see zero padding instead, kept short by grouping
    clips of similar length into a batch."""
    return getattr(config, "feat_extract_norm", "layer") == "layer"


def normalize_waveform(waveform: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each clip's real samples; padding stays exactly 0.

    The same formula as transformers' ``Wav2Vec2FeatureExtractor`` (epsilon 1e-7).
    """
    keep = mask.to(waveform.dtype)
    count = keep.sum(dim=1, keepdim=True).clamp(min=1.0)
    mean = (waveform * keep).sum(dim=1, keepdim=True) / count
    variance = (((waveform - mean) * keep) ** 2).sum(dim=1, keepdim=True) / count
    return (waveform - mean) / torch.sqrt(variance + 1e-7) * keep


def masked_mean(frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the time axis (-2) of ``frames`` [..., F, D], counting only real frames."""
    keep = frame_mask.to(frames.dtype).unsqueeze(-1)
    return (frames * keep).sum(dim=-2) / keep.sum(dim=-2).clamp(min=1.0)


def mix_layers(states: torch.Tensor, layer_logits: torch.Tensor) -> torch.Tensor:
    """Softmax-weighted sum over the layer axis (0) of ``states`` [S, ...]."""
    weights = torch.softmax(layer_logits.float(), dim=0).to(states.dtype)
    return torch.tensordot(weights, states, dims=([0], [0]))


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples one output frame of the conv stack sees: the shortest clip that yields a frame
    (400 samples, 25 ms, for wav2vec2-base)."""
    field = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        field = (field - 1) * stride + kernel
    return int(field)


def enable_gradient_checkpointing(backbone: nn.Module) -> None:
    """Recompute transformer activations in the backward pass: about 3x less activation memory
    for about 30 % more compute (the name changed in transformers 5)."""
    enable = getattr(backbone, "activation_checkpointing_enable", None)
    if enable is None:
        enable = backbone.gradient_checkpointing_enable
    enable()


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
        lengths = self.backbone._get_feat_extract_output_lengths(sample_mask.sum(dim=1))
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

    With ``layer_weighting`` it learns the SUPERB softmax weights over the S layers; without, it
    takes the last layer, which is what a frozen ``SpeechEncoder`` without weighting would give.
    """

    input_keys = ("x",)

    def __init__(self, num_hidden_states: int, embedding_dim: int, layer_weighting: bool = True):
        super().__init__()
        self.num_hidden_states = int(num_hidden_states)
        self.embedding_dim = int(embedding_dim)
        self.layer_weighting = layer_weighting
        if layer_weighting:
            self.layer_logits = nn.Parameter(torch.zeros(self.num_hidden_states))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
    if source.kind == "tiny":  # the seed is what makes these weights: it belongs to their identity
        source = replace(source, identity=f"{source.identity}:seed{seed}")
    backbone = load_backbone(source, cache_dir=cache_dir, seed=seed)
    if source.kind == "hub":  # now downloaded: name the exact revision, as for a cached one
        snapshot = _cached_snapshot(source.name, cache_dir)
        if snapshot is not None:
            source = replace(source, identity=f"hub:{source.name}@{snapshot.name}")
    if gradient_checkpointing:
        enable_gradient_checkpointing(backbone)
    encoder = SpeechEncoder(
        backbone,
        layer_weighting=layer_weighting,
        freeze_feature_encoder=freeze_feature_encoder,
        normalize=wants_normalized_input(source, cache_dir=cache_dir),
        source=source,
    )
    return encoder


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


def parameter_groups(
    model: nn.Module,
    encoder_lr: float = ENCODER_LR,
    head_lr: float = HEAD_LR,
    weight_decay: float = WEIGHT_DECAY,
) -> list[dict]:
    """AdamW groups: pretrained backbone weights at ``encoder_lr``, everything else (heads, layer
    weights) at ``head_lr``. Frozen parameters are left out."""
    backbone, rest = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (backbone if ".backbone." in f".{name}" else rest).append(parameter)
    groups = [{"params": rest, "lr": head_lr, "weight_decay": weight_decay}]
    if backbone:
        groups.insert(0, {"params": backbone, "lr": encoder_lr, "weight_decay": weight_decay})
    return groups


def group_by_length(
    order: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    window: int = 50,
) -> list[list[int]]:
    """Cut ``order`` into batches of clips of similar length, in shuffled batch order.

    Each window of ``window * batch_size`` consecutive indices is sorted by length and cut into
    batches, so the randomness of ``order`` (and its class balance) survives at window scale;
    then the full batches are shuffled and a short remainder goes last.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    span = window * batch_size
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    # Only the very last batch may be short: a short one in the middle would shift every later
    # batch of the DataLoader, which cuts the flat order into batch_size pieces.
    short = batches[-1:] if batches and len(batches[-1]) < batch_size else []
    full = batches[: len(batches) - len(short)]
    rng.shuffle(full)
    return full + short


class LengthGroupedSampler(torch.utils.data.Sampler):
    """Another sampler's epoch, reordered so each run of ``batch_size`` indices has similar lengths.

    Group-norm encoders (wav2vec2-base) take no attention mask and see zero padding as signal, so
    their batches should pad little; it also saves compute for every encoder. It wraps a
    ``serlib.data.EpochSampler``: the same indices per epoch (shuffled or class-balanced), the same
    ``set_epoch(epoch, cycle)``, so a resumed run still sees exactly the same batches. Without
    shuffling (evaluation) it simply goes longest first.
    """

    def __init__(self, sampler, lengths, batch_size: int, window: int = 50):
        self.sampler = sampler
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.window = window
        self.epoch, self.cycle = 0, 0

    def set_epoch(self, epoch: int, cycle: int = 0) -> None:
        self.epoch, self.cycle = epoch, cycle
        self.sampler.set_epoch(epoch, cycle)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        random = self.sampler.shuffle or self.sampler.weights is not None
        if not random:
            return iter(order[np.argsort(-self.lengths[order], kind="stable")].tolist())
        seed = np.random.SeedSequence([self.sampler.seed, self.epoch, self.cycle, 3])
        batches = group_by_length(
            order, self.lengths, self.batch_size, np.random.default_rng(seed), self.window
        )
        return iter([index for batch in batches for index in batch])


def clip_lengths(dataset) -> np.ndarray:
    """Samples each clip of a ``serlib.data.WaveformDataset`` will have (after its crop), read
    from the file headers without decoding."""
    from serlib.audio import probe_audio

    lengths = []
    for path in dataset.paths:
        info = probe_audio(path)
        samples = int(info.frames * dataset.sample_rate / info.samplerate)
        lengths.append(
            samples if dataset.max_samples is None else min(samples, dataset.max_samples)
        )
    return np.asarray(lengths, dtype=np.int64)


def waveform_loader(
    dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    balanced: bool = False,
    drop_last: bool = False,
    num_workers: int = 0,
):
    """``serlib.data.make_loader`` for waveforms, with batches grouped by clip length."""
    from torch.utils.data import DataLoader

    from serlib.data import make_loader

    plain = make_loader(
        dataset, batch_size, shuffle=shuffle, seed=seed, balanced=balanced, drop_last=drop_last
    )
    sampler = LengthGroupedSampler(plain.sampler, clip_lengths(dataset), batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=plain.collate_fn,
        persistent_workers=False,
    )


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


# --------------------------------------------------------------------------------------------
# Frozen features: extract once into the cache, train heads on a CPU
# --------------------------------------------------------------------------------------------

MODES = ("frozen", "finetune")
MODE_ENV = "SERLIB_W2V2_MODE"
"""``frozen``: cached hidden states, heads only (CPU, minutes); ``finetune``: the whole encoder."""

POOLED_CACHE_KIND = "w2v2-pooled"
"""Folder of the feature cache that holds per-layer pooled states."""


def choose_mode(requested: str | None = None, profile: str | None = None) -> str:
    """``requested``, else $SERLIB_W2V2_MODE, else fine-tuning in the full profile (a GPU) and
    frozen features in the tiny and workshop profiles (a laptop CPU)."""
    mode = (
        requested
        or os.environ.get(MODE_ENV, "").strip()
        or ("finetune" if profile == "full" else "frozen")
    )
    if mode not in MODES:
        raise ValueError(f"unknown Wav2Vec2 mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def pooled_states_key(encoder: SpeechEncoder) -> str:
    """Cache key of the pooled states: which weights, how the audio was prepared, what was kept."""
    if encoder.source is None:
        raise ValueError("the encoder has no source; build it with build_wav2vec_encoder")
    recipe = {
        "identity": encoder.source.identity,
        "sample_rate": SAMPLE_RATE,
        "normalize": encoder.normalize,
        "hidden_states": encoder.num_hidden_states,
        "pooling": "mean over real frames, every hidden state, one clip at a time",
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def pooled_states_cache(encoder: SpeechEncoder, root: str | Path | None = None):
    """The ``serlib.cache.ArrayCache`` (float16) of ``encoder``'s per-layer pooled states."""
    from serlib.cache import ArrayCache

    cache = ArrayCache(POOLED_CACHE_KIND, pooled_states_key(encoder), root)
    cache.describe(
        {
            "what": "per-layer mean-pooled hidden states [layers + 1, hidden size] per audio file",
            "encoder": encoder.source.name,
            "encoder_label": encoder.source.label,
            "identity": encoder.source.identity,
        }
    )
    return cache


def load_pooled_states(
    paths,
    encoder: SpeechEncoder,
    root: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
):
    """Pooled states [S, D] for ``paths``, extracted once per file and then read from the cache.

    Returns ``serlib.cache.CachedArrays`` (arrays, kept positions, skipped files with reasons).
    """
    from serlib.cache import fill_cache

    encoder = encoder.to(device).eval()

    def compute(waves: list[np.ndarray]) -> list[np.ndarray]:
        return [extract_pooled_states(encoder, wave, device) for wave in waves]

    return fill_cache(
        list(paths),
        pooled_states_cache(encoder, root),
        compute,
        SAMPLE_RATE,
        batch_size=8,
        progress=progress,
        description=f"{encoder.source.label} hidden states",
    )


class PooledStatesDataset(torch.utils.data.Dataset):
    """Cached pooled states [S, D] per clip, with labels: what frozen-mode heads train on.

    Items and batches follow ``serlib.data``: ``{"x", "label", "domain", "index"}``, with ``x``
    float32 [S, D] (batched [B, S, D]), ``label`` -1 where unlabelled.
    """

    def __init__(self, arrays, labels=None, domain: int = 0):
        from serlib.data import check_labels

        if len(arrays) == 0:
            raise ValueError("PooledStatesDataset needs at least one clip")
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"expected pooled states of one shape [S, D], got shapes {shapes}")
        self.arrays = list(arrays)
        self.labels = check_labels(labels, len(self.arrays))
        self.domain = domain

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> dict:
        return {
            "x": torch.from_numpy(np.asarray(self.arrays[index], dtype=np.float32)),
            "label": int(self.labels[index]),
            "domain": self.domain,
            "index": index,
        }

    @staticmethod
    def collate(items: list[dict]) -> dict:
        from serlib.data import stack_ids

        return {"x": torch.stack([item["x"] for item in items]), **stack_ids(items)}


@dataclass
class FrozenInputs:
    """The inputs of a frozen-feature run: which encoder made the cached states, and their shape.

    It plays the part ``serlib.runs.MelInputs`` plays for log-mels: ``features(table)`` reads or
    extracts the states of a table's files, ``dataset(...)`` wraps them for the loop, and
    ``to_dict``/``from_dict`` keep it in the run's config.json.
    """

    encoder: str
    identity: str
    num_hidden_states: int
    embedding_dim: int
    layer_weighting: bool = True
    kind: str = POOLED_CACHE_KIND
    _feature_encoder: SpeechEncoder | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_encoder(cls, encoder: SpeechEncoder, layer_weighting: bool = True) -> FrozenInputs:
        inputs = cls(
            encoder.source.name,
            encoder.source.identity,
            encoder.num_hidden_states,
            encoder.embedding_dim,
            layer_weighting,
        )
        inputs._feature_encoder = encoder
        return inputs

    @property
    def label(self) -> str:
        return encoder_label(self.encoder)

    def head_encoder(self) -> LayerMixEncoder:
        """The trainable part of a frozen-mode model: the (learned or last-layer) layer mix."""
        return LayerMixEncoder(self.num_hidden_states, self.embedding_dim, self.layer_weighting)

    def feature_encoder(self) -> SpeechEncoder:
        """The frozen encoder that makes the features, loaded once (offline rules apply).

        Refuses an encoder whose weights differ from the run's (e.g. a folder edited since): the
        run's heads would read features they were never trained on.
        """
        encoder = self._feature_encoder
        if encoder is None:
            encoder = build_wav2vec_encoder(self.encoder)
            if encoder.source.identity != self.identity:
                raise ValueError(
                    f"encoder {self.encoder!r} is not the one this run was trained on "
                    f"({encoder.source.identity} != {self.identity})"
                )
            self._feature_encoder = encoder
        return encoder

    def features(self, table, progress: bool = False):
        """(rows kept, their pooled states [S, D], skipped files) for a table with a path column."""
        found = load_pooled_states(
            table["path"].tolist(), self.feature_encoder(), progress=progress
        )
        kept = table.iloc[found.kept].reset_index(drop=True)
        return kept, found.arrays, found.skipped

    def dataset(
        self,
        arrays,
        labels,
        *,
        train: bool = False,
        domain: int = 0,
        seed: int = 0,
        target: bool = False,
    ) -> PooledStatesDataset:
        """Pooled states need no crop or normalisation: ``train``, ``seed`` and ``target`` (input
        statistics, see ``serlib.runs.MelInputs``) change nothing."""
        return PooledStatesDataset(arrays, labels, domain=domain)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "encoder": self.encoder,
            "encoder_label": self.label,
            "identity": self.identity,
            "num_hidden_states": self.num_hidden_states,
            "embedding_dim": self.embedding_dim,
            "layer_weighting": self.layer_weighting,
        }

    @classmethod
    def from_dict(cls, values: dict) -> FrozenInputs:
        if values.get("kind") != POOLED_CACHE_KIND:
            raise ValueError(f"not frozen Wav2Vec2 inputs: kind {values.get('kind')!r}")
        return cls(
            values["encoder"],
            values["identity"],
            int(values["num_hidden_states"]),
            int(values["embedding_dim"]),
            bool(values["layer_weighting"]),
        )


FROZEN_TRAINING = {
    "tiny": {"epochs": 3, "batch_size": 16, "patience": 3},
    "workshop": {"epochs": 40, "batch_size": 32, "patience": 10},
    "full": {"epochs": 60, "batch_size": 32, "patience": 12},
}
"""Frozen mode trains only the heads and the layer mix on cached vectors: an epoch costs
milliseconds, so it can afford many; everything that trains is new, so all of it uses the heads'
learning rate (3e-4, AdamW weight decay 0.01)."""


def frozen_train_config(profile: str, **overrides):
    """The ``serlib.train.TrainConfig`` of a frozen-mode run: the w2v2 profile's settings with
    ``FROZEN_TRAINING``'s epochs and batch size and no separate encoder rate; ``overrides``
    (e.g. ``epochs``) win."""
    from serlib.train import profile_config

    given = {key: value for key, value in overrides.items() if value is not None}
    config = profile_config(profile, "w2v2", **{**FROZEN_TRAINING[profile], **given})
    return replace(config, encoder_lr=None)
