"""Numbers shown beside a limit they are compared with: rounded so they never contradict it.

No Qt here. A probability of 0.155 beside a cut-off of 0.158, both printed with two decimals,
reads "0.16 ... below the cut-off (0.16)"; a guard distance of 21.4 beside a limit of 20.6,
both printed without decimals, reads "distance 21, limit 21" on an image that was flagged.
:func:`decimals_apart` finds the fewest decimals that keep every comparison as it really is,
and :func:`pair_text` prints a value and its limit with the same rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MAX_DECIMALS = 6
"""Never more decimals than this: values closer than that to a limit are shown as equal."""


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def decimals_apart(value: float, limits: Iterable[float], decimals: int = 2,
                   max_decimals: int = MAX_DECIMALS) -> int:
    """The fewest decimals (at least ``decimals``) at which ``value`` and each of ``limits``,
    both rounded, compare as they really do (above, equal or below).

    Rounding is monotonic, so once two rounded numbers differ they differ the right way round;
    the search only has to add decimals until they differ. ``max_decimals`` caps it.
    """
    value = float(value)
    refs = [float(r) for r in limits if math.isfinite(float(r))]
    if not math.isfinite(value):
        return decimals
    for d in range(decimals, max_decimals + 1):
        if all(_sign(round(value, d) - round(r, d)) == _sign(value - r) for r in refs):
            return d
    return max_decimals


def fixed(value: float, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals (``-0.00`` printed as ``0.00``)."""
    text = f"{float(value):.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def shortest(value: float, least: int = 2, most: int = 4) -> str:
    """``value`` with the fewest decimals (``least`` to ``most``) that lose nothing at ``most``
    decimals: ``shortest(0.158) == "0.158"``, ``shortest(0.5) == "0.50"``."""
    target = round(float(value), most)
    d = next((d for d in range(least, most + 1) if round(float(value), d) == target), most)
    return fixed(value, d)


def pair_text(value: float, limit: float, decimals: int = 2) -> tuple[str, str]:
    """``value`` and ``limit`` as text with one rounding that keeps their order visible.

    E.g. ``pair_text(21.4, 20.6, 0) == ("21.4", "20.6")`` and ``pair_text(0.35, 0.158)
    == ("0.35", "0.16")``.
    """
    d = decimals_apart(value, (limit,), decimals)
    return fixed(value, d), fixed(limit, d)


__all__ = ["MAX_DECIMALS", "decimals_apart", "fixed", "pair_text", "shortest"]
