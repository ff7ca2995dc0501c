"""Which pretrained speech encoder, found where, trained how: the rules in one place.

The command line, the notebooks and the course all ask the same three questions before a Wav2Vec2
run, and all get their answers here:

* which checkpoint? ``choose_encoder``: ``--encoder``, else ``tiny`` in the tiny profile, else
  ``$SERLIB_W2V2``, else ``facebook/wav2vec2-base``;
* found where? ``resolve_encoder``: ``tiny`` (a small random config, built, never downloaded), a
  local folder laid out as on the hub, the Hugging Face cache, or (only when the network is allowed)
  the hub, whose download ``from_pretrained`` does. Looking in the cache is huggingface_hub's own
  ``snapshot_download(..., local_files_only=True)``: it never touches the network. A checkpoint
  that is nowhere raises ``EncoderNotAvailable`` with one line on how to provide it;
* trained how? ``choose_mode``: ``finetune`` the whole encoder where a GPU can do it, else
  ``frozen`` features (the encoder runs once per file, only the heads train).

Nothing here imports transformers: answering these questions is instant, and a wrong name fails
before any audio is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.utils import HFValidationError, LocalEntryNotFoundError

from serlib.errors import UserError

DEFAULT_ENCODER = "facebook/wav2vec2-base"
"""The study's encoder; 95 M parameters, 12 layers, 768 wide."""

TINY_ENCODER = "tiny"
"""The name of the small random config that needs no download."""

TINY_LABEL = "tiny random encoder (not pretrained)"
"""How every output of the tiny encoder is labelled, so nobody mistakes it for a real result."""

ENCODER_ENV = "SERLIB_W2V2"
"""Environment variable that picks the encoder when ``--encoder`` is not given."""

MODES = ("frozen", "finetune")
MODE_ENV = "SERLIB_W2V2_MODE"
"""``frozen``: cached hidden states, heads only (CPU, minutes); ``finetune``: the whole encoder."""

CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""The weight files ``from_pretrained`` reads, single-file or sharded."""


class EncoderNotAvailable(UserError):
    """The requested checkpoint is neither on disk nor downloadable; the message says what to do."""


def how_to_provide(name: str) -> str:
    """The advice every 'not available' message ends with: the ways to give us a checkpoint."""
    return (
        f"pass --encoder /path/to/folder (config.json + model.safetensors or pytorch_model.bin) "
        f"or set ${ENCODER_ENV} to it; or download it once on a machine with network "
        f"(`hf download {name}`, Colab has network) and reuse that Hugging Face cache or copy the "
        f"folder; or use --encoder {TINY_ENCODER} for the small random test encoder"
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


def choose_mode(
    requested: str | None = None, profile: str | None = None, gpu: bool | None = None
) -> str:
    """``frozen`` or ``finetune``: ``requested``, else $SERLIB_W2V2_MODE, else the one rule.

    The rule: fine-tune where a GPU can do it, frozen features elsewhere and always in the tiny
    profile (it must finish in seconds). ``gpu`` says whether one is there; ``None`` (the command
    line, which does not look) takes the profile's word for it: the full profile is the GPU one.
    """
    mode = requested or os.environ.get(MODE_ENV, "").strip()
    if not mode:
        has_gpu = profile == "full" if gpu is None else gpu
        mode = "finetune" if has_gpu and profile != "tiny" else "frozen"
    if mode not in MODES:
        raise UserError(
            f"unknown Wav2Vec2 mode {mode!r} (w2v2_mode or ${MODE_ENV}); "
            f"choose one of {', '.join(MODES)}"
        )
    return mode


@dataclass(frozen=True)
class EncoderSource:
    """Where a checkpoint will be read from.

    ``kind`` is ``tiny`` (built from a small config), ``folder`` (a local directory), ``cache``
    (already in the Hugging Face cache), ``hub`` (``from_pretrained`` will download it) or ``run``
    (rebuilt from a saved run). ``location`` is what ``from_pretrained`` gets; ``identity``
    changes whenever the weights do, so feature caches keyed on it never mix two encoders.
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


def hub_offline() -> bool:
    """True when huggingface_hub may not go online: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE.

    The environment is read now as well, not only when huggingface_hub was imported, so a
    notebook that sets it later is obeyed.
    """
    from_env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.HF_HUB_OFFLINE or from_env.strip().lower() in {"1", "true", "yes", "on"}


def missing_part(folder: Path) -> str | None:
    """What ``from_pretrained`` would miss in ``folder`` (None when config and weights are there)."""
    if not folder.is_dir():
        return "does not exist"
    if not (folder / CONFIG_FILE).is_file():
        return f"has no {CONFIG_FILE}"
    if not any((folder / weights).is_file() for weights in WEIGHT_FILES):
        return f"has no weights ({' or '.join(WEIGHT_FILES[::2])})"
    return None


def cached_snapshot(repo_id: str, cache_dir: str | Path | None = None) -> Path | None:
    """The folder of ``repo_id`` in the Hugging Face cache, if it holds config and weights.

    huggingface_hub's own offline lookup (``local_files_only=True``): no request is made.
    """
    try:
        folder = snapshot_download(
            repo_id, cache_dir=cache_dir, local_files_only=True, allow_patterns=[CONFIG_FILE]
        )
    except LocalEntryNotFoundError:
        return None
    folder = Path(folder)
    return folder if missing_part(folder) is None else None


def folder_source(name: str, folder: Path) -> EncoderSource:
    """A local checkpoint folder, checked the way ``from_pretrained`` will read it."""
    problem = missing_part(folder)
    if problem is not None:
        raise EncoderNotAvailable(f"encoder folder {folder} {problem}; {how_to_provide(name)}")
    weights = next(folder / w for w in WEIGHT_FILES if (folder / w).is_file())
    stat = weights.stat()
    identity = f"folder:{folder.resolve()}:{weights.name}:{stat.st_size}:{stat.st_mtime_ns}"
    return EncoderSource(
        name=name, kind="folder", location=str(folder.resolve()), identity=identity
    )


def resolve_encoder(name: str, cache_dir: str | Path | None = None) -> EncoderSource:
    """Decide, without touching the network, where checkpoint ``name`` comes from.

    Order: ``tiny``; a local folder; the Hugging Face cache; the hub, unless HF_HUB_OFFLINE is
    set, in which case ``EncoderNotAvailable`` says how to provide it. Only in that last case will
    loading download anything, and then the user asked for it by naming a hub model (or leaving
    the default) with the network allowed. A tiny source's ``identity`` is completed by
    ``build_wav2vec_encoder``, which knows the config and the seed that make its weights.
    """
    if not isinstance(name, str) or not name.strip():
        raise EncoderNotAvailable(
            f"encoder name must be a non-empty string, got {name!r}; {how_to_provide('NAME')}"
        )
    name = name.strip()
    if is_tiny(name):
        return EncoderSource(name=TINY_ENCODER, kind="tiny", location="", identity="tiny")
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        return folder_source(name, path)
    try:
        snapshot = cached_snapshot(name, cache_dir)
    except HFValidationError as error:
        raise EncoderNotAvailable(
            f"encoder {name!r} is neither a folder nor a hub model id (namespace/name); "
            f"{how_to_provide(name)}"
        ) from error
    if snapshot is not None:
        identity = f"hub:{name}@{snapshot.name}"
        return EncoderSource(name=name, kind="cache", location=name, identity=identity)
    if hub_offline():
        raise EncoderNotAvailable(
            f"encoder {name!r} is not on disk or in the Hugging Face cache and HF_HUB_OFFLINE is "
            f"set; {how_to_provide(name)}"
        )
    return EncoderSource(name=name, kind="hub", location=name, identity=f"hub:{name}@main")
