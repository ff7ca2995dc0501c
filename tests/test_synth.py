"""The synthetic corpus: plans, on-disk layouts, determinism, reuse, single clips and their metadata.

Whether the clips carry the emotion cues they document, as measured, is ``tests/test_cues.py``.

The two tiny corpora are generated once per module (a few seconds); everything else is computed from
plans or single clips in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import wave
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serlib.corpora import load_corpus
from serlib.errors import UserError
from serlib.labels import apply_scheme
from serlib.synth import (
    EMOTION_CUES,
    INFO_FILE,
    LAYOUTS,
    METADATA_FILE,
    cues,
    dsp,
    generate_corpus,
    layouts,
    plan,
    render_clip,
)
from serlib.synth import corpus as synth_corpus
from serlib.synth.cues import NEUTRAL, blend, scaled, vary

IEMOCAP_LABELS = {"neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea", "dis", "oth", "xxx"}
RAVDESS_NAME = re.compile(r"^03-01-0[1-8]-0[12]-0[12]-0[12]-(\d\d)\.wav$")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Both layouts in the tiny profile, seed 0."""
    root = tmp_path_factory.mktemp("synth")
    return {
        layout: generate_corpus(layout, root / layout, "tiny", seed=0, progress=False)
        for layout in LAYOUTS
    }


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def wav_info(path: Path) -> tuple[int, int, int, float]:
    """(sample rate, channels, bytes per sample, seconds) of a WAV file."""
    with wave.open(str(path)) as handle:
        rate = handle.getframerate()
        return rate, handle.getnchannels(), handle.getsampwidth(), handle.getnframes() / rate


# --- plans -------------------------------------------------------------------------------------


def test_iemocap_plans_have_real_label_counts_and_structure():
    full = plan("iemocap", "full", 0)
    counts = Counter(spec.emotion for spec in full)
    assert set(counts) == IEMOCAP_LABELS
    assert sum(counts[label] for label in ("neu", "hap", "exc", "ang", "sad")) == 5531
    assert counts["fru"] == 1849 and counts["xxx"] == 250
    workshop = Counter(spec.emotion for spec in plan("iemocap", "workshop", 0))
    assert sum(workshop[label] for label in ("neu", "hap", "exc", "ang", "sad")) == 1000
    assert set(Counter(spec.emotion for spec in plan("iemocap", "tiny", 0))) == IEMOCAP_LABELS

    assert len({spec.utterance for spec in full}) == len(full)
    for spec in full:
        session, gender = spec.speaker[:5], spec.speaker[-1]
        assert spec.utterance.startswith(spec.dialog) and spec.dialog.startswith(session)
        assert spec.utterance.rsplit("_", 1)[1][0] == gender == spec.gender
        assert spec.path.endswith(f"/sentences/wav/{spec.dialog}/{spec.utterance}.wav")
    dialogs = {spec.dialog for spec in full}
    assert {"Ses01F_impro01", "Ses01M_impro01", "Ses05F_script03_2"} <= dialogs
    assert {spec.speaker for spec in full} == {f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"}


def test_ravdess_plans_cover_every_code():
    full = plan("ravdess", "full", 0)
    assert len(full) == 1440
    per_actor = Counter(spec.speaker for spec in full)
    assert len(per_actor) == 24 and set(per_actor.values()) == {60}
    for spec in full:
        name = spec.path.split("/")[1]
        match = RAVDESS_NAME.match(name)
        assert match and f"Actor_{match.group(1)}" == spec.speaker
        assert spec.gender == ("M" if int(match.group(1)) % 2 else "F")
        assert not (spec.emotion == "neutral" and spec.intensity == "strong")
    assert len(plan("ravdess", "workshop", 0)) == 720
    tiny = plan("ravdess", "tiny", 0)
    assert {(s.statement, s.repetition) for s in tiny} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert {(s.emotion, s.intensity) for s in tiny} == {
        (e, i) for e in cues.RAVDESS_EMOTIONS for i in ("normal", "strong")
    } - {("neutral", "strong")}


def test_plans_do_not_depend_on_anything_but_their_arguments():
    assert plan("iemocap", "tiny", 3) == plan("iemocap", "tiny", 3)
    assert plan("iemocap", "tiny", 3) != plan("iemocap", "tiny", 4)
    # A speaker's voice depends on the seed and its id only, not on the profile.
    assert (
        layouts.make_speakers("ravdess", 5)["Actor_07"]
        == layouts.make_speakers("ravdess", 5)["Actor_07"]
    )


@pytest.mark.parametrize(
    ("layout", "profile", "message"),
    [("cremad", "tiny", "unknown layout"), ("iemocap", "huge", "unknown profile")],
)
def test_bad_arguments_give_one_clear_error(tmp_path, layout, profile, message):
    with pytest.raises(ValueError, match=message):
        generate_corpus(layout, tmp_path / "out", profile, progress=False)
    assert not (tmp_path / "out").exists()


# --- the corpora on disk --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_loaders_read_the_tiny_corpora_completely(tiny, layout):
    scan = load_corpus(layout, tiny[layout])
    specs = plan(layout, "tiny", 0)
    assert scan.skipped == []
    assert len(scan.table) == len(specs)
    assert Counter(scan.table.emotion) == Counter(spec.emotion for spec in specs)
    genders = scan.table.groupby("speaker")["gender"].agg(set).to_dict()
    assert genders == {spec.speaker: {spec.gender} for spec in specs}
    four_class = apply_scheme(scan.table, "4class")
    assert set(four_class.label) == {"angry", "happy", "neutral", "sad"}
    rate, channels, width, _ = wav_info(Path(scan.table.path[0]))
    assert (rate, channels, width) == (16000 if layout == "iemocap" else 48000, 1, 2)


def test_iemocap_emo_evaluation_files_use_the_real_format(tiny):
    scan = load_corpus("iemocap", tiny["iemocap"])
    line = re.compile(
        r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(Ses0\d[FM]_\S+)\t(\w{3})\t\[\d\.\d{4}, \d\.\d{4}, \d\.\d{4}\]$"
    )
    rater = re.compile(
        r"^(C-[EFM]\d:\t[A-Z][a-z]+;\t\(\)|A-[EFM]\d:\tval \d; act \d; dom  \d;\t\(\))$"
    )
    files = sorted(Path(tiny["iemocap"]).rglob("EmoEvaluation/*.txt"))
    assert files
    durations = dict(
        zip(scan.table.utterance, scan.table.path.map(lambda p: wav_info(Path(p))[3]), strict=True)
    )
    seen = 0
    for text_file in files:
        lines = text_file.read_text().splitlines()
        assert lines[:2] == [layouts.EMO_EVALUATION_HEADER, ""]
        previous_end = 0.0
        for block in "\n".join(lines[2:]).strip().split("\n\n"):
            first, *raters = block.split("\n")
            match = line.match(first)
            assert match, first
            start, end = float(match.group(1)), float(match.group(2))
            assert previous_end < start < end
            assert end - start == pytest.approx(durations[match.group(3)], abs=1e-3)
            assert match.group(3).startswith(text_file.stem)
            assert raters and all(rater.match(r) for r in raters), raters
            previous_end = end
            seen += 1
    assert seen == len(scan.table)


def test_metadata_sidecar_and_info_describe_every_clip(tiny):
    for layout, root in tiny.items():
        metadata = pd.read_csv(Path(root) / METADATA_FILE)
        assert list(metadata.path) == [spec.path for spec in plan(layout, "tiny", 0)]
        assert all((Path(root) / p).is_file() for p in metadata.path)
        columns = ("cue_f0_shift_st", "speaker_f0_median_hz", "rec_rt60_s", "snr_db", "text")
        for column in (*columns, "f0_median_hz", "f0_range_st", "syllable_rate"):
            assert metadata[column].notna().all(), column
        info = json.loads((Path(root) / INFO_FILE).read_text())
        assert info["complete"] and (info["layout"], info["profile"], info["seed"]) == (
            layout,
            "tiny",
            0,
        )
        assert "NOT real speech" in (Path(root) / "SYNTH_README.txt").read_text()


def test_same_seed_gives_identical_files_even_over_an_unfinished_corpus(tiny, tmp_path):
    out = tmp_path / "again"
    stale = out / "IEMOCAP_full_release" / "Session9"
    stale.mkdir(parents=True)
    (out / INFO_FILE).write_text(json.dumps({"layout": "iemocap", "complete": False}))
    generate_corpus("iemocap", out, "tiny", seed=0, progress=False)
    assert not stale.exists()
    assert file_digests(out) == file_digests(Path(tiny["iemocap"]))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_clip_can_be_regenerated_alone(tiny, tmp_path, layout):
    spec = plan(layout, "tiny", 0)[7]
    job = synth_corpus._Job(
        layout,
        0,
        str(tmp_path),
        layouts.make_speakers(layout, 0),
        layouts.make_recordings(layout, 0),
    )
    (tmp_path / spec.path).parent.mkdir(parents=True)
    synth_corpus.render_planned(job, spec)
    alone = (tmp_path / spec.path).read_bytes()
    assert alone == (Path(tiny[layout]) / spec.path).read_bytes()
    other_seed = replace(job, seed=1, speakers=layouts.make_speakers(layout, 1))
    synth_corpus.render_planned(other_seed, spec)
    assert (tmp_path / spec.path).read_bytes() != alone


def test_a_finished_corpus_is_reused_and_other_folders_are_refused(tiny, tmp_path):
    root = Path(tiny["ravdess"])
    first = next(root.glob("Actor_01/*.wav"))
    stamp = first.stat().st_mtime_ns
    assert generate_corpus("ravdess", root, "tiny", seed=0, progress=False) == root
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="holds a synthetic ravdess corpus") as error:
        generate_corpus("iemocap", root, "tiny", seed=0, progress=False)
    assert isinstance(error.value, UserError)  # so the serlib command exits 2 with one line
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_corpus("ravdess", foreign, "tiny", progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(FileExistsError, match="is a file"):
        generate_corpus("ravdess", foreign / "notes.txt", "tiny", progress=False)


def test_a_corpus_from_other_generator_code_is_regenerated(tiny, tmp_path, monkeypatch):
    copy = tmp_path / "ravdess"
    generate_corpus("ravdess", copy, "tiny", seed=0, progress=False)
    info = json.loads((copy / INFO_FILE).read_text())
    assert info["version"] == synth_corpus.generator_version()
    assert info["version"].startswith(synth_corpus.SYNTH_VERSION + "+")
    clip = next(copy.glob("Actor_01/*.wav"))
    stamp = clip.stat().st_mtime_ns
    monkeypatch.setattr(synth_corpus, "generator_version", lambda: "1+edited")
    generate_corpus("ravdess", copy, "tiny", seed=0, progress=False)
    assert json.loads((copy / INFO_FILE).read_text())["version"] == "1+edited"
    assert clip.stat().st_mtime_ns != stamp  # rewritten, not reused


# --- single clips and the cues ---------------------------------------------------------------------


def test_render_clip_returns_a_waveform_and_its_parameters():
    samples, rate, params = render_clip("angry", speaker="M", domain="ravdess", seed=2)
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert 2.0 < samples.size / rate < 6.0 and np.isfinite(samples).all()
    assert np.abs(samples).max() <= 1.0
    assert params["emotion"] == "angry" and params["cue_loudness_db"] > 5
    assert params["text"] == "kIHdz-aar-tAO-kihng-bAY-dhax-dAOr"  # "Kids are talking by the door"
    calm = render_clip("calm", speaker="M", domain="ravdess", seed=2)[2]
    assert calm["text"] == params["text"]
    speaker = render_clip("ang", speaker="Ses02M", domain="iemocap", seed=4)[2]
    expected = layouts.make_speakers("iemocap", 4)["Ses02M"].f0_median_hz
    assert speaker["speaker_f0_median_hz"] == pytest.approx(expected, abs=1e-3)


def test_room_adds_noise_that_the_clean_voice_lacks():
    room, _, params = render_clip("neutral", speaker="F", domain="iemocap", seed=1)
    clean, _, _ = render_clip("neutral", speaker="F", domain="iemocap", seed=1, room=False)
    lead = int(params["lead_s"] * 16000) - 400
    assert dsp.rms_db(clean[:lead]) < -100 < dsp.rms_db(room[:lead]) < -35


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emotion": "bored"}, "unknown emotion"),
        ({"speaker": "Ses09F"}, "unknown speaker"),
        ({"domain": "emodb"}, "unknown layout"),
        ({"statement": 3}, "statement must be 1 or 2"),
    ],
)
def test_render_clip_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_clip(**kwargs)


def test_cue_profiles_scale_blend_and_vary_around_neutral():
    angry = EMOTION_CUES["angry"]
    assert scaled(angry, 0.0) == NEUTRAL
    assert scaled(angry, 1.0) == angry
    assert scaled(angry, 2.0).loudness_db == pytest.approx(2 * angry.loudness_db)
    assert scaled(angry, 2.0).rate == pytest.approx(angry.rate**2)
    assert blend(angry, EMOTION_CUES["sad"], 0.0) == angry
    assert vary(angry, np.random.default_rng(0), 0.0) == angry
    assert vary(NEUTRAL, np.random.default_rng(0), 0.5) == NEUTRAL
    with pytest.raises(ValueError, match="unknown emotion"):
        cues.cue_profile("bored")


def test_stft_and_istft_reconstruct_a_signal():
    signal = np.random.default_rng(0).standard_normal(4000)
    spectra = dsp.stft(signal)
    assert spectra.shape == (dsp.n_frames(signal.size), dsp.N_FFT // 2 + 1)
    restored = dsp.istft(spectra, signal.size)
    inner = slice(dsp.N_FFT, -dsp.N_FFT)
    assert np.allclose(restored[inner], signal[inner], atol=1e-4)
