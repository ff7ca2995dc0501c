"""How findings put numbers into words: percentages, points, tolerances and the direction of a change.

A finding must read true whatever the run showed, so every comparison goes through ``direction``:
a change smaller than the stated tolerance is "no change", never a small gain or loss. The
tolerances are part of the sentences ("within 1 UA point"), so a reader knows what "the same" means.
"""

from __future__ import annotations

from collections.abc import Sequence

UA_TOLERANCE = 0.01
"""Two UA scores closer than this (1 point) are reported as the same: below a run's noise."""

RECALL_TOLERANCE = 0.05
"""Per-class recall moves by 5 points before a finding names the class (small classes are noisy)."""

PAD_TOLERANCE = 0.05
"""Proxy A-distances (0 to 2) closer than this are reported as unchanged."""

PAD_SATURATED = 1.95
"""A proxy A-distance at or above this is saturated: a linear classifier separates the domains."""

SET_WORDS = {
    "source_val": "source validation",
    "source_test": "source test",
    "target_test": "target test",
    "target_all": "all-target",
}
"""How sentences name each evaluation set of metrics.json."""


def percent(fraction: float, decimals: int = 1) -> str:
    """``0.25`` -> ``"25.0 %"``: scores in sentences, as the tables print them."""
    return f"{100 * fraction:.{decimals}f} %"


def share(fraction: float) -> str:
    """``0.333`` -> ``"33 %"``: shares of clips, where a decimal adds nothing."""
    return f"{100 * fraction:.0f} %"


def points(difference: float) -> str:
    """``0.031`` -> ``"3.1 points"``: the size of a change in percentage points, without its sign."""
    return f"{100 * abs(difference):.1f} points"


def signed_points(difference: float) -> str:
    """``-0.1`` -> ``"-10.0 points"``: a per-class change with its direction."""
    return f"{100 * difference:+.1f} points"


def direction(before: float, after: float, tolerance: float) -> str:
    """``"up"``, ``"down"`` or ``"same"``: the change from ``before`` to ``after``, with ``tolerance``."""
    if abs(after - before) < tolerance:
        return "same"
    return "up" if after > before else "down"


def tolerance_words(tolerance: float = UA_TOLERANCE) -> str:
    """``"within 1 point"``: what "unchanged" means in a sentence."""
    value = 100 * tolerance
    unit = "point" if value == 1 else "points"
    return f"within {value:g} {unit}"


def set_words(set_name: str) -> str:
    """``"target_test"`` -> ``"target test"``."""
    return SET_WORDS.get(set_name, set_name.replace("_", " "))


def join_words(items: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def emotion(name: str) -> str:
    """An emotion label as sentences mark it: ``*angry*``."""
    return f"*{name}*"
