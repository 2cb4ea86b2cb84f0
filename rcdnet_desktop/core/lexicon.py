"""What the model sees in the lesion box, in the words of the ACR BI-RADS ultrasound lexicon.

Small heads (one multinomial logistic regression per descriptor) read the classifier's own
pooled features (``guard_features``, the backbone's last block mean-pooled, after a signed
``log1p`` and standardisation) of the padded lesion box that was classified. They were fitted
on one site's radiologists' descriptors (the training package's ``rcdnet-train lexicon``) and
are suggestions beside the heat maps, not a BI-RADS assessment.

A descriptor is shown only when it beat its majority-class baseline on held-out patients: the
model card's ``lexicon`` section records, per descriptor, the measured agreement and ``shown``
(the rule is in the section's ``rule``). Without a lesion box there is nothing to describe, and
an image an intended-use check flagged (a heart, a Doppler frame) is not a breast lesion to
describe: in both cases the application says why instead of guessing (:func:`suggest`, the one
rule, applied where predictions are made, so the screen and every export agree).

The weights live in a small ``.npz`` file of the bundle (``mean``, ``scale``, then ``w<i>``,
``b<i>`` for the section's ``descriptors[i]``), named in the card's ``lexicon`` section with
its sha256, verified before it is read, like the input guard's. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rcdnet_desktop.core import npzfile
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.guard import GUARD_FEATURES, transform
from rcdnet_desktop.core.types import Descriptor, Prediction

LEXICON_FILE = "lexicon.npz"
LEXICON_KEYS = ("file", "sha256", "features", "view", "transform", "dim", "descriptors", "rule",
                "fitted_on", "metrics", "notes", "weights_sha256")
LEXICON_VIEW = "padded lesion box"
SECTION_TITLE = "What the model sees (lexicon)"
MARGIN_SUBTYPE = "margin "
NEEDS_BOX = "descriptors need a lesion box: draw one around the lesion"
OUTSIDE_USE = "no descriptors: the image is outside intended use"

DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "shape": ("oval or round", "irregular"),
    "margin": ("circumscribed", "not circumscribed"),
    "margin indistinct": ("no", "yes"),
    "margin angular": ("no", "yes"),
    "margin microlobulated": ("no", "yes"),
    "margin spiculated": ("no", "yes"),
    "echo pattern": ("hypoechoic", "heterogeneous",
                     "other (anechoic, isoechoic, hyperechoic or complex)"),
    "posterior features": ("none", "shadowing", "enhancement"),
    "calcifications": ("none", "present"),
}
"""Every descriptor the heads may learn, with its classes in the lexicon's words (after the
merges the training package documents), in the order they are shown."""


@dataclass(frozen=True)
class Head:
    """One descriptor's linear softmax head on the standardised features."""

    name: str
    classes: tuple[str, ...]
    weight: np.ndarray  # (K, D)
    bias: np.ndarray  # (K,)


@dataclass(frozen=True)
class Lexicon:
    """The standardisation and the heads; ``shown`` names the descriptors the app shows."""

    mean: np.ndarray
    scale: np.ndarray
    heads: tuple[Head, ...]
    shown: frozenset[str]

    def probabilities(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Class probabilities ``{name: (N, K)}`` of every head for pooled features ``(N, D)``."""
        z = (transform(np.atleast_2d(features)) - self.mean) / self.scale
        out = {}
        for h in self.heads:
            logits = z @ h.weight.T + h.bias
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out[h.name] = e / e.sum(axis=1, keepdims=True)
        return out

    def describe(self, features: np.ndarray) -> tuple[Descriptor, ...]:
        """The shown descriptors of one box's pooled features ``(D,)``: each head's most
        probable class and its probability, in :data:`DESCRIPTORS` order. The margin's
        subtypes are left out when the margin is called circumscribed."""
        probs = self.probabilities(np.asarray(features)[None])
        out: list[Descriptor] = []
        for h in sorted(self.heads, key=lambda h: list(DESCRIPTORS).index(h.name)):
            if h.name in self.shown and np.isfinite(probs[h.name]).all():
                k = int(np.argmax(probs[h.name][0]))
                out.append(Descriptor(h.name, h.classes[k], float(probs[h.name][0, k])))
        if any(d.name == "margin" and d.value == "circumscribed" for d in out):
            # the subtypes describe a margin that is not circumscribed
            out = [d for d in out if not d.name.startswith(MARGIN_SUBTYPE)]
        return tuple(out)


def suggest(lexicon: Lexicon | None, features: np.ndarray, *, has_box: bool,
            checks: Sequence[str] = ()) -> tuple[tuple[Descriptor, ...], str]:
    """What a prediction carries from the lexicon: its descriptors and, when there are none,
    why (``Prediction.descriptors`` and ``descriptor_note``).

    Parameters
    ----------
    lexicon : Lexicon or None
        The bundle's heads; None when it has none (then nothing, and no note).
    features : np.ndarray
        The pooled features ``(D,)`` of the padded lesion box classified.
    has_box : bool
        A lesion box (drawn or found) was classified; without one: :data:`NEEDS_BOX`.
    checks : sequence of str
        The prediction's intended-use flags; any: :data:`OUTSIDE_USE`.
    """
    if lexicon is None:
        return (), ""
    if checks:
        return (), OUTSIDE_USE
    if not has_box:
        return (), NEEDS_BOX
    return lexicon.describe(features), ""


def shown_descriptors(p: Prediction) -> tuple[Descriptor, ...]:
    """The descriptors to show for ``p``: none on an image outside intended use, whatever
    it carries."""
    return () if p.outside_intended_use else p.descriptors


def descriptor_note(p: Prediction) -> str:
    """Why ``p`` shows no descriptors ("" when it shows some, or the model has no lexicon)."""
    if shown_descriptors(p):
        return ""
    if p.outside_intended_use and (p.descriptors or p.descriptor_note):
        return OUTSIDE_USE
    return p.descriptor_note


SUGGESTIONS_NOTE = ("suggestions learned from one site's radiologists, shown only where they "
                    "beat chance on held-out patients; not a BI-RADS assessment")


def csv_text(descriptors: Sequence[Descriptor]) -> str:
    """``name=value`` pairs joined by ``;`` (the batch CSV's ``descriptors`` column)."""
    return ";".join(f"{d.name}={d.value}" for d in descriptors)


def descriptor_words(d: Descriptor) -> str:
    """One descriptor for a reader, e.g. ``"shape: irregular (89%)"``."""
    return f"{d.name}: {d.value} ({d.confidence:.0%})"


def lexicon_words(p: Prediction) -> str:
    """The prediction's descriptors in one line for the reports (``; ``-joined, then the
    suggestions note), the reason there are none, or "" when the model has no lexicon."""
    shown = shown_descriptors(p)
    if shown:
        return "; ".join(descriptor_words(d) for d in shown) + f" ({SUGGESTIONS_NOTE})"
    return descriptor_note(p)


def validate_section(section: Any, bad) -> None:
    """Check the card's ``lexicon`` section (empty when the bundle has no lexicon heads)."""
    if not npzfile.check_section(section, "lexicon", LEXICON_KEYS, bad,
                                 "the bundle has no lexicon heads"):
        return
    if section["features"] != GUARD_FEATURES or section["transform"] != "signed_log1p" \
            or section["view"] != LEXICON_VIEW:
        raise bad(f"lexicon.features must be {GUARD_FEATURES!r} of the {LEXICON_VIEW} with "
                  "transform 'signed_log1p'")
    items = section["descriptors"]
    if not isinstance(items, list) or not items:
        raise bad("lexicon.descriptors must be a non-empty list")
    seen = set()
    for d in items:
        if not isinstance(d, dict) or d.get("name") not in DESCRIPTORS or d["name"] in seen:
            raise bad(f"lexicon.descriptors: each must name a different descriptor of "
                      f"{list(DESCRIPTORS)}, got {d!r}")
        seen.add(d["name"])
        if list(d.get("classes", ())) != list(DESCRIPTORS[d["name"]]):
            raise bad(f"lexicon descriptor {d['name']!r}: classes must be "
                      f"{list(DESCRIPTORS[d['name']])}")
        if not isinstance(d.get("shown"), bool):
            raise bad(f"lexicon descriptor {d['name']!r}: shown must be true or false")


def load_lexicon(model_dir: Path, section: dict[str, Any]) -> Lexicon | None:
    """The bundle's lexicon heads, verified against the card's sha256 before they are parsed;
    None when the card has no ``lexicon`` section. Raises :class:`WeightsError` naming the
    file."""
    if not section:
        return None
    path = Path(model_dir) / section["file"]
    arrays = npzfile.read_verified(path, section["sha256"], "the lexicon heads' file")
    dim = int(section["dim"])
    heads = []
    try:
        mean, scale = arrays["mean"], arrays["scale"]
        for i, d in enumerate(section["descriptors"]):
            k = len(d["classes"])
            w, b = arrays[f"w{i}"], arrays[f"b{i}"]
            if w.shape != (k, dim) or b.shape != (k,):
                raise WeightsError(f"{path}: the lexicon head {d['name']!r} has shapes "
                                   f"{w.shape} and {b.shape}, expected ({k}, {dim}) and ({k},)")
            heads.append(Head(d["name"], tuple(d["classes"]), w, b))
    except KeyError as exc:
        raise WeightsError(f"{path}: the lexicon heads' file lacks the array {exc}") from None
    if mean.shape != (dim,) or scale.shape != (dim,) or not (scale > 0).all() \
            or not all(np.isfinite(a).all() for a in arrays.values()):
        raise WeightsError(f"{path}: the lexicon heads' arrays must be finite, with a mean and "
                           f"a positive scale of shape ({dim},)")
    return Lexicon(mean, scale, tuple(heads),
                   frozenset(d["name"] for d in section["descriptors"] if d["shown"]))
