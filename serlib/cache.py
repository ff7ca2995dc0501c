"""Feature cache on disk: compute an array once per audio file, reuse it everywhere.

Decoding audio and computing a log-mel costs more than training on it, so every array derived
from an audio file is computed once (with a progress bar) and then read back in every epoch, run
and notebook. An entry is keyed by

- the audio file: its resolved path, size and modification time (editing or replacing the file
  gives a new key, so a stale entry is never used), and
- the extractor: the frontend's parameters (``FrontendConfig.key()``) plus the waveform
  perturbation (``WavePerturbation.key()``), or any key another extractor chooses.

Layout: ``<root>/<kind>/<extractor key>/<2 hex>/<32 hex>.npy`` with
``root = serlib_home() / "cache"`` by default, and a ``meta.json`` per extractor key that says in
words what the arrays are. Writes go to a temporary file in the same folder, then ``os.replace``
moves it into place: a reader sees the whole entry or no entry, never half of one; an entry that
still fails to load (a disk fault) counts as missing and is recomputed.

Public API:

- ``ArrayCache(kind, key, root=None, dtype=np.float16)``: ``path_for(audio)``, ``load(audio)``
  (``None`` when missing), ``save(audio, array)``, ``describe(info)``, ``clear()``.
- ``fill_cache(paths, cache, compute, sample_rate, ...) -> CachedArrays``: the generic loop (load
  what is cached, decode and compute the rest in batches, skip bad files with a reason); the
  Wav2Vec2 frozen-feature mode uses it with its own ``compute``.
- ``feature_cache(frontend, perturbation=None, root=None) -> ArrayCache`` and
  ``load_features(paths, frontend, perturbation=None, ...) -> CachedArrays``: log-mels.
- ``pooled_states_cache(encoder, root=None) -> ArrayCache`` and
  ``load_pooled_states(paths, encoder, ...) -> CachedArrays``: a Wav2Vec2 encoder's per-layer
  mean-pooled hidden states [S, D] per file (the frozen-feature mode), keyed by
  ``pooled_states_key(encoder)`` (which weights, how the audio was prepared); folder
  ``POOLED_CACHE_KIND``.
- ``CachedArrays``: ``arrays`` (one per kept file, input order), ``kept`` (their positions in
  ``paths``), ``skipped`` (``Skip(path, reason)``), ``n_computed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from serlib.audio import AudioError, load_audio
from serlib.augment import WavePerturbation
from serlib.config import serlib_home
from serlib.corpora.base import Skip
from serlib.features import FrontendConfig, LogMel, log_mel_many
from serlib.models.wav2vec import SAMPLE_RATE, SpeechEncoder, extract_pooled_states

ComputeFn = Callable[[list[np.ndarray]], list[np.ndarray]]
"""Turns a batch of float32 mono waveforms into one array per waveform."""

POOLED_CACHE_KIND = "w2v2-pooled"
"""Folder of the feature cache that holds a Wav2Vec2 encoder's per-layer pooled states."""


def default_cache_root() -> Path:
    """``serlib_home() / "cache"``: runtime data, never in git."""
    return serlib_home() / "cache"


def file_identity(path: str | Path) -> str:
    """``resolved path|size|mtime_ns``: changes whenever the file is replaced or edited."""
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    return f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"


def write_atomically(target: Path, write: Callable[[object], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``target``, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            write(handle)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


class ArrayCache:
    """Arrays on disk, one ``.npy`` per (audio file, extractor key)."""

    def __init__(
        self,
        kind: str,
        key: str,
        root: str | Path | None = None,
        dtype: np.dtype | type | None = np.float16,
    ) -> None:
        for name, value in (("kind", kind), ("key", key)):
            if not value or "/" in value or value.startswith("."):
                raise ValueError(f"cache {name} must be a plain folder name, got {value!r}")
        self.kind = kind
        self.key = key
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.folder = Path(root if root is not None else default_cache_root()) / kind / key

    def __repr__(self) -> str:
        return f"ArrayCache({str(self.folder)!r})"

    def path_for(self, audio_path: str | Path) -> Path:
        """Where the entry for this version of ``audio_path`` lives (it may not exist)."""
        digest = hashlib.sha256(file_identity(audio_path).encode()).hexdigest()[:32]
        return self.folder / digest[:2] / f"{digest}.npy"

    def load(self, audio_path: str | Path, mmap: bool = False) -> np.ndarray | None:
        """The cached array, or None when there is no usable entry."""
        entry = self.path_for(audio_path)
        if not entry.exists():
            return None
        try:
            return np.load(entry, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            entry.unlink(missing_ok=True)  # damaged on disk: recompute rather than fail
            return None

    def save(self, audio_path: str | Path, array: np.ndarray) -> Path:
        """Store ``array`` (cast to the cache's dtype) for ``audio_path``; atomic."""
        array = np.asarray(array)
        if self.dtype is not None:
            array = array.astype(self.dtype, copy=False)
        entry = self.path_for(audio_path)
        write_atomically(entry, lambda handle: np.save(handle, array, allow_pickle=False))
        return entry

    def describe(self, info: dict) -> None:
        """Write ``meta.json`` (what the arrays are) once, so a human can read the cache."""
        meta = self.folder / "meta.json"
        if meta.exists():
            return
        text = json.dumps({"kind": self.kind, "key": self.key, **info}, indent=2, sort_keys=True)
        write_atomically(meta, lambda handle: handle.write(text.encode()))

    def clear(self) -> None:
        """Delete every entry for this extractor key."""
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class CachedArrays:
    """The arrays for a list of files; files that could not be used are skipped with a reason."""

    arrays: list[np.ndarray]
    kept: list[int]
    skipped: list[Skip] = field(default_factory=list)
    n_computed: int = 0

    def __len__(self) -> int:
        return len(self.arrays)


def fill_cache(
    paths: Sequence[str | Path],
    cache: ArrayCache,
    compute: ComputeFn,
    sample_rate: int,
    *,
    perturbation: WavePerturbation | None = None,
    batch_size: int = 16,
    keep: bool = True,
    progress: bool = True,
    description: str = "features",
) -> CachedArrays:
    """Return the arrays for ``paths``, computing (and caching) only those not cached yet.

    Missing entries are decoded with ``load_audio(path, sample_rate)``, perturbed if asked, and
    computed ``batch_size`` at a time. Unreadable audio (``AudioError``) becomes a ``Skip`` instead
    of stopping the job. With ``keep=False`` nothing is held in memory (precompute only): ``arrays``
    stays empty and ``kept`` lists the files that now have an entry. A ``perturbation`` changes
    the arrays, so its ``key()`` must be part of the cache's key (``feature_cache`` does that).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    perturbation = perturbation or WavePerturbation()
    if not perturbation.is_identity and perturbation.key() not in cache.key:
        raise ValueError(
            f"cache key {cache.key!r} must contain the perturbation's key {perturbation.key()!r}, "
            "or perturbed arrays would be mistaken for clean ones"
        )
    found: dict[int, np.ndarray] = {}
    missing: list[int] = []
    skip_reasons: dict[int, str] = {}
    for i, path in enumerate(paths):
        try:
            if not keep:
                if not cache.path_for(path).exists():
                    missing.append(i)
                continue
            array = cache.load(path)
        except OSError as error:
            skip_reasons[i] = f"cannot read ({error.strerror or error})"
            continue
        if array is None:
            missing.append(i)
        else:
            found[i] = array
    n_computed = 0
    with tqdm(total=len(missing), desc=description, unit="file", disable=not progress) as bar:
        for start in range(0, len(missing), batch_size):
            batch, waves = [], []
            for i in missing[start : start + batch_size]:
                try:
                    wave = load_audio(paths[i], sample_rate)
                except AudioError as error:
                    skip_reasons[i] = error.reason
                    continue
                if not perturbation.is_identity:
                    wave = perturbation.apply(wave, sample_rate, str(paths[i]))
                batch.append(i)
                waves.append(wave)
            for i, array in zip(batch, compute(waves) if waves else [], strict=True):
                cache.save(paths[i], array)
                n_computed += 1
                if keep:
                    found[i] = array if cache.dtype is None else array.astype(cache.dtype)
            bar.update(len(missing[start : start + batch_size]))
    kept = sorted(found) if keep else [i for i in range(len(paths)) if i not in skip_reasons]
    skipped = [Skip(str(paths[i]), reason) for i, reason in sorted(skip_reasons.items())]
    return CachedArrays([found[i] for i in kept] if keep else [], kept, skipped, n_computed)


def feature_cache(
    frontend: FrontendConfig | None = None,
    perturbation: WavePerturbation | None = None,
    root: str | Path | None = None,
) -> ArrayCache:
    """The cache of log-mels (float16) for one frontend and one waveform perturbation."""
    frontend = frontend or FrontendConfig()
    perturbation = perturbation or WavePerturbation()
    cache = ArrayCache("logmel", f"{frontend.key()}-{perturbation.key()}", root)
    cache.describe({"frontend": frontend.to_dict(), "perturbation": perturbation.key()})
    return cache


def load_features(
    paths: Sequence[str | Path],
    frontend: FrontendConfig | None = None,
    perturbation: WavePerturbation | None = None,
    *,
    root: str | Path | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    keep: bool = True,
    progress: bool = True,
) -> CachedArrays:
    """Log-mels ``[n_mels, T]`` (float16) for ``paths``, from the cache or computed once.

    ``device="cuda"`` computes the missing ones on a GPU; the cached arrays are the same.
    ``batch_size`` files are decoded per step, then computed as ``log_mel_many`` finds fastest
    (clip by clip on the CPU, batched on a GPU).
    """
    frontend = frontend or FrontendConfig()
    module = LogMel(frontend).to(device)

    def compute(waves: list[np.ndarray]) -> list[np.ndarray]:
        return log_mel_many(waves, frontend=module)

    return fill_cache(
        paths,
        feature_cache(frontend, perturbation, root),
        compute,
        frontend.sample_rate,
        perturbation=perturbation,
        batch_size=batch_size,
        keep=keep,
        progress=progress,
        description="log-mel features",
    )


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


def pooled_states_cache(encoder: SpeechEncoder, root: str | Path | None = None) -> ArrayCache:
    """The cache (float16) of ``encoder``'s per-layer pooled states."""
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
    paths: Sequence[str | Path],
    encoder: SpeechEncoder,
    root: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> CachedArrays:
    """Pooled states [S, D] for ``paths``, extracted once per file and then read from the cache.

    Each file runs through ``encoder`` alone (``extract_pooled_states``), so no padding enters the
    features; only files missing from the cache cost an encoder pass.
    """
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
