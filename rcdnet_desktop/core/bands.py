"""Likelihood bands: the calibrated probability of malignancy put into words.

A band is a named range of the probability of malignancy, e.g. "low (2-10%)". The default bands
are aligned with the likelihood-of-malignancy ranges that BI-RADS (ACR, 5th edition) gives its
ultrasound assessment categories 3 to 5 (<= 2%, > 2-10%, > 10-50%, > 50-95%, > 95%), so a reader
can set the model's number beside the scale they already use. A band is NOT a BI-RADS
assessment: that is the clinician's, made from the whole examination, and the model sees one
image.

The model card's ``operating_point`` section may replace the bands and set the probability from
which a result is flagged as suspicious; cards without one use :data:`DEFAULT_BANDS` and
:data:`DEFAULT_SUSPICIOUS_THRESHOLD`. Everything that turns a probability into a band goes
through :func:`band_for`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_SUSPICIOUS_THRESHOLD = 0.5
"""Probability of malignancy from which a result is suspicious when the card sets none."""
DEFAULT_MODE = "auto"
"""How an automatic lesion box is used when the card sets nothing (see :data:`MODES`)."""
MODES = ("auto", "fusion")
"""``auto``: classify the automatic lesion box; ``fusion``: average the logits of the automatic
box's view and the whole image's view."""


@dataclass(frozen=True)
class LikelihoodBand:
    """A named range of the probability of malignancy: ``lower < p <= upper``.

    The first band also holds ``p == lower`` (0). Bands are aligned with BI-RADS
    likelihood-of-malignancy ranges (``birads_range`` names the category whose range it
    matches) but a band is not a BI-RADS assessment.

    Attributes
    ----------
    name : str
        E.g. ``"low"``.
    lower, upper : float
        The range, as probabilities in [0, 1].
    birads_range : str
        The BI-RADS category whose likelihood-of-malignancy range the band matches, e.g.
        ``"4A"``; empty when none.
    """

    name: str
    lower: float
    upper: float
    birads_range: str = ""

    @property
    def label(self) -> str:
        """The name with its range in percent, e.g. ``"low (2-10%)"``."""
        return f"{self.name} ({_percent(self.lower)}-{_percent(self.upper)}%)"

    def contains(self, p: float) -> bool:
        """Whether probability ``p`` falls in this band (``lower < p <= upper``; 0 in the first)."""
        return (self.lower < p or (self.lower == 0.0 and p == 0.0)) and p <= self.upper


def _percent(p: float) -> str:
    return f"{round(100 * p, 4):g}"


def _band_specs() -> list[dict[str, Any]]:
    return [
        {"name": "very low", "upper": 0.02, "birads_range": "3"},
        {"name": "low", "upper": 0.10, "birads_range": "4A"},
        {"name": "moderate", "upper": 0.50, "birads_range": "4B"},
        {"name": "high", "upper": 0.95, "birads_range": "4C"},
        {"name": "very high", "upper": 1.0, "birads_range": "5"},
    ]


def parse_bands(spec: Any) -> tuple[LikelihoodBand, ...]:
    """Build bands from the card's list of ``{"name", "upper", "birads_range"}`` objects.

    Raises
    ------
    ValueError
        Not a non-empty list of such objects, names not unique, uppers not strictly increasing
        within (0, 1], or a last upper other than 1.0.
    """
    if not isinstance(spec, list) or not spec:
        raise ValueError("bands must be a non-empty list")
    bands: list[LikelihoodBand] = []
    lower = 0.0
    for i, item in enumerate(spec):
        if not isinstance(item, dict):
            raise ValueError(f"band {i} must be an object")
        extra = set(item) - {"name", "upper", "birads_range"}
        if extra:
            raise ValueError(f"band {i} has unknown keys {sorted(extra)}")
        name, upper, birads = item.get("name"), item.get("upper"), item.get("birads_range", "")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"band {i} needs a name")
        if isinstance(upper, bool) or not isinstance(upper, int | float) \
                or not lower < upper <= 1.0:
            raise ValueError(f"band {name!r}: upper must be a number above the previous band's "
                             f"({lower:g}) and at most 1, got {upper!r}")
        if not isinstance(birads, str):
            raise ValueError(f"band {name!r}: birads_range must be a string")
        bands.append(LikelihoodBand(name, lower, float(upper), birads))
        lower = float(upper)
    if bands[-1].upper != 1.0:
        raise ValueError(f"the last band's upper must be 1.0, got {bands[-1].upper:g}")
    names = [b.name for b in bands]
    if len(set(names)) != len(names):
        raise ValueError(f"band names must be unique, got {names}")
    return tuple(bands)


DEFAULT_BANDS: tuple[LikelihoodBand, ...] = parse_bands(_band_specs())
"""very low (0-2%, BI-RADS 3 range), low (2-10%, 4A), moderate (10-50%, 4B), high (50-95%, 4C),
very high (95-100%, 5)."""


def default_band_specs() -> list[dict[str, Any]]:
    """:data:`DEFAULT_BANDS` as the model card writes them (a fresh list)."""
    return _band_specs()


def operating_point_section(card: Any) -> dict[str, Any]:
    """The card's ``operating_point`` section ({} when it has none): ``card`` is a model card
    object or the card as a dict (its JSON)."""
    if isinstance(card, Mapping):
        op = card.get("operating_point")
    else:
        op = getattr(card, "operating_point", None) if card is not None else None
    return op if isinstance(op, dict) else {}


def card_bands(card: Any = None) -> tuple[LikelihoodBand, ...]:
    """The card's bands (``operating_point.bands``), else :data:`DEFAULT_BANDS`."""
    spec = operating_point_section(card).get("bands")
    return DEFAULT_BANDS if spec is None else parse_bands(spec)


def suspicious_threshold(card: Any = None) -> float:
    """The card's ``operating_point.suspicious_threshold``, else 0.5."""
    t = operating_point_section(card).get("suspicious_threshold")
    return DEFAULT_SUSPICIOUS_THRESHOLD if t is None else float(t)


def default_mode(card: Any = None) -> str:
    """The card's ``operating_point.default_mode`` (``"auto"`` or ``"fusion"``), else auto."""
    return str(operating_point_section(card).get("default_mode", DEFAULT_MODE))


def band_for(p: float, card: Any = None,
             bands: Sequence[LikelihoodBand] | None = None) -> LikelihoodBand:
    """The band holding probability of malignancy ``p``.

    Parameters
    ----------
    p : float
        Calibrated probability of malignancy; values a rounding error outside [0, 1] are
        clipped.
    card : ModelCard, optional
        Its ``operating_point.bands`` are used when it has them, else :data:`DEFAULT_BANDS`.
    bands : sequence of LikelihoodBand, optional
        Explicit bands (overrides ``card``).

    Raises
    ------
    ValueError
        ``p`` is not a finite number.
    """
    p = float(p)
    if not math.isfinite(p):
        raise ValueError(f"probability must be finite, got {p}")
    p = min(max(p, 0.0), 1.0)
    use = tuple(bands) if bands is not None else card_bands(card)
    for band in use:
        if p <= band.upper:
            return band
    return use[-1]
