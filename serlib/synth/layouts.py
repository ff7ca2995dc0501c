"""Which clips a synthetic corpus holds and where they go: the IEMOCAP and RAVDESS layouts.

A *plan* is the list of every clip (speaker, emotion, file path, dialog or file-name codes) before any
audio exists. Plans depend only on the layout, profile and seed, so a clip can be regenerated alone
from its index, and the same seed always gives the same corpus.

IEMOCAP (Busso et al. 2008): five sessions, each with one female and one male actor, who perform
improvised and scripted dialogs. ``SessionN/dialog/EmoEvaluation/<dialog>.txt`` lists each utterance
with its time in the dialog, majority label and mean valence/activation/dominance, followed by the
raters' lines; audio is ``SessionN/sentences/wav/<dialog>/<utterance>.wav``. The label counts follow
the real corpus (neutral and frustration common, happiness rare, a handful of fear, disgust, other),
so the 4-class subset is as imbalanced as the real one. Scripted dialogs reuse the same lines in
every session, as the real scripts do.

RAVDESS (Livingstone & Russo 2018): actors 01-24 (odd male), each saying two statements with eight
emotions, two intensities (none for neutral) and two repetitions: 60 files per actor named
``03-01-EE-II-SS-RR-AA.wav`` (modality, channel, emotion, intensity, statement, repetition, actor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serlib.errors import UserError
from serlib.synth.cues import RAVDESS_EMOTIONS
from serlib.synth.domains import DOMAINS
from serlib.synth.room import Recording
from serlib.synth.speakers import Speaker, draw_speaker

LAYOUTS = ("iemocap", "ravdess")

LAYOUT_CODES = {"iemocap": 1, "ravdess": 2}
"""Mixed into every random seed so that the two layouts never share random streams."""

# Stream offsets: clip i uses [seed, layout, i]; speakers, setups and scripts live far above.
SPEAKER_STREAM = 1_000_000
SETUP_STREAM = 2_000_000
SCRIPT_STREAM = 3_000_000
PLAN_STREAM = 4_000_000
RATER_STREAM = 5_000_000

IEMOCAP_COUNTS: dict[str, dict[str, int]] = {
    "tiny": {"neu": 8, "hap": 4, "exc": 4, "ang": 6, "sad": 6, "fru": 5,
             "sur": 1, "fea": 1, "dis": 1, "oth": 1, "xxx": 3},
    "workshop": {"neu": 309, "hap": 108, "exc": 188, "ang": 199, "sad": 196, "fru": 334,
                 "sur": 19, "fea": 7, "dis": 2, "oth": 2, "xxx": 45},
    "full": {"neu": 1708, "hap": 595, "exc": 1041, "ang": 1103, "sad": 1084, "fru": 1849,
             "sur": 107, "fea": 40, "dis": 2, "oth": 3, "xxx": 250},
}  # fmt: skip
"""Utterances per label. ``full`` has IEMOCAP's real counts (5531 in the usual 4-class set: neu, hap
+ exc, ang, sad) except "xxx" (no rater agreement), cut from 2507 to 250; ``workshop`` keeps the
proportions at 1000 4-class utterances."""

IEMOCAP_DIALOGS: dict[str, tuple[str, ...]] = {
    "tiny": ("impro01", "script01_1"),
    "workshop": ("impro01", "impro02", "impro03", "script01_1", "script02_1", "script03_1"),
    "full": tuple(f"impro{i:02d}" for i in range(1, 9))
    + (
        "script01_1",
        "script01_2",
        "script01_3",
        "script02_1",
        "script02_2",
        "script03_1",
        "script03_2",
    ),
}
"""Dialogs per session; each is recorded twice, once led by each actor (``Ses01F_`` and ``Ses01M_``)."""

RAVDESS_ACTORS = {"tiny": 4, "workshop": 12, "full": 24}
"""Actors per profile. ``tiny`` gives each actor one statement/repetition pair (15 files each), so that
the four actors together still cover both statements and both repetitions."""

IEMOCAP_SECONDS = (3.4, 0.55, 0.8, 15.0)
"""Utterance length: log-normal median (s), log spread, and bounds; real IEMOCAP turns have a median
of about 3.5 s and a long tail."""


@dataclass(frozen=True)
class ClipSpec:
    """One planned clip: who says what, with which emotion, written where."""

    index: int
    """Position in the plan; with the seed it fixes every random choice of the clip."""
    path: str
    """Relative to the corpus folder, with forward slashes."""
    speaker: str
    gender: str
    setup: str
    """The recording setup it shares with other clips: an IEMOCAP session, a RAVDESS actor."""
    emotion: str
    """The layout's own label ("ang", "angry", ...)."""
    intensity: str = ""
    """RAVDESS "normal" or "strong"; empty for IEMOCAP."""
    statement: int = 0
    repetition: int = 0
    dialog: str = ""
    utterance: str = ""
    script_line: int = -1
    """For scripted IEMOCAP dialogs, the line of the script (same text in every session)."""
    seconds: float = 0.0
    """Planned speech length for IEMOCAP turns (the syllable count is fitted to it)."""
    gap_s: float = 0.0
    """Silence in the dialog before this turn (IEMOCAP), for the EmoEvaluation times."""


def check_layout(layout: str) -> str:
    """Return ``layout`` if serlib can synthesise it, else raise a one-line ValueError."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return layout


def stream(seed: int, layout: str, *keys: int) -> np.random.Generator:
    """The random generator for one named purpose (a clip, a speaker, a setup) of one corpus."""
    return np.random.default_rng([int(seed), LAYOUT_CODES[layout], *keys])


# --- speakers and recording setups --------------------------------------------------------------


def speaker_ids(layout: str) -> list[tuple[str, str]]:
    """Every speaker of the full layout as (speaker id, gender), in a fixed order."""
    if check_layout(layout) == "iemocap":
        return [(f"Ses{s:02d}{g}", g) for s in range(1, 6) for g in "FM"]
    return [(f"Actor_{a:02d}", "M" if a % 2 else "F") for a in range(1, 25)]


def setup_ids(layout: str) -> list[str]:
    """Every recording setup of the full layout: IEMOCAP sessions or RAVDESS actors."""
    if check_layout(layout) == "iemocap":
        return [f"Ses{s:02d}" for s in range(1, 6)]
    return [f"Actor_{a:02d}" for a in range(1, 25)]


def make_speakers(layout: str, seed: int) -> dict[str, Speaker]:
    """The layout's speakers; each depends on the seed and its own id only, not on the profile."""
    population = DOMAINS[layout].population
    return {
        speaker_id: draw_speaker(
            speaker_id, gender, population, stream(seed, layout, SPEAKER_STREAM + number)
        )
        for number, (speaker_id, gender) in enumerate(speaker_ids(layout))
    }


def make_recordings(layout: str, seed: int) -> dict[str, Recording]:
    """The recording setup of every session (IEMOCAP) or actor (RAVDESS)."""
    domain = DOMAINS[layout]
    return {
        setup: domain.draw_recording(stream(seed, layout, SETUP_STREAM + number))
        for number, setup in enumerate(setup_ids(layout))
    }


# --- plans ----------------------------------------------------------------------------------


def plan(layout: str, profile: str, seed: int) -> list[ClipSpec]:
    """Every clip of a corpus, in the order they are generated and listed."""
    if check_layout(layout) == "iemocap":
        return iemocap_plan(profile, seed)
    return ravdess_plan(profile, seed)


def _split_evenly(count: int, parts: int, rng: np.random.Generator) -> list[int]:
    """``count`` items over ``parts`` bins as evenly as possible; the remainder goes to random bins."""
    sizes = [count // parts] * parts
    for extra in rng.choice(parts, size=count % parts, replace=False):
        sizes[int(extra)] += 1
    return sizes


def _assign_to_dialogs(
    labels: list[str], dialogs: list[str], rng: np.random.Generator
) -> dict[str, list[str]]:
    """Share a session's labels out over its dialogs, each dialog leaning to one "theme" emotion.

    Real IEMOCAP dialogs are emotionally coherent (an improvised break-up is mostly sad and
    frustrated), so each dialog draws its utterances with a preference for its theme.
    """
    themes = {d: str(rng.choice(["neu", "hap", "exc", "ang", "sad", "fru"])) for d in dialogs}
    capacity = dict(zip(dialogs, _split_evenly(len(labels), len(dialogs), rng), strict=True))
    assigned: dict[str, list[str]] = {d: [] for d in dialogs}
    for label in (labels[i] for i in rng.permutation(len(labels))):
        open_dialogs = [d for d in dialogs if len(assigned[d]) < capacity[d]]
        weights = np.array([1.0 + 3.0 * (themes[d] == label) for d in open_dialogs])
        choice = open_dialogs[int(rng.choice(len(open_dialogs), p=weights / weights.sum()))]
        assigned[choice].append(label)
    return assigned


def iemocap_plan(profile: str, seed: int) -> list[ClipSpec]:
    """The IEMOCAP-like plan: sessions -> dialogs (each led by F and by M) -> alternating turns."""
    if profile not in IEMOCAP_COUNTS:
        raise UserError(f"unknown profile {profile!r}; choose one of {', '.join(IEMOCAP_COUNTS)}")
    rng = stream(seed, "iemocap", PLAN_STREAM)
    per_session: list[list[str]] = [[] for _ in range(5)]
    for label, count in IEMOCAP_COUNTS[profile].items():
        for session, n in enumerate(_split_evenly(count, 5, rng)):
            per_session[session] += [label] * n
    median, spread, shortest, longest = IEMOCAP_SECONDS
    specs: list[ClipSpec] = []
    for session in range(1, 6):
        dialogs = [
            f"Ses{session:02d}{lead}_{name}" for name in IEMOCAP_DIALOGS[profile] for lead in "FM"
        ]
        assigned = _assign_to_dialogs(per_session[session - 1], dialogs, rng)
        for dialog in dialogs:
            speaker = "F" if rng.random() < 0.5 else "M"
            turns = {"F": 0, "M": 0}
            scripted = "_script" in dialog
            for line, label in enumerate(assigned[dialog]):
                if line > 0 and rng.random() < 0.75:
                    speaker = "M" if speaker == "F" else "F"
                utterance = f"{dialog}_{speaker}{turns[speaker]:03d}"
                turns[speaker] += 1
                seconds = float(np.clip(median * np.exp(rng.normal(0, spread)), shortest, longest))
                specs.append(
                    ClipSpec(
                        index=len(specs),
                        path=f"IEMOCAP_full_release/Session{session}/sentences/wav/{dialog}/{utterance}.wav",
                        speaker=f"Ses{session:02d}{speaker}",
                        gender=speaker,
                        setup=f"Ses{session:02d}",
                        emotion=label,
                        dialog=dialog,
                        utterance=utterance,
                        script_line=line if scripted else -1,
                        seconds=seconds,
                        gap_s=float(rng.uniform(0.2, 2.0)),
                    )
                )
    return specs


def ravdess_name(emotion: str, intensity: str, statement: int, repetition: int, actor: int) -> str:
    """RAVDESS's file name: ``03-01-EE-II-SS-RR-AA.wav`` (audio-only speech)."""
    code = RAVDESS_EMOTIONS.index(emotion) + 1
    level = 1 if intensity == "normal" else 2
    return f"03-01-{code:02d}-{level:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"


def ravdess_plan(profile: str, seed: int) -> list[ClipSpec]:
    """The RAVDESS-like plan: every actor x emotion x intensity x statement x repetition."""
    if profile not in RAVDESS_ACTORS:
        raise UserError(f"unknown profile {profile!r}; choose one of {', '.join(RAVDESS_ACTORS)}")
    specs: list[ClipSpec] = []
    for actor in range(1, RAVDESS_ACTORS[profile] + 1):
        if profile == "tiny":
            pairs = [(1 + (actor - 1) % 2, 1 + ((actor - 1) // 2) % 2)]
        else:
            pairs = [(s, r) for s in (1, 2) for r in (1, 2)]
        for emotion in RAVDESS_EMOTIONS:
            for intensity in ("normal",) if emotion == "neutral" else ("normal", "strong"):
                for statement, repetition in pairs:
                    name = ravdess_name(emotion, intensity, statement, repetition, actor)
                    specs.append(
                        ClipSpec(
                            index=len(specs),
                            path=f"Actor_{actor:02d}/{name}",
                            speaker=f"Actor_{actor:02d}",
                            gender="M" if actor % 2 else "F",
                            setup=f"Actor_{actor:02d}",
                            emotion=emotion,
                            intensity=intensity,
                            statement=statement,
                            repetition=repetition,
                        )
                    )
    return specs


# --- IEMOCAP's EmoEvaluation files ----------------------------------------------------------------

IEMOCAP_CATEGORY_NAMES = {
    "neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger", "sad": "Sadness",
    "fru": "Frustration", "sur": "Surprise", "fea": "Fear", "dis": "Disgust", "oth": "Other",
}  # fmt: skip

# Mean (valence, activation, dominance) on IEMOCAP's 1-5 scales, per label.
_DIMENSIONS = {
    "neu": (3.0, 2.5, 2.7), "hap": (4.0, 3.0, 3.0), "exc": (4.0, 3.8, 3.5), "ang": (1.9, 3.8, 4.0),
    "sad": (2.0, 2.3, 2.3), "fru": (2.0, 3.2, 3.3), "sur": (3.4, 3.6, 3.0), "fea": (2.0, 3.5, 2.2),
    "dis": (1.8, 3.0, 3.3), "oth": (2.8, 3.0, 3.0), "xxx": (2.7, 2.9, 3.0),
}  # fmt: skip

EMO_EVALUATION_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"


def rater_block(label: str, gender: str, rng: np.random.Generator) -> tuple[list[float], list[str]]:
    """Mean (val, act, dom) and the rater lines of one utterance, in IEMOCAP's format.

    Three evaluators (C-E*) give categorical labels, at least two agreeing on ``label`` unless it is
    "xxx" (no majority), and rate valence/activation/dominance (A-E*); the speaker's own self-rating
    (C-F1 / C-M1, A-F1 / A-M1) is added as in the sessions that have one.
    """
    names = list(IEMOCAP_CATEGORY_NAMES.values())
    evaluators = sorted(rng.choice(np.arange(1, 7), size=3, replace=False).tolist())
    if label == "xxx":
        common = ["Neutral", "Frustration", "Anger", "Sadness", "Excited", "Happiness"]
        picks = rng.choice(common, size=3, replace=False).tolist()
    else:
        odd = IEMOCAP_CATEGORY_NAMES[label] if rng.random() < 0.6 else str(rng.choice(names))
        picks = [IEMOCAP_CATEGORY_NAMES[label]] * 2 + [odd]
        picks = [picks[i] for i in rng.permutation(3)]
    lines = [f"C-E{e}:\t{p};\t()" for e, p in zip(evaluators, picks, strict=True)]
    lines.append(f"C-{gender}1:\t{picks[0]};\t()")
    means = np.asarray(_DIMENSIONS[label])
    ratings = np.clip(np.rint(rng.normal(means, 0.6, size=(3, 3))), 1, 5).astype(int)
    for e, (val, act, dom) in zip(evaluators, ratings, strict=True):
        lines.append(f"A-E{e}:\tval {val}; act {act}; dom  {dom};\t()")
    own = np.clip(np.rint(rng.normal(means, 0.6)), 1, 5).astype(int)
    lines.append(f"A-{gender}1:\tval {own[0]}; act {own[1]}; dom  {own[2]};\t()")
    return ratings.mean(axis=0).round(4).tolist(), lines


def emo_evaluation_text(turns: list[tuple[ClipSpec, float]], seed: int) -> str:
    """One dialog's EmoEvaluation file from its turns (in order) and their audio lengths (s)."""
    blocks = [EMO_EVALUATION_HEADER, ""]
    clock = 0.0
    for spec, duration in turns:
        start = clock + spec.gap_s
        end = start + duration
        clock = end
        means, lines = rater_block(
            spec.emotion, spec.gender, stream(seed, "iemocap", RATER_STREAM + spec.index)
        )
        vad = ", ".join(f"{m:.4f}" for m in means)
        blocks.append(f"[{start:.4f} - {end:.4f}]\t{spec.utterance}\t{spec.emotion}\t[{vad}]")
        blocks += lines
        blocks.append("")
    return "\n".join(blocks) + "\n"


def emo_evaluation_path(dialog: str) -> str:
    """Where a dialog's EmoEvaluation file goes, relative to the corpus folder."""
    session = int(dialog[3:5])
    return f"IEMOCAP_full_release/Session{session}/dialog/EmoEvaluation/{dialog}.txt"
