"""The model's operating point: the suspicious cut-off, the bands, the sensitivity measured there.

No Qt here. The model card's ``operating_point`` section holds the suspicious threshold (the
cut-off from which a result is flagged), the likelihood bands, and the sensitivity ("recall")
and specificity measured at that cut-off on the internal validation images
(``at_threshold_internal``) and on images from a hospital never used for training
(``at_threshold_external``). :class:`OperatingPoint` reads them; what a result means at them,
in words, numbers and colour, is :mod:`rcdnet_desktop.core.result`'s.

A card without an operating point gives the default bands and threshold
(:mod:`rcdnet_desktop.core.bands`) and no words about sensitivity (nothing was measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcdnet_desktop.core.bands import (
    DEFAULT_BANDS,
    LikelihoodBand,
    band_for,
    card_bands,
    suspicious_threshold,
)


def _recall(op: dict[str, Any], key: str) -> float | None:
    """``op[key]["recall"]["value"]`` (or a bare number), when present and in [0, 1]."""
    section = op.get(key)
    if not isinstance(section, dict):
        return None
    value = section.get("recall")
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def _percent(share: float) -> str:
    return f"{round(100 * share):.0f}%"


@dataclass(frozen=True)
class OperatingPoint:
    """The suspicious cut-off, the bands, and the sensitivity measured at the cut-off.

    Attributes
    ----------
    threshold : float
        Probability of malignancy from which a result is suspicious.
    bands : tuple of LikelihoodBand
        The likelihood bands.
    sensitivity_internal, sensitivity_external : float or None
        Share of cancers found at the cut-off in internal validation, and at a hospital whose
        images were never used for training; None when the card does not say.
    """

    threshold: float
    bands: tuple[LikelihoodBand, ...] = DEFAULT_BANDS
    sensitivity_internal: float | None = None
    sensitivity_external: float | None = None

    @classmethod
    def from_card(cls, card: Any = None) -> OperatingPoint:
        """Read the card's ``operating_point`` (any object without one gives the defaults)."""
        op = getattr(card, "operating_point", None) if card is not None else None
        op = op if isinstance(op, dict) else {}
        return cls(threshold=suspicious_threshold(card), bands=card_bands(card),
                   sensitivity_internal=_recall(op, "at_threshold_internal"),
                   sensitivity_external=_recall(op, "at_threshold_external"))

    def band(self, p: float) -> LikelihoodBand:
        """The band holding probability of malignancy ``p``."""
        return band_for(p, bands=self.bands)

    def sensitivity_words(self) -> str:
        """What the cut-off found where the card measured it, e.g. "90% of cancers in internal
        validation and 76% at another hospital"; "" when the card measured nothing."""
        found = []
        if self.sensitivity_internal is not None:
            found.append(f"{_percent(self.sensitivity_internal)} of cancers in internal "
                         "validation")
        if self.sensitivity_external is not None:
            found.append(f"{_percent(self.sensitivity_external)} at another hospital")
        return " and ".join(found)


__all__ = ["OperatingPoint"]
