"""Render clips and write whole synthetic corpora to disk.

``generate_corpus`` walks a layout's plan, renders each clip (in two worker processes for the larger
profiles), writes it straight to its WAV file and its generation parameters to a CSV sidecar, so memory
stays flat however big the corpus. Every clip draws its randomness from ``[seed, layout, clip index]``:
the same seed gives bit-identical files (with the same numpy, scipy and soxr), and any clip can be
regenerated alone. ``render_clip`` makes one clip in memory for listening and plotting in notebooks.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
import shutil
import wave
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soxr

from serlib.config import check_profile
from serlib.errors import UserError
from serlib.synth import dsp, layouts
from serlib.synth.cues import (
    EMOTION_CUES,
    EmotionCues,
    as_dict,
    blend,
    cue_profile,
    scaled,
    vary,
)
from serlib.synth.domains import DOMAINS, RAVDESS_STRONG_INTENSITY, Domain
from serlib.synth.layouts import ClipSpec
from serlib.synth.room import Recording, record
from serlib.synth.room import vary as vary_recording
from serlib.synth.speakers import Speaker, draw_speaker
from serlib.synth.syllables import STATEMENTS, Phrase, random_phrases, syllables_for_duration
from serlib.synth.voice import NOMINAL_RATE, render_speech

SYNTH_VERSION = "1"
"""The corpus format's version; ``generator_version`` adds a digest of the generator's code."""

METADATA_FILE = "synth_metadata.csv"
INFO_FILE = "synth_info.json"
README_FILE = "SYNTH_README.txt"

MAX_WORKERS = 2
"""Worker threads for corpora of 100 clips or more (the course targets 2-core laptops)."""

MAX_INTENSITY = 1.7
"""No utterance exaggerates its emotion beyond this (1.0 = the full profiles of ``cues``)."""

_OTHER_EMOTIONS = ("fearful", "disgust", "surprised", "sad", "happy", "calm")
_AMBIGUOUS_EMOTIONS = ("neutral", "happy", "excited", "angry", "sad", "frustrated")


class OutputFolderError(FileExistsError, UserError):
    """``out`` holds something that is not this layout's synthetic corpus; nothing was touched.

    A FileExistsError, and also a UserError, so the ``serlib`` command reports it in one line
    with exit status 2.
    """


# --- one clip -------------------------------------------------------------------------------------


def emotion_cues(
    emotion: str, intensity: float, rng: np.random.Generator
) -> tuple[EmotionCues, str]:
    """The cue profile for a native label at ``intensity``, and what was blended for oth/xxx.

    IEMOCAP's "oth" is rendered as neutral mixed with some other emotion, and "xxx" (raters
    disagreed) as an even mix of two of the common emotions.
    """
    if emotion == "oth":
        other = str(rng.choice(_OTHER_EMOTIONS))
        cues, mix = (
            blend(EMOTION_CUES["neutral"], EMOTION_CUES[other], rng.uniform(0.4, 0.8)),
            other,
        )
    elif emotion == "xxx":
        first, second = (str(e) for e in rng.choice(_AMBIGUOUS_EMOTIONS, size=2, replace=False))
        cues, mix = blend(EMOTION_CUES[first], EMOTION_CUES[second], 0.5), f"{first}+{second}"
    else:
        cues, mix = cue_profile(emotion), ""
    return scaled(cues, intensity), mix


def clip_intensity(domain: Domain, speaker: Speaker, level: str, rng: np.random.Generator) -> float:
    """How strongly this utterance shows its emotion: the domain's typical value x the speaker's."""
    if domain.name == "ravdess":
        base = RAVDESS_STRONG_INTENSITY if level == "strong" else 1.0
        acted = base * speaker.expressiveness * math.exp(rng.normal(0.0, domain.intensity_sd))
        return min(acted, MAX_INTENSITY)
    natural = float(np.clip(rng.normal(domain.intensity_mean, domain.intensity_sd), 0.1, 1.3))
    return natural * speaker.expressiveness


def script_phrases(seed: int, dialog: str, line: int) -> list[Phrase]:
    """The fixed text of one line of an IEMOCAP-like script (the same in every session)."""
    part = dialog.split("_script", 1)[1]  # "01_2"
    number, take = (int(x) for x in part.split("_"))
    rng = layouts.stream(
        seed, "iemocap", layouts.SCRIPT_STREAM + 1000 * (10 * number + take) + line
    )
    median, spread, shortest, longest = layouts.IEMOCAP_SECONDS
    seconds = float(np.clip(median * np.exp(rng.normal(0, spread)), shortest, longest))
    return random_phrases(rng, max(2, round(seconds * NOMINAL_RATE * 0.85)))


def _render(
    domain: Domain,
    speaker: Speaker,
    setup: Recording,
    emotion: str,
    intensity: float,
    phrases: list[Phrase] | None,
    seconds: float,
    rng: np.random.Generator,
    room: bool = True,
) -> tuple[np.ndarray, dict]:
    """Render one utterance at 16 kHz and describe it (the shared core of corpus and notebook)."""
    cues, mix = emotion_cues(emotion, intensity, rng)
    cues = vary(cues, rng, domain.cue_spread)
    cues = replace(
        cues,
        f0_shift_st=cues.f0_shift_st + rng.normal(0.0, domain.f0_jitter_st),
        rate=cues.rate * math.exp(rng.normal(0.0, domain.rate_jitter)),
    )
    if phrases is None:
        phrases = random_phrases(rng, syllables_for_duration(seconds, speaker, cues), cues.pause)
    speech = render_speech(phrases, speaker, cues, rng)
    recording = vary_recording(setup, rng, drr_db=1.0, level_db=domain.level_jitter_db)
    level_db = speaker.loudness_db + cues.loudness_db
    lead = float(rng.uniform(*domain.lead_s))
    trail = float(rng.uniform(*domain.trail_s))
    if room:
        samples, measured = record(speech.samples, recording, level_db, lead, trail, rng)
    else:
        gain = dsp.db_to_gain(recording.speech_dbfs + level_db + 20.0)
        pad = (int(lead * dsp.SAMPLE_RATE), int(trail * dsp.SAMPLE_RATE))
        samples = np.pad(speech.samples * gain, pad)
        measured = {"speech_dbfs": round(recording.speech_dbfs + level_db, 2)}
    params = {
        "emotion_mix": mix,
        "intensity_value": round(intensity, 4),
        "lead_s": round(lead, 4),
        "trail_s": round(trail, 4),
        **speech.summary(),
        **measured,
        "text": " ".join("-".join(s.spelling() for s in phrase) for phrase in phrases),
        **as_dict(cues),
        **speaker.as_dict(),
        **recording.as_dict(),
    }
    return samples, params


@dataclass(frozen=True)
class _Job:
    """What every worker needs to render any clip of one corpus."""

    layout: str
    seed: int
    out: str
    speakers: dict[str, Speaker]
    recordings: dict[str, Recording]


def to_file_rate(samples: np.ndarray, domain: Domain, rng: np.random.Generator) -> np.ndarray:
    """Resample 16 kHz audio to the layout's file rate (soxr) and add that rate's noise floor.

    RAVDESS-like clips are synthesised at 16 kHz, which is all a 16 kHz model sees and three times
    cheaper, then upsampled to 48 kHz; a faint white floor (a couple of 16-bit steps) fills the band
    above 8 kHz as a real microphone's self-noise would.
    """
    if domain.file_rate == dsp.SAMPLE_RATE:
        return samples
    upsampled = soxr.resample(
        samples.astype(np.float32), dsp.SAMPLE_RATE, domain.file_rate, quality="HQ"
    )
    # +-2 steps of 16-bit audio, uniformly: white, about -87 dBFS, and far cheaper than Gaussian.
    floor = rng.integers(-2, 3, upsampled.size, dtype=np.int8).astype(np.float32)
    return upsampled + floor * np.float32(1.0 / 32767.0)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Round to 16-bit integers ourselves, so the written bits never depend on libsndfile."""
    scaled = np.rint(samples.astype(np.float32) * np.float32(32767.0))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit mono PCM as a plain RIFF/WAVE file (the standard library writes it without the
    per-file disk sync that libsndfile does on close, which dominates on slow disks)."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.astype("<i2").tobytes())


def render_planned(job: _Job, spec: ClipSpec) -> dict:
    """Render one planned clip, write its WAV file, and return its metadata row."""
    domain = DOMAINS[job.layout]
    rng = layouts.stream(job.seed, job.layout, spec.index)
    speaker = job.speakers[spec.speaker]
    intensity = clip_intensity(domain, speaker, spec.intensity, rng)
    if spec.statement:
        phrases: list[Phrase] | None = [STATEMENTS[spec.statement][1]]
    elif spec.script_line >= 0:
        phrases = script_phrases(job.seed, spec.dialog, spec.script_line)
    else:
        phrases = None
    setup = job.recordings[spec.setup]
    samples, params = _render(
        domain, speaker, setup, spec.emotion, intensity, phrases, spec.seconds, rng
    )
    pcm = to_pcm16(to_file_rate(samples, domain, rng))
    write_wav(Path(job.out) / spec.path, pcm, domain.file_rate)
    row = {
        "path": spec.path,
        "layout": job.layout,
        "index": spec.index,
        "speaker": spec.speaker,
        "gender": spec.gender,
        "group": spec.setup,
        "emotion": spec.emotion,
        "intensity": spec.intensity,
        "statement": spec.statement or "",
        "repetition": spec.repetition or "",
        "dialog": spec.dialog,
        "utterance": spec.utterance,
        "script_line": spec.script_line if spec.script_line >= 0 else "",
        "sample_rate": domain.file_rate,
        "duration_s": round(pcm.size / domain.file_rate, 4),
    }
    row.update(params)
    return row


def render_clip(
    emotion: str = "neutral",
    speaker: str = "F",
    domain: str = "iemocap",
    intensity: float | None = None,
    statement: int | None = None,
    seed: int = 0,
    room: bool = True,
) -> tuple[np.ndarray, int, dict]:
    """One synthetic utterance in memory: (float32 waveform, 16000, generation parameters).

    - ``emotion``: any of ``cues.EMOTION_CUES`` ("angry", "calm", ...) or an IEMOCAP code ("ang").
    - ``speaker``: "F" or "M" for a voice drawn from the domain's population with ``seed``, or a
      corpus speaker id ("Ses03M", "Actor_07") for the very voice of that speaker in the corpus
      generated with the same ``seed``.
    - ``domain``: "iemocap" (natural intensity, room) or "ravdess" (acted, studio).
    - ``intensity``: how strongly the emotion shows (0 = neutral, 1 = full profile); None uses the
      domain's typical value (0.7 natural, 1.0 acted).
    - ``statement``: 1 or 2 for a RAVDESS sentence; None gives RAVDESS statement 1 for "ravdess" and
      about 3 s of nonsense speech for "iemocap". The words depend on ``seed`` only, so calls that
      differ only in emotion say the same thing.
    - ``room``: False returns the clean voice, without reverberation, noise or channel EQ.

    The waveform is at 16 kHz whatever the domain (the corpus writes RAVDESS-like files at 48 kHz).
    """
    layout = layouts.check_layout(domain)
    setting = DOMAINS[layout]
    if emotion not in ("oth", "xxx"):
        cue_profile(emotion)  # raises a clear UserError for an unknown emotion
    speakers = layouts.make_speakers(layout, seed)
    if speaker in ("F", "M"):
        voice = draw_speaker(speaker, speaker, setting.population, np.random.default_rng([seed, 7]))
        setup = setting.draw_recording(np.random.default_rng([seed, 8]))
    elif speaker in speakers:
        voice = speakers[speaker]
        setup_id = speaker[:5] if layout == "iemocap" else speaker
        setup = layouts.make_recordings(layout, seed)[setup_id]
    else:
        raise UserError(
            f"unknown speaker {speaker!r}; use 'F', 'M' or one of {', '.join(sorted(speakers))}"
        )
    if statement is None and layout == "ravdess":
        statement = 1
    if statement is not None and statement not in STATEMENTS:
        raise UserError(f"statement must be 1 or 2, not {statement!r}")
    if intensity is None:
        intensity = setting.intensity_mean
    if statement is not None:
        phrases = [STATEMENTS[statement][1]]
    else:
        content = np.random.default_rng([seed, 9])
        phrases = random_phrases(content, max(2, round(3.0 * NOMINAL_RATE * 0.85)))
    rng = np.random.default_rng([seed, 10])
    samples, params = _render(
        setting, voice, setup, emotion, float(intensity), phrases, 3.0, rng, room=room
    )
    params = {"emotion": emotion, "domain": layout, "speaker": voice.speaker_id, **params}
    return samples.astype(np.float32), dsp.SAMPLE_RATE, params


# --- whole corpora ----------------------------------------------------------------------------------


def _layout_paths(layout: str, out: Path) -> list[Path]:
    """What a synthetic corpus of ``layout`` owns inside ``out`` (removed before regenerating)."""
    owned = [out / METADATA_FILE, out / README_FILE]
    if layout == "iemocap":
        return owned + [out / "IEMOCAP_full_release"]
    return owned + sorted(out.glob("Actor_[0-9][0-9]"))


def generator_version() -> str:
    """``SYNTH_VERSION`` plus a digest of ``serlib/synth/*.py``.

    A corpus written by different generator code is regenerated rather than silently reused:
    a forgotten version bump once left a course training on audio from older code.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{SYNTH_VERSION}+{digest.hexdigest()[:10]}"


def _prepare_folder(out: Path, info: dict) -> bool:
    """Make ``out`` ready; return True when it already holds exactly this finished corpus."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out} is a file; give --out a folder")
    info_path = out / INFO_FILE
    if info_path.exists():
        try:
            old = json.loads(info_path.read_text())
        except (OSError, ValueError):
            old = {}
        same = {k: old.get(k) for k in ("layout", "profile", "seed", "version")} == {
            k: info[k] for k in ("layout", "profile", "seed", "version")
        }
        if same and old.get("complete"):
            return True
        if old.get("layout") not in (None, info["layout"]):
            raise OutputFolderError(
                f"{out} holds a synthetic {old.get('layout')} corpus; give --out another folder"
            )
        for path in _layout_paths(info["layout"], out):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    elif out.exists() and any(out.iterdir()):
        raise OutputFolderError(
            f"{out} is not empty and holds no synthetic corpus; give --out a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    return False


def _rows(job: _Job, specs: list[ClipSpec], workers: int) -> Iterator[dict]:
    """Metadata rows in plan order, rendering in ``workers`` threads (1: in this thread).

    Threads rather than processes: the heavy work (FFTs, array maths, resampling, file writes)
    runs in numpy, scipy and soxr with the GIL released, and threads need no re-import of the
    caller's script, which process pools on macOS/Windows (and in scripts without a main guard)
    trip over. At most ``2 * workers`` clips are in flight, so memory stays flat.
    """
    render = functools.partial(render_planned, job)
    if workers <= 1:
        yield from map(render, specs)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="serlib-synth") as pool:
        pending: deque[Future] = deque()
        for spec in specs:
            pending.append(pool.submit(render, spec))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _readme(info: dict) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items())
    return f"""Synthetic {info["layout"]}-like emotional speech, made by serlib (synth version {info["version"]}).

profile {info["profile"]}, seed {info["seed"]}, {info["n_clips"]} clips ({counts}).

This is NOT real speech. A small formant synthesiser renders nonsense syllables whose emotion is
carried by the acoustic cues the literature documents (F0 level, range and contour, loudness,
speaking rate, spectral tilt, jitter, shimmer, breathiness), by synthetic speakers, in a recording
setting that mimics the real corpus (room noise and reverberation for IEMOCAP, a dry studio for
RAVDESS). It exists so that the course runs offline in minutes; results on it say nothing about
real emotional speech.

{METADATA_FILE}: every clip's generation parameters (emotion cues, speaker, room, measured prosody).
Regenerate with: serlib synth --layout {info["layout"]} --out <this folder> --profile {info["profile"]} --seed {info["seed"]}
"""


def generate_corpus(
    layout: str, out: str | Path, profile: str = "workshop", seed: int = 0, progress: bool = True
) -> Path:
    """Write the synthetic corpus ``layout`` ("iemocap" or "ravdess") under ``out``; return its root.

    The root is what ``serlib.corpora.load_corpus(layout, root)`` reads (for IEMOCAP, the folder that
    holds ``IEMOCAP_full_release``). Profiles: ``tiny`` (about 40-60 clips, for tests), ``workshop``
    (1000 4-class IEMOCAP-like utterances, 720 RAVDESS-like files), ``full`` (IEMOCAP's real label
    counts, 5531 in 4 classes; all 1440 RAVDESS files). A folder that already holds the same finished
    corpus (layout, profile, seed, version) is returned untouched; an unfinished or different
    synthetic corpus of the same layout is replaced; any other non-empty folder is refused.
    """
    layouts.check_layout(layout)
    check_profile(profile)
    out = Path(out).expanduser()
    specs = layouts.plan(layout, profile, seed)
    counts = dict(sorted(Counter(spec.emotion for spec in specs).items()))
    info = {
        "generator": "serlib.synth",
        "layout": layout,
        "profile": profile,
        "seed": seed,
        "version": generator_version(),
        "n_clips": len(specs),
        "counts": counts,
        "sample_rate": DOMAINS[layout].file_rate,
        "complete": False,
    }
    if _prepare_folder(out, info):
        return out
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    for folder in sorted({(out / spec.path).parent for spec in specs}):
        folder.mkdir(parents=True, exist_ok=True)
    speakers, recordings = (
        layouts.make_speakers(layout, seed),
        layouts.make_recordings(layout, seed),
    )
    job = _Job(layout, seed, str(out), speakers, recordings)
    workers = 1 if len(specs) < 100 else min(MAX_WORKERS, os.cpu_count() or 1)
    bar = _progress(len(specs), f"synth {layout} ({profile})", progress)
    dialog_turns: list[tuple[ClipSpec, float]] = []
    with (out / METADATA_FILE).open("w", newline="") as handle:
        writer = None
        for spec, row in zip(specs, _rows(job, specs, workers), strict=True):
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow(row)
            if layout == "iemocap":
                if dialog_turns and dialog_turns[-1][0].dialog != spec.dialog:
                    _write_dialog(out, dialog_turns, seed)
                    dialog_turns = []
                dialog_turns.append((spec, float(row["duration_s"])))
            bar.update(1)
    if dialog_turns:
        _write_dialog(out, dialog_turns, seed)
    bar.close()
    (out / README_FILE).write_text(_readme(info))
    info["complete"] = True
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return out


def _write_dialog(out: Path, turns: list[tuple[ClipSpec, float]], seed: int) -> None:
    path = out / layouts.emo_evaluation_path(turns[0][0].dialog)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(layouts.emo_evaluation_text(turns, seed))


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, description: str, enabled: bool):
    """A tqdm bar, or a silent stand-in when ``enabled`` is False."""
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="clip")
