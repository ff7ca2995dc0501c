"""Where serlib keeps its runtime data, and which profile it runs in.

Everything serlib writes at run time (synthetic corpora, feature caches, run folders) lives under one
folder, ``serlib_home()``, so that a course checkout stays clean and a user can move the heavy data
elsewhere with one environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from serlib.errors import UserError

PROFILES = ("tiny", "workshop", "full")
"""tiny: tests, seconds; workshop: a 2-core laptop, minutes; full: a GPU and the study's settings."""

TRIM_DB = 40.0
"""``serlib train --trim-silence`` without a value: frames this many dB below a clip's loudest are
silence (``serlib.features.trim_silence``)."""

DATASET_ENV = {
    "iemocap": "SERLIB_IEMOCAP_DIR",
    "ravdess": "SERLIB_RAVDESS_DIR",
    "emodb": "SERLIB_EMODB_DIR",
    "cremad": "SERLIB_CREMAD_DIR",
    "tess": "SERLIB_TESS_DIR",
    "savee": "SERLIB_SAVEE_DIR",
}
"""The environment variable that points serlib at each real corpus."""


def serlib_home() -> Path:
    """The runtime-data folder: ``$SERLIB_HOME`` or ``./data`` (git-ignored)."""
    return Path(os.environ.get("SERLIB_HOME", "data")).expanduser()


def check_profile(name: str) -> str:
    """Return ``name`` if it is a known profile, else raise a one-line UserError."""
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def profile_from_env(default: str = "workshop") -> str:
    """The profile named by ``$SERLIB_PROFILE``, or ``default``."""
    return check_profile(os.environ.get("SERLIB_PROFILE", default))


def dataset_root(corpus: str) -> Path | None:
    """The real corpus folder from its environment variable, or None (use the synthetic corpus)."""
    value = os.environ.get(DATASET_ENV[corpus], "").strip()
    return Path(value).expanduser() if value else None
