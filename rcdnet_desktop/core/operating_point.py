"""The model's operating point: the suspicious cut-off, the bands, the sensitivity measured there.

No Qt here. The model card's ``operating_point`` section holds the suspicious threshold (the
cut-off from which a result is flagged), the likelihood bands, and the sensitivity ("recall")
and specificity measured at that cut-off on the internal validation images
(``at_threshold_internal``) and on images from a hospital never used for training
(``at_threshold_external``). :class:`OperatingPoint` reads them; what a result means at them,
in words, numbers and colour, is :mod:`rcdnet_desktop.core.result`'s.

A site profile (:mod:`rcdnet_desktop.core.site_profile`) replaces the card's cut-off with its
own, and the sensitivity measured there with the site's (:meth:`OperatingPoint.with_profile`).

A card without an operating point gives the default bands and threshold
(:mod:`rcdnet_desktop.core.bands`) and no words about sensitivity (nothing was measured).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rcdnet_desktop.core.bands import (
    DEFAULT_BANDS,
    LikelihoodBand,
    band_for,
    card_bands,
    operating_point_section,
    suspicious_threshold,
)

if TYPE_CHECKING:
    from rcdnet_desktop.core.site_profile import SiteProfile


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
    site : SiteProfile or None
        The site profile in use, whose cut-off ``threshold`` is when it gives one.
    """

    threshold: float
    bands: tuple[LikelihoodBand, ...] = DEFAULT_BANDS
    sensitivity_internal: float | None = None
    sensitivity_external: float | None = None
    site: SiteProfile | None = None

    @classmethod
    def from_card(cls, card: Any = None) -> OperatingPoint:
        """Read the card's ``operating_point``, from a card object or the card as a dict (one
        without it gives the defaults)."""
        op = operating_point_section(card)
        return cls(threshold=suspicious_threshold(card), bands=card_bands(card),
                   sensitivity_internal=_recall(op, "at_threshold_internal"),
                   sensitivity_external=_recall(op, "at_threshold_external"))

    def with_profile(self, profile: SiteProfile | None) -> OperatingPoint:
        """This operating point under a site profile: its cut-off, when it gives one, and the
        profile itself (None: unchanged)."""
        if profile is None:
            return self
        cut = profile.cutoff if profile.cutoff is not None else self.threshold
        return replace(self, threshold=float(cut), site=profile)

    @property
    def site_cutoff(self) -> bool:
        """The cut-off is a site profile's, measured there."""
        return self.site is not None and self.site.cutoff is not None

    def band(self, p: float) -> LikelihoodBand:
        """The band holding probability of malignancy ``p``."""
        return band_for(p, bands=self.bands)

    def sensitivity_words(self) -> str:
        """What the cut-off found where the card measured it, e.g. "90% of cancers in internal
        validation and 76% at another hospital"; "" when the card measured nothing. Under a
        site profile's cut-off, what the site measured: e.g. "90% of cancers on the 212 cases
        of Hospital X"."""
        if self.site_cutoff:
            assert self.site is not None
            if self.site.sensitivity is None:
                return ""
            return (f"{_percent(self.site.sensitivity)} of cancers on the {self.site.cases} "
                    f"cases of {self.site.site}")
        found = []
        if self.sensitivity_internal is not None:
            found.append(f"{_percent(self.sensitivity_internal)} of cancers in internal "
                         "validation")
        if self.sensitivity_external is not None:
            found.append(f"{_percent(self.sensitivity_external)} at another hospital")
        return " and ".join(found)


__all__ = ["OperatingPoint"]
