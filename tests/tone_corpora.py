"""Tiny emotional "corpora" for end-to-end tests: the emotion is the pitch of a short tone.

A model learns them in a few epochs, so the run tests can check that training really happened.
The target corpus (EmoDB layout) is shifted: higher pitch, more noise, other speakers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from serlib.emobox import read_facts

PITCH_HZ = {"neutral": 200.0, "happy": 400.0, "sad": 150.0, "angry": 600.0}
RAVDESS_CODE = {"neutral": 1, "happy": 3, "sad": 4, "angry": 5}
EMODB_LETTER = {"neutral": "N", "happy": "F", "sad": "T", "angry": "W"}


def tone_clip(pitch: float, seed: int, noise: float, rate: int = 16000, seconds: float = 0.4):
    """A sine at ``pitch`` +- 10 % with white noise: float32 [samples]."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * rate)) / rate
    pitch *= 1 + 0.1 * rng.standard_normal()
    wave = 0.3 * np.sin(2 * np.pi * pitch * time) + noise * rng.standard_normal(len(time))
    return wave.astype(np.float32)


def write_ravdess(root: Path, actors: int = 6) -> Path:
    """``Actor_NN/03-01-EE-01-SS-RR-NN.wav``: 4 emotions x 2 statements x 2 repetitions, 16 kHz."""
    for actor in range(1, actors + 1):
        for emotion, code in RAVDESS_CODE.items():
            for statement in (1, 2):
                for repetition in (1, 2):
                    name = f"03-01-{code:02d}-01-{statement:02d}-{repetition:02d}-{actor:02d}.wav"
                    seed = actor * 100 + code * 10 + statement * 2 + repetition
                    path = root / f"Actor_{actor:02d}" / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(path, tone_clip(PITCH_HZ[emotion], seed, 0.01), 16000)
    return root


def write_emodb(root: Path, speakers=("03", "08", "09", "10"), takes: int = 3) -> Path:
    """``wav/SSa0TEa.wav``: 4 emotions x ``takes`` per speaker, pitch x1.3 and noisier."""
    for speaker in speakers:
        for emotion, letter in EMODB_LETTER.items():
            for take in range(1, takes + 1):
                path = root / "wav" / f"{speaker}a0{take}{letter}a.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                clip = tone_clip(1.3 * PITCH_HZ[emotion], int(speaker) * 100 + take, 0.1)
                sf.write(path, clip, 16000)
    return root


def write_balanced_ravdess(root: Path) -> Path:
    """EmoBox's balanced 4-class RAVDESS test set (240 clips, its names), each clip a tone."""
    for clip, label in read_facts("ravdess_balanced_test.json")["clips"]:
        path = root / f"Actor_{clip[-2:]}" / f"{clip}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone_clip(PITCH_HZ[label], int(clip[-2:]), 0.01), 16000)
    return root
