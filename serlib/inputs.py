"""The model inputs of a run: what a model reads from each clip, and how clips become batches.

Each model family reads its clips in its own way:

- ``MelInputs`` (crnn, dann): log-mel spectrograms from the feature cache, standardised with the
  statistics of the source training speakers (or each clip's own), cropped at random in training;
- ``FrozenInputs`` (w2v2 models with a frozen encoder): every hidden layer's mean-pooled states,
  extracted once per file into the cache; layer mix, projection and heads train in minutes on a CPU;
- ``WaveInputs`` (fine-tuned w2v2 models): the 16 kHz waveform, decoded on access, in batches of
  clips of similar length (less padding, which group-norm encoders see as signal).

All three follow one small protocol, ``Inputs``, so a run prepares, saves, reloads and scores them
the same way, without asking which kind it holds::

    read(table)          -> usable rows, one item per row (a log-mel, pooled states or a path), skips
    read_files(paths)    -> the same for loose audio files, in the order given (``serlib predict``)
    dataset(items, ...)  -> a torch Dataset of model-ready items (crops, normalisation)
    loader(dataset, ...) -> its DataLoader
    model_options(...)   -> what ``serlib.models.build_model`` needs to build a model for them
    to_dict()            -> the "inputs" entry of config.json; ``inputs_from_dict`` reads it back

``prepare_mel_sets``, ``prepare_pooled_sets`` and ``prepare_wave_sets`` make the datasets of every
set of a run's protocol; statistics come from the source training speakers only (and, when asked,
from the target adaptation speakers' audio, never their labels).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Dataset

from serlib.audio import AudioError, load_audio, probe_audio
from serlib.cache import POOLED_CACHE_KIND, load_pooled_states
from serlib.config import InputConfig
from serlib.corpora.base import Skip
from serlib.data import (
    FeatureDataset,
    PooledStatesDataset,
    WaveformDataset,
    encode_labels,
)
from serlib.errors import UserError
from serlib.features import FrontendConfig, MelStats, log_mel, trim_silence
from serlib.mel_reading import Read, log_mels, with_speed_copies
from serlib.models.pretrained import encoder_label
from serlib.models.wav2vec import (
    SAMPLE_RATE,
    LayerMixEncoder,
    SpeechEncoder,
    build_wav2vec_encoder,
    rebuild_speech_encoder,
)
from serlib.protocol import Protocol
from serlib.sampling import make_loader, waveform_loader

Labels = Sequence[int] | np.ndarray | None
"""Class ids, one per clip, or None for unlabelled clips (the target adaptation audio)."""

ReadFiles = tuple[list[str], list, list[Skip]]
"""What ``read_files`` returns: the usable paths, in the order given, their items, the skipped."""


class Inputs(typing.Protocol):
    """What every kind of model input offers; a run needs nothing else from it."""

    def read(self, table: pd.DataFrame, progress: bool = False) -> Read:
        """The rows that can be used, the item the model reads for each, and the skipped files."""

    def read_files(self, paths: Sequence[str | Path]) -> ReadFiles:
        """Loose audio files (``serlib predict``), read as ``read`` reads a table's."""

    def dataset(
        self,
        items: list,
        labels: Labels,
        *,
        train: bool = False,
        domain: int = 0,
        seed: int = 0,
        target: bool = False,
    ) -> Dataset:
        """Model-ready items; ``target``: the clips come from the run's target corpus."""

    def loader(self, dataset: Dataset, batch_size: int, **options) -> DataLoader:
        """Batches of ``dataset``; ``options`` are ``serlib.sampling.make_loader``'s."""

    def model_options(self, encoder_config: dict | None = None) -> dict:
        """Keyword arguments of ``build_model`` for these inputs (``encoder_config``: a saved run's)."""

    def to_dict(self) -> dict:
        """The "inputs" entry of config.json."""


def read_each(paths: Sequence[str | Path], read_one: Callable[[str], object]) -> ReadFiles:
    """``read_one`` on every file, in order; files it cannot read are skipped with the reason."""
    good, items, skipped = [], [], []
    for path in map(str, paths):
        try:
            items.append(read_one(path))
            good.append(path)
        except AudioError as error:
            skipped.append(Skip(path, error.reason))
    return good, items, skipped


@dataclass
class MelInputs:
    """Log-mel inputs of a run: the frontend, the normalisation, and the training crop."""

    frontend: FrontendConfig
    stats: MelStats | None
    normalisation: str
    crop_frames: int
    target_stats: MelStats | None = None
    """The target adaptation speakers' own statistics, for runs trained with them."""
    trim_db: float | None = None
    """Leading and trailing frames this far below a clip's loudest are dropped (None: kept)."""

    def trim(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The clips without their leading and trailing silence, if the run trims."""
        if self.trim_db is None:
            return list(arrays)
        return [trim_silence(x, self.trim_db) for x in arrays]

    def read(self, table: pd.DataFrame, progress: bool = False) -> Read:
        return log_mels(table, self.frontend, progress)

    def read_files(self, paths: Sequence[str | Path]) -> ReadFiles:
        """Computed directly, not cached: loose files are usually scored once."""
        return read_each(
            paths, lambda path: log_mel(load_audio(path, self.frontend.sample_rate), self.frontend)
        )

    def dataset(
        self,
        items: list,
        labels: Labels,
        *,
        train: bool = False,
        domain: int = 0,
        seed: int = 0,
        target: bool = False,
    ) -> FeatureDataset:
        """Training sets are cropped at random to ``crop_frames``; the others are read whole.

        ``target`` clips are standardised with ``target_stats`` when the run has them.
        """
        stats = self.target_stats if target and self.target_stats is not None else self.stats
        return FeatureDataset(
            self.trim(items),
            labels,
            domain=domain,
            n_frames=self.crop_frames if train else None,
            fixed_length=train,
            crop="random" if train else "start",
            normalisation=self.normalisation,
            stats=stats,
            seed=seed,
        )

    def loader(self, dataset: Dataset, batch_size: int, **options) -> DataLoader:
        return make_loader(dataset, batch_size, **options)

    def model_options(self, encoder_config: dict | None = None) -> dict:
        return {"n_mels": self.frontend.n_mels}

    def to_dict(self) -> dict:
        return {
            "kind": "logmel",
            "frontend": self.frontend.to_dict(),
            "normalisation": self.normalisation,
            "stats": self.stats.to_dict() if self.stats is not None else None,
            "crop_frames": self.crop_frames,
            "target_stats": self.target_stats.to_dict() if self.target_stats is not None else None,
            "trim_db": self.trim_db,
        }

    @classmethod
    def from_dict(cls, values: dict) -> MelInputs:
        stats, target_stats = values.get("stats"), values.get("target_stats")
        return cls(
            FrontendConfig.from_dict(values["frontend"]),
            MelStats.from_dict(stats) if stats is not None else None,
            values["normalisation"],
            int(values["crop_frames"]),
            MelStats.from_dict(target_stats) if target_stats is not None else None,
            values.get("trim_db"),  # runs older than trimming have none
        )


@dataclass
class FrozenInputs:
    """The inputs of a frozen-feature run: which encoder made the cached states, and their shape.

    ``read(table)`` reads or extracts the states [S, D] of a table's files (S = hidden layers + 1),
    ``head_encoder()`` builds the part that trains on them (the layer mix and the projection).
    """

    encoder: str
    identity: str
    num_hidden_states: int
    embedding_dim: int
    layer_weighting: bool = True
    projection: bool = True  # runs saved before it existed had none, and load without it
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
        """What trains in frozen mode: the layer mix, then the projection DANN can reshape."""
        return LayerMixEncoder(
            self.num_hidden_states, self.embedding_dim, self.layer_weighting, self.projection
        )

    def feature_encoder(self) -> SpeechEncoder:
        """The frozen encoder that makes the features, loaded once (offline rules apply).

        Refuses an encoder whose weights differ from the run's (e.g. a folder edited since): the
        run's heads would read features they were never trained on.
        """
        encoder = self._feature_encoder
        if encoder is None:
            encoder = build_wav2vec_encoder(self.encoder)
            if encoder.source.identity != self.identity:
                raise UserError(
                    f"encoder {self.encoder!r} is not the one this run was trained on "
                    f"({encoder.source.identity} != {self.identity}); restore that checkpoint "
                    "or train the run again"
                )
            self._feature_encoder = encoder
        return encoder

    def read(self, table: pd.DataFrame, progress: bool = False) -> Read:
        found = load_pooled_states(
            table["path"].tolist(), self.feature_encoder(), progress=progress
        )
        kept = table.iloc[found.kept].reset_index(drop=True)
        return kept, found.arrays, found.skipped

    def read_files(self, paths: Sequence[str | Path]) -> ReadFiles:
        """Through the cache, like ``read``: extracting states is what costs."""
        kept, arrays, skipped = self.read(pd.DataFrame({"path": [str(p) for p in paths]}))
        return kept["path"].tolist(), arrays, skipped

    def dataset(
        self,
        items: list,
        labels: Labels,
        *,
        train: bool = False,
        domain: int = 0,
        seed: int = 0,
        target: bool = False,
    ) -> PooledStatesDataset:
        """Pooled states need no crop or normalisation: ``train``, ``seed`` and ``target``
        change nothing."""
        return PooledStatesDataset(items, labels, domain=domain)

    def loader(self, dataset: Dataset, batch_size: int, **options) -> DataLoader:
        return make_loader(dataset, batch_size, **options)

    def model_options(self, encoder_config: dict | None = None) -> dict:
        return {"encoder": self.head_encoder()}

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "encoder": self.encoder,
            "encoder_label": self.label,
            "identity": self.identity,
            "num_hidden_states": self.num_hidden_states,
            "embedding_dim": self.embedding_dim,
            "layer_weighting": self.layer_weighting,
            "projection": self.projection,
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
            bool(values.get("projection", False)),
        )


@dataclass
class WaveInputs:
    """Raw waveforms for fine-tuning a Wav2Vec2 encoder: decoded on access, cropped in training."""

    crop_seconds: float | None = None
    """Training clips longer than this are cut at random (None: never, as in a loaded run)."""

    def read(self, table: pd.DataFrame, progress: bool = False) -> Read:
        """Only the headers are read here; the datasets decode each clip when it is used."""
        usable, paths, skipped = read_each(table["path"], header_checked)
        return table[table["path"].astype(str).isin(usable)].reset_index(drop=True), paths, skipped

    def read_files(self, paths: Sequence[str | Path]) -> ReadFiles:
        """Each file is decoded once, to refuse files whose header reads but whose audio does not."""
        return read_each(paths, audio_checked)

    def dataset(
        self,
        items: list,
        labels: Labels,
        *,
        train: bool = False,
        domain: int = 0,
        seed: int = 0,
        target: bool = False,
    ) -> WaveformDataset:
        """Training clips are cropped at random to ``crop_seconds``, the others read from the start;
        ``target`` changes nothing."""
        return WaveformDataset(
            items,
            labels,
            domain=domain,
            sample_rate=SAMPLE_RATE,
            max_seconds=self.crop_seconds if train else None,
            crop="random" if train else "start",
            seed=seed,
        )

    def loader(self, dataset: Dataset, batch_size: int, **options) -> DataLoader:
        """Batches of clips of similar length (``serlib.sampling.waveform_loader``)."""
        return waveform_loader(dataset, batch_size, **options)

    def model_options(self, encoder_config: dict | None = None) -> dict:
        """A saved run's encoder is rebuilt from its config, without its checkpoint; a new run's
        encoder is loaded by ``build_model`` from its name."""
        if encoder_config is None:
            return {}
        return {"encoder": rebuild_speech_encoder(encoder_config)}

    def to_dict(self) -> dict:
        return {"kind": "waveform", "crop_seconds": self.crop_seconds}

    @classmethod
    def from_dict(cls, values: dict) -> WaveInputs:
        return cls(values.get("crop_seconds"))  # runs older than this entry have none


def header_checked(path: str) -> str:
    """``path``, once its header reads as audio (AudioError otherwise); nothing is decoded."""
    probe_audio(path)
    return path


def audio_checked(path: str) -> str:
    """``path``, once its audio decodes at the encoder's rate (AudioError otherwise)."""
    load_audio(path, SAMPLE_RATE)
    return path


INPUT_KINDS: dict[str, type] = {
    "logmel": MelInputs,
    POOLED_CACHE_KIND: FrozenInputs,
    "waveform": WaveInputs,
}
"""The "kind" entry of config.json's "inputs", and the class that reads it back."""


def inputs_from_dict(values: dict) -> Inputs:
    """The inputs a run's config.json describes."""
    kind = values.get("kind")
    if kind not in INPUT_KINDS:
        raise ValueError(f"unknown inputs kind {kind!r}; known: {', '.join(INPUT_KINDS)}")
    return INPUT_KINDS[kind].from_dict(values)


@dataclass
class Prepared:
    """Tables (rows that survived reading) and datasets per set name, and their inputs."""

    tables: dict[str, pd.DataFrame]
    datasets: dict[str, Dataset]
    inputs: Inputs
    skipped: list[Skip]


def read_sets(
    protocol: Protocol, inputs: Inputs, progress: bool
) -> tuple[dict[str, pd.DataFrame], dict[str, list], list[Skip]]:
    """Every set's usable rows and items; a set left without a readable clip is an error."""
    tables, items, skipped = {}, {}, list(protocol.skipped)
    for name, table in protocol.tables.items():
        tables[name], items[name], bad = inputs.read(table, progress)
        skipped += bad
        if tables[name].empty:
            raise UserError(
                f"no readable audio in the {name.replace('_', ' ')} set; "
                "see what `serlib scan` skips in that corpus"
            )
    return tables, items, skipped


def make_datasets(
    tables: dict[str, pd.DataFrame],
    items: dict[str, list],
    labels: list[str],
    inputs: Inputs,
    seed: int,
) -> dict[str, Dataset]:
    """Labelled datasets, the training set cropped at random; target adaptation audio unlabelled."""
    datasets = {}
    for name, table in tables.items():
        if name == "target_adapt":  # unlabelled on purpose: DANN never sees target labels
            datasets[name] = inputs.dataset(
                items[name], None, train=True, domain=1, seed=seed + 1, target=True
            )
        else:
            ids = encode_labels(table["label"].tolist(), labels)
            datasets[name] = inputs.dataset(
                items[name],
                ids,
                train=name == "source_train",
                seed=seed,
                target=name.startswith("target_"),
            )
    return datasets


def prepare_mel_sets(
    protocol: Protocol, labels: list[str], config: InputConfig, seed: int, progress: bool
) -> Prepared:
    """Log-mel datasets for every set; normalisation fitted on the source training speakers'
    clips as recorded, before any speed-perturbed copies join the training set.

    ``seed`` is the run's: the random training crops of every epoch derive from it.
    """
    inputs = MelInputs(  # statistics, if any, are fitted below on the clips as the run reads them
        FrontendConfig(), None, config.normalisation, config.crop_frames, trim_db=config.trim_db
    )
    tables, items, skipped = read_sets(protocol, inputs, progress)
    if config.normalisation == "global":
        inputs.stats = MelStats.fit(inputs.trim(items["source_train"]))
        if config.target_statistics and "target_adapt" in items:  # audio only: no label is read
            inputs.target_stats = MelStats.fit(inputs.trim(items["target_adapt"]))
    if config.speed_perturb:  # the source training set only, and after the statistics
        train = tables["source_train"], items["source_train"]
        tables["source_train"], items["source_train"], more = with_speed_copies(
            *train, inputs.frontend, config.speed_perturb, progress
        )
        skipped += more
    datasets = make_datasets(tables, items, labels, inputs, seed)
    return Prepared(tables, datasets, inputs, skipped)


def prepare_pooled_sets(
    protocol: Protocol, labels: list[str], encoder_name: str, progress: bool
) -> Prepared:
    """Frozen Wav2Vec2: every file's per-layer pooled hidden states, extracted once into the cache."""
    inputs = FrozenInputs.from_encoder(build_wav2vec_encoder(encoder_name))
    tables, items, skipped = read_sets(protocol, inputs, progress)
    datasets = make_datasets(tables, items, labels, inputs, seed=0)  # no crop: the seed is unused
    return Prepared(tables, datasets, inputs, skipped)


def prepare_wave_sets(
    protocol: Protocol, labels: list[str], config: InputConfig, seed: int
) -> Prepared:
    """Waveform datasets for fine-tuning Wav2Vec2 (decoded on access, cropped in training)."""
    inputs = WaveInputs(config.crop_seconds)
    tables, items, skipped = read_sets(protocol, inputs, progress=False)
    datasets = make_datasets(tables, items, labels, inputs, seed)
    return Prepared(tables, datasets, inputs, skipped)
