"""Measurements the notebooks make on corpora and on trained models.

- On corpora (notebook 01): clip durations from the file headers, and the acoustic cues that carry
  emotion (F0 level and range with ``librosa.pyin``, loudness, speaking rate, voice quality),
  measured per clip on its speech frames so they can be compared across emotions and across the
  two domains, and ``cue_findings``: what those measurements show, in sentences.
- On models (notebook 05): a 2-D t-SNE projection of embeddings, the per-class recall shift
  between the source and target test sets, and the tidy results tables the final figure draws.

Everything here returns plain numpy arrays and pandas tables; the figures are ``serlib.plots``'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import scipy.signal
import torch

from serlib.audio import AudioError, load_audio, probe_audio
from serlib.errors import UserError
from serlib.phrasing import emotion, join_words
from serlib.predict import predict
from serlib.runs import LoadedRun, load_run
from serlib.sampling import make_loader
from serlib.scoring import embeddings_path

CUE_SAMPLE_RATE = 16_000
"""All cues are measured at 16 kHz, so a 48 kHz corpus and a 16 kHz corpus are comparable."""

F0_RANGE_HZ = (60.0, 500.0)
"""pyin's search range: low male voices to high, aroused female voices."""

PITCH_FRAME, PITCH_HOP = 2048, 512
"""pyin's frames: 128 ms (two periods of a 60 Hz voice, about one syllable), every 32 ms."""

SPEECH_WINDOW_DB = 15.0
"""Frames more than this far below the clip's loud frames (its 95th percentile) are not speech.

Pauses and the silence around a clip hold room noise, reverberation and mains hum. pyin marks such
frames voiced (with a voicing probability as low as 0.01) and tracks the 60 Hz hum at the bottom of
its range, so measuring them made pauses look like pitch range: sad clips, which pause the most,
measured the widest F0 range although they are synthesised with the narrowest. The window must be
narrower than the quietest speech's signal-to-noise ratio (a sad voice in the IEMOCAP-like room
is about 20 dB above the room tone): a 25 dB window still let the room tone of short sad clips
in."""

SYLLABLE_WINDOW_DB = 25.0
"""The speaking rate's wider window: the time from the first to the last syllable must keep their
quiet edges, and noise between syllables rarely makes a 2 dB peak in the vowel band."""

RATE_HOP = 160
"""The speaking-rate envelope's step: 10 ms, fine enough to separate syllables 80 ms apart."""

NUCLEUS_BAND_HZ = (800.0, 3000.0)
"""Where vowels carry their energy (F1-F2) and consonants carry little: one peak per syllable."""

NUCLEUS_PROMINENCE_DB = 2.0
"""How far a peak of that envelope must rise above its surroundings to count as a syllable."""

CUES = {
    "f0_median_hz": "F0 median (Hz)",
    "f0_range_st": "F0 range, 10th-90th percentile (semitones)",
    "voiced_fraction": "voiced share of speech",
    "loudness_db": "loudness, RMS of speech (dB)",
    "syllable_rate": "syllables per second of speech",
    "alpha_ratio_db": "alpha ratio, 1-5 kHz vs 50 Hz-1 kHz (dB)",
    "centroid_hz": "spectral centroid of speech (Hz)",
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


def speech_frames(frame_db: np.ndarray, window_db: float) -> np.ndarray:
    """Which frames are speech: those within ``window_db`` of the clip's loud frames."""
    return frame_db >= np.percentile(frame_db, 95) - window_db


def _decibels(power: np.ndarray) -> np.ndarray:
    """Power in dB, floored at -160 dB so that digital silence stays finite."""
    return 10.0 * np.log10(np.maximum(power, 1e-16))


def syllable_rate(waveform: np.ndarray, sample_rate: int = CUE_SAMPLE_RATE) -> float:
    """Syllables per second of speech, counted as peaks of the vowel-band energy.

    Each syllable has one vowel, and vowels are the loudest sounds between 800 Hz and 3 kHz, so
    peaks of that band's smoothed energy (rising ``NUCLEUS_PROMINENCE_DB`` above the dips around
    them) count syllables (after de Jong & Wempe 2009). Dividing by the time from the first to the
    last speech frame (``SYLLABLE_WINDOW_DB``) leaves out the silence around the clip but keeps the
    pauses, which are part of how fast someone speaks.
    """
    power = np.abs(librosa.stft(waveform, n_fft=512, hop_length=RATE_HOP)) ** 2
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=512)
    band = power[(freqs >= NUCLEUS_BAND_HZ[0]) & (freqs <= NUCLEUS_BAND_HZ[1])].sum(axis=0)
    kernel = np.hanning(9)
    envelope = _decibels(np.convolve(band, kernel / kernel.sum(), mode="same"))
    speech = speech_frames(envelope, SYLLABLE_WINDOW_DB)
    peaks, _ = scipy.signal.find_peaks(
        envelope, prominence=NUCLEUS_PROMINENCE_DB, distance=round(0.08 * sample_rate / RATE_HOP)
    )
    inside = np.flatnonzero(speech)
    seconds = (inside[-1] - inside[0] + 1) * RATE_HOP / sample_rate
    return float(np.count_nonzero(speech[peaks]) / seconds)


def acoustic_cues(waveform: np.ndarray, sample_rate: int = CUE_SAMPLE_RATE) -> dict[str, float]:
    """The emotion cues of one clip, measured on its speech frames only (see ``SPEECH_WINDOW_DB``).

    Pitch level and range (pyin, on voiced speech frames), the voiced share of speech, loudness
    (RMS of the speech frames), speaking rate (``syllable_rate``), voice quality as the alpha
    ratio (energy above 1 kHz against below it in voiced frames: tense voices keep more, lax ones
    less) and brightness (spectral centroid). F0 and alpha ratio are NaN when no frame is voiced.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size < PITCH_FRAME:
        raise UserError(
            f"need a mono clip of at least {PITCH_FRAME} samples, got shape {waveform.shape}"
        )
    # pyin's cost grows with the clip, so it runs on the stretch from the first to the last
    # speech frame (a RAVDESS-like clip is half silence); pauses inside it stay.
    rms = librosa.feature.rms(y=waveform, frame_length=PITCH_FRAME, hop_length=PITCH_HOP)[0]
    level_db = _decibels(rms**2)
    inside = np.flatnonzero(speech_frames(level_db, SPEECH_WINDOW_DB))
    start, stop = inside[0] * PITCH_HOP, max((inside[-1] + 1) * PITCH_HOP, PITCH_FRAME)
    spoken = waveform[max(0, min(start, waveform.size - PITCH_FRAME)) : stop]
    f0, voiced, _ = librosa.pyin(
        spoken,
        fmin=F0_RANGE_HZ[0],
        fmax=F0_RANGE_HZ[1],
        sr=sample_rate,
        frame_length=PITCH_FRAME,
        hop_length=PITCH_HOP,
    )
    rms = librosa.feature.rms(y=spoken, frame_length=PITCH_FRAME, hop_length=PITCH_HOP)[0]
    speech = _decibels(rms**2) >= np.percentile(level_db, 95) - SPEECH_WINDOW_DB
    voiced = voiced & speech & np.isfinite(f0)
    if voiced.any():
        low, median, high = np.percentile(f0[voiced], [10, 50, 90])
        f0_range = 12.0 * np.log2(high / low)
    else:
        median, f0_range = np.nan, np.nan
    power = np.abs(librosa.stft(spoken, n_fft=PITCH_FRAME, hop_length=PITCH_HOP)) ** 2
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=PITCH_FRAME)
    voiced_power = power[:, voiced].sum(axis=1)
    low_band = voiced_power[(freqs >= 50) & (freqs < 1000)].sum()
    high_band = voiced_power[(freqs >= 1000) & (freqs < 5000)].sum()
    alpha = _decibels(high_band / max(low_band, 1e-16)) if voiced.any() else np.nan
    centroid = librosa.feature.spectral_centroid(S=np.sqrt(power), sr=sample_rate)[0]
    return {
        "f0_median_hz": float(median),
        "f0_range_st": float(f0_range),
        "voiced_fraction": float(np.count_nonzero(voiced) / np.count_nonzero(speech)),
        "loudness_db": float(_decibels(np.mean(rms[speech] ** 2))),
        "syllable_rate": syllable_rate(waveform, sample_rate),
        "alpha_ratio_db": float(alpha),
        "centroid_hz": float(np.mean(centroid[speech])),
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
        for _, rows in table.groupby(list(by), sort=True, dropna=False)
    ]
    if not parts:
        return table.iloc[0:0]
    return pd.concat(parts).reset_index(drop=True)


def cue_table(table: pd.DataFrame, per_class: int = 10, seed: int = 0) -> pd.DataFrame:
    """Acoustic cues of up to ``per_class`` clips per corpus and label, one row per clip.

    The genders share each label's clips equally (``per_class`` split between them): women speak
    about nine semitones above men, far more than any emotion moves F0, so with unequal shares an
    emotion's F0 would mostly say which gender spoke it. Keeps ``corpus, speaker, gender, label,
    path`` and adds the ``CUES`` columns. Clips that cannot be read are left out and listed in
    ``result.attrs["skipped"]`` as (path, reason).
    """
    genders = max(1, table["gender"].nunique(dropna=False)) if "gender" in table else 1
    per_gender = max(1, per_class // genders)
    chosen = sample_per_class(table, per_gender, seed, by=("corpus", "label", "gender"))
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
    """Median of every cue per corpus and label, the genders weighted equally (notebook 01's table).

    Each gender's median, then their mean: an emotion's F0 must not depend on how many of its clips
    women spoke.
    """
    keys = ["corpus", "label"]
    per_gender = cues.groupby([*keys, "gender"], dropna=False)[list(CUES)].median()
    return per_gender.groupby(level=keys).mean().round(2)


FINDING_CUES = {
    "f0_median_hz": ("median F0", 0.5, "semitones"),
    "f0_range_st": ("F0 range", 0.5, "semitones"),
    "loudness_db": ("loudness", 1.0, "dB"),
    "syllable_rate": ("speaking rate", 0.2, "syllables per second"),
    "alpha_ratio_db": ("high-frequency energy (alpha ratio)", 1.0, "dB"),
}
"""The cues the findings compare, as (words, tie, unit). The literature finds each one highest in
aroused speech (anger, joy) and lowest in sadness. Differences smaller than the tie (median F0 is
compared in semitones) are too small for a few clips per emotion to order: they count as ties."""


def _cue_values(summary: pd.DataFrame, corpus: str, cue: str) -> pd.Series:
    """One corpus's per-emotion values of ``cue`` (median F0 in semitones re 100 Hz), no NaN."""
    values = summary.loc[corpus, cue].astype(float).dropna()
    return 12.0 * np.log2(values / 100.0) if cue == "f0_median_hz" else values


def _where(corpora: Sequence[str]) -> str:
    """``"in both a and b"`` or ``"in a"``."""
    return f"in both {join_words(list(corpora))}" if len(corpora) == 2 else f"in {corpora[0]}"


def _cue_check(
    summary: pd.DataFrame, corpora: Sequence[str], claim: str, misses_in: Callable
) -> str:
    """``claim`` for the cues where ``misses_in`` finds nothing in any corpus, and where it does.

    ``misses_in(values, unit)`` takes one corpus's per-emotion values of one cue and returns the
    words for what breaks the claim there, with by how much ("" when the claim holds).
    """
    holds, fails = [], []
    for cue, (words, _, unit) in FINDING_CUES.items():
        misses = []
        for corpus in corpora:
            miss = misses_in(_cue_values(summary, corpus, cue), unit)
            if miss:
                misses.append(f"{corpus} ({miss})")
        if misses:
            fails.append(f"{words} in {join_words(misses)}")
        else:
            holds.append(words)
    sentence = f"{claim} {join_words(holds) if holds else 'none of the cues'} {_where(corpora)}"
    return sentence + ("; not for " + "; nor for ".join(fails) if fails else "") + "."


def _sad_lowest(values: pd.Series, unit: str) -> str:
    """What is below *sad* in one corpus, and by how much ("" when *sad* is the lowest)."""
    if "sad" not in values.index or values.idxmin() == "sad":
        return ""
    gap = values["sad"] - values.min()
    return f"{emotion(values.idxmin())} is {gap:.1f} {unit} lower"


def _aroused_above_neutral(values: pd.Series, unit: str) -> str:
    """Which of *angry* and *happy* is not above *neutral* in one corpus, and by how much."""
    if "neutral" not in values.index:
        return ""
    below = [n for n in ("angry", "happy") if n in values.index and values[n] <= values["neutral"]]
    gaps = {name: values["neutral"] - values[name] for name in below}
    return join_words(
        [
            f"{emotion(name)} is {gap:.1f} {unit} below"
            if gap >= 0.05
            else f"{emotion(name)} is level"
            for name, gap in gaps.items()
        ]
    )


def _swaps(first: pd.Series, second: pd.Series, tie: float) -> list[str]:
    """Pairs of emotions that the two corpora put in opposite orders, each by more than ``tie``."""
    shared = [name for name in first.index if name in second.index]
    return [
        f"{emotion(x)}/{emotion(y)}"
        for i, x in enumerate(shared)
        for y in shared[i + 1 :]
        if min(abs(first[x] - first[y]), abs(second[x] - second[y])) > tie
        and (first[x] > first[y]) != (second[x] > second[y])
    ]


def _order_finding(summary: pd.DataFrame, first: str, second: str) -> str:
    """Whether the two corpora rank the emotions alike on every cue, ties aside."""
    differ = []
    for cue, (words, tie, _) in FINDING_CUES.items():
        swapped = _swaps(_cue_values(summary, first, cue), _cue_values(summary, second, cue), tie)
        if swapped:
            differ.append(f"{words} ({join_words(swapped)} swap places)")
    ties = join_words(sorted({f"{tie:g} {unit}" for _, tie, unit in FINDING_CUES.values()}))
    verdict = (
        f"{first} and {second} order the emotions differently on: {'; '.join(differ)}."
        if differ
        else f"The cues order the emotions the same way in {first} and {second}."
    )
    return f"{verdict} Differences under {ties} count as ties."


def _level_finding(summary: pd.DataFrame, first: str, second: str, cue: str) -> str:
    """How far each emotion's ``cue`` moves from the first corpus to the second."""
    words, tie, unit = FINDING_CUES[cue]
    change = (_cue_values(summary, second, cue) - _cue_values(summary, first, cue)).dropna()
    if change.empty:
        return f"No emotion has a measured {words} in both {first} and {second}."
    size = f"by {change.abs().min():.1f} to {change.abs().max():.1f} {unit}"
    if (change >= tie).all():
        return f"Every emotion's {words} is higher in {second} than in {first}, {size}."
    if (change <= -tie).all():
        return f"Every emotion's {words} is lower in {second} than in {first}, {size}."
    if (change.abs() < tie).all():
        return (
            f"Every emotion's {words} is the same in {first} and {second}, within {tie:g} {unit}."
        )
    groups = {
        "higher": change.index[change >= tie],
        "lower": change.index[change <= -tie],
        f"within {tie:g} {unit}": change.index[change.abs() < tie],
    }
    parts = [
        f"{side} for {join_words([emotion(n) for n in names])}"
        for side, names in groups.items()
        if len(names)
    ]
    return f"{words[0].upper()}{words[1:]} in {second} against {first}: {'; '.join(parts)}."


def cue_findings(summary: pd.DataFrame, corpora: Sequence[str] | None = None) -> list[str]:
    """What the measured cues show, in sentences true for any outcome (notebook 01's findings).

    ``summary`` is ``cue_summary`` output (index corpus, label); ``corpora`` picks one or two of its
    corpora, source first (default: those in the summary, in order). Says on which cues *sad* is
    the lowest and *angry* and *happy* sit above *neutral*, and, for two corpora, whether both rank
    the emotions alike and how each emotion's loudness and median F0 move between them.
    """
    present = list(dict.fromkeys(summary.index.get_level_values(0)))
    corpora = present if corpora is None else list(corpora)
    if any(name not in present for name in corpora) or not 1 <= len(corpora) <= 2:
        raise UserError(f"corpora must be one or two of {present}, got {corpora}")
    missing = [cue for cue in FINDING_CUES if cue not in summary.columns]
    if missing:
        raise UserError(f"summary has no column(s) {missing}; pass cue_summary(cue_table(...))")
    labels = set(summary.index.get_level_values(1))
    lines = []
    if "sad" in labels:
        lines.append(
            _cue_check(summary, corpora, f"{emotion('sad')} is the lowest on", _sad_lowest)
        )
    if "neutral" in labels and labels & {"angry", "happy"}:
        aroused = join_words([emotion(n) for n in ("angry", "happy") if n in labels])
        verb = "sit" if " and " in aroused else "sits"
        claim = f"{aroused} {verb} above {emotion('neutral')} on"
        lines.append(_cue_check(summary, corpora, claim, _aroused_above_neutral))
    if len(corpora) == 2:
        lines.append(_order_finding(summary, *corpora))
        lines += [_level_finding(summary, *corpora, cue) for cue in ("loudness_db", "f0_median_hz")]
    return lines


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
    The embeddings are those the run saved when it was scored (``embeddings/<set>.npy``); a run
    folder from before they were saved is run through its model again.
    """
    loaded, vectors, tables = None, [], []
    for set_name in sets:
        table = read_predictions(run, set_name)[["path", "speaker", "label"]]
        saved = embeddings_path(run, set_name)
        rows = np.load(saved) if saved.is_file() else None
        usable = rows is not None and len(rows) == len(table)  # one row per prediction
        if max_per_set is not None and len(table) > max_per_set:
            table = table.sample(n=max_per_set, random_state=seed)
        if usable:
            vectors.append(rows[table.index.to_numpy()])
            kept = table.reset_index(drop=True)
        else:
            loaded = loaded or load_run(run)
            found, kept = embed_clips(loaded, table.reset_index(drop=True))
            vectors.append(found)
        domain = set_name.split("_")[0]
        tables.append(
            kept.assign(set=set_name, domain=domain)[["set", "domain", "path", "speaker", "label"]]
        )
    return np.concatenate(vectors), pd.concat(tables, ignore_index=True)


def embed_clips(loaded: LoadedRun, table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """The embeddings of a table's clips under a loaded run, and the rows that could be read."""
    dataset, kept, _ = loaded.dataset(table)
    loader = make_loader(dataset, 16, shuffle=False)
    with torch.no_grad():
        found = predict(loaded.model, loader, embeddings=True)
    order = np.argsort(found.index)
    return found.embedding[order], kept.iloc[found.index[order]].reset_index(drop=True)
