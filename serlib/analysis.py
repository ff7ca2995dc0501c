"""Measurements the notebooks make on corpora and on trained models.

- On corpora (notebook 01): clip durations from the file headers, and the acoustic cues that carry
  emotion (F0 level and range with ``librosa.pyin``, loudness, an onset rate standing in for the
  speaking rate, spectral centroid for voice quality), measured per clip so they can be compared
  across emotions and across the two domains.
- On models (notebook 05): a 2-D t-SNE projection of embeddings, the per-class recall shift
  between the source and target test sets, and the tidy results tables the final figure draws.

Everything here returns plain numpy arrays and pandas tables; the figures are ``serlib.plots``'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import torch

from serlib.audio import AudioError, load_audio, probe_audio
from serlib.errors import UserError
from serlib.predict import predict
from serlib.runs import load_run
from serlib.sampling import make_loader

CUE_SAMPLE_RATE = 16_000
"""All cues are measured at 16 kHz, so a 48 kHz corpus and a 16 kHz corpus are comparable."""

F0_RANGE_HZ = (60.0, 500.0)
"""pyin's search range: low male voices to high, aroused female voices."""

CUES = {
    "f0_median_hz": "F0 median (Hz)",
    "f0_range_st": "F0 range, 10th-90th percentile (semitones)",
    "voiced_fraction": "voiced fraction",
    "loudness_db": "loudness, RMS (dB)",
    "onset_rate": "onsets per second (speaking-rate proxy)",
    "centroid_hz": "spectral centroid (Hz)",
}
"""The cue columns ``cue_table`` adds, and how a plot should name them."""


def clip_durations(paths: Sequence[str | Path]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Duration in seconds of each file, read from its header (no decoding, so it is fast).

    Unreadable files get NaN and are listed as (path, reason) in the second return value.
    """
    durations = np.full(len(paths), np.nan)
    problems: list[tuple[str, str]] = []
    for index, path in enumerate(paths):
        try:
            info = probe_audio(path)
        except AudioError as error:
            problems.append((str(path), error.reason))
            continue
        durations[index] = info.frames / info.samplerate
    return durations, problems


def acoustic_cues(waveform: np.ndarray, sample_rate: int = CUE_SAMPLE_RATE) -> dict[str, float]:
    """The emotion cues of one clip: pitch level and range, voicing, loudness, rate, brightness.

    Angry and happy speech is higher, wider in pitch, louder, faster and brighter than sad speech;
    neutral sits in between. F0 statistics are NaN for a clip with no voiced frame.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size < 2048:
        raise UserError(f"need a mono clip of at least 2048 samples, got shape {waveform.shape}")
    f0, voiced, _ = librosa.pyin(
        waveform,
        fmin=F0_RANGE_HZ[0],
        fmax=F0_RANGE_HZ[1],
        sr=sample_rate,
        frame_length=2048,
        hop_length=512,
    )
    voiced_f0 = f0[voiced & np.isfinite(f0)]
    if voiced_f0.size:
        low, median, high = np.percentile(voiced_f0, [10, 50, 90])
        f0_range = 12.0 * np.log2(high / low)
    else:
        median, f0_range = np.nan, np.nan
    rms = librosa.feature.rms(y=waveform, frame_length=2048, hop_length=512)[0]
    loudness = 20.0 * np.log10(max(float(np.sqrt(np.mean(rms**2))), 1e-8))
    onsets = librosa.onset.onset_detect(y=waveform, sr=sample_rate, hop_length=512, units="time")
    centroid = librosa.feature.spectral_centroid(y=waveform, sr=sample_rate, hop_length=512)[0]
    return {
        "f0_median_hz": float(median),
        "f0_range_st": float(f0_range),
        "voiced_fraction": float(np.mean(voiced)),
        "loudness_db": float(loudness),
        "onset_rate": float(len(onsets) / (waveform.size / sample_rate)),
        "centroid_hz": float(np.mean(centroid)),
    }


def sample_per_class(
    table: pd.DataFrame, per_class: int, seed: int = 0, by: Sequence[str] = ("corpus", "label")
) -> pd.DataFrame:
    """At most ``per_class`` rows of every group (e.g. every corpus and label), seeded."""
    if per_class < 1:
        raise UserError(f"per_class must be at least 1, got {per_class}")
    missing = [column for column in by if column not in table.columns]
    if missing:
        raise UserError(f"table has no column(s) {missing}")
    parts = [
        rows.sample(n=min(per_class, len(rows)), random_state=seed)
        for _, rows in table.groupby(list(by), sort=True)
    ]
    if not parts:
        return table.iloc[0:0]
    return pd.concat(parts).reset_index(drop=True)


def cue_table(table: pd.DataFrame, per_class: int = 10, seed: int = 0) -> pd.DataFrame:
    """Acoustic cues of up to ``per_class`` clips per corpus and label, one row per clip.

    Keeps ``corpus, speaker, gender, label, path`` and adds the ``CUES`` columns. Clips that cannot
    be read are left out and listed in ``result.attrs["skipped"]`` as (path, reason).
    """
    chosen = sample_per_class(table, per_class, seed)
    rows, skipped = [], []
    for clip in chosen.to_dict("records"):
        try:
            waveform = load_audio(clip["path"], sample_rate=CUE_SAMPLE_RATE)
            cues = acoustic_cues(waveform, CUE_SAMPLE_RATE)
        except (AudioError, ValueError) as error:
            skipped.append((str(clip["path"]), getattr(error, "reason", str(error))))
            continue
        keep = {key: clip[key] for key in ("corpus", "speaker", "gender", "label", "path")}
        rows.append({**keep, **cues})
    result = pd.DataFrame(rows, columns=["corpus", "speaker", "gender", "label", "path", *CUES])
    result.attrs["skipped"] = skipped
    return result


def cue_summary(cues: pd.DataFrame) -> pd.DataFrame:
    """Median of every cue per corpus and label: the table notebook 01 compares across domains."""
    return cues.groupby(["corpus", "label"])[list(CUES)].median().round(2)


# ----- embeddings and results (notebook 05) ------------------------------------------------------


def project_2d(embeddings: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D t-SNE map of embeddings [N, D] (standardised first), seeded so reruns agree.

    t-SNE keeps neighbourhoods, not distances: clusters that touch in the map are close in the
    embedding, but the gaps between far clusters mean little. Perplexity is capped below N / 3 so
    that small (tiny-profile) sets still work.
    """
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) < 5:
        raise UserError(f"need at least 5 embeddings [N, D], got shape {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinity")
    scaled = StandardScaler().fit_transform(embeddings)
    perplexity = float(min(perplexity, max(2.0, (len(embeddings) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # One OpenMP thread: on a few hundred points thread start-up and spinning cost more than they
    # save, and on a busy 2-core laptop they made a 30-point map take 11 s instead of 0.2 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(scaled)


def recall_shift(
    source: Mapping[str, float | None], target: Mapping[str, float | None]
) -> pd.DataFrame:
    """Per-class recall on the source and target test sets and the change (target - source).

    Takes the ``recall`` dicts of two evaluations (class -> recall, None when a class has no clips)
    and sorts the classes by how much they lost, the worst first.
    """
    classes = sorted(set(source) | set(target))
    table = pd.DataFrame(
        {
            "class": classes,
            "source": [_as_float(source.get(name)) for name in classes],
            "target": [_as_float(target.get(name)) for name in classes],
        }
    )
    table["shift"] = table["target"] - table["source"]
    return table.sort_values("shift", kind="stable").reset_index(drop=True)


def _as_float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def read_predictions(run: str | Path, set_name: str) -> pd.DataFrame:
    """A run folder's ``predictions/<set>.csv`` (path, speaker, label, pred, prob_<class>)."""
    path = Path(run) / "predictions" / f"{set_name}.csv"
    if not path.is_file():
        raise UserError(
            f"{run}: no predictions for {set_name!r} (train and evaluate the run first)"
        )
    return pd.read_csv(path, dtype={"path": str, "speaker": str, "label": str, "pred": str})


def run_embeddings(
    run: str | Path,
    sets: Sequence[str] = ("source_test", "target_test"),
    max_per_set: int | None = 300,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Embeddings [N, D] of a trained run on its own evaluation sets, and one row per clip.

    The clips are those of ``predictions/<set>.csv`` (so source and target speakers are exactly the
    run's test speakers), at most ``max_per_set`` per set, drawn with ``seed``. The table has
    ``set, domain, path, speaker, label`` with ``domain`` "source" or "target" from the set name.
    """
    loaded = load_run(run)
    vectors, tables = [], []
    for set_name in sets:
        table = read_predictions(run, set_name)[["path", "speaker", "label"]]
        if max_per_set is not None and len(table) > max_per_set:
            table = table.sample(n=max_per_set, random_state=seed)
        dataset, kept, _ = loaded.dataset(table.reset_index(drop=True))
        loader = make_loader(dataset, 16, shuffle=False)
        with torch.no_grad():
            found = predict(loaded.model, loader, embeddings=True)
        order = np.argsort(found.index)
        vectors.append(found.embedding[order])
        kept = kept.iloc[found.index[order]].reset_index(drop=True)
        domain = set_name.split("_")[0]
        tables.append(
            kept.assign(set=set_name, domain=domain)[["set", "domain", "path", "speaker", "label"]]
        )
    return np.concatenate(vectors), pd.concat(tables, ignore_index=True)
