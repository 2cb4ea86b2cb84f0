"""One forward batch for several views of several images, and the fusion of their logits.

An item's own view (the box, or the whole image) is classified together with its whole-image
view when it has one (fusion of an automatic box, or the input guard) and with the other views
of its lesion box (the card's ``box_views``), all in one forward pass. :func:`batch_views` lays
them out; :func:`combine` averages each item's logits over its views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rcdnet_desktop.core.model.prepared import Prepared


@dataclass(frozen=True)
class Layout:
    """Where a chunk's views sit in its forward batch (after the items' own rows).

    Attributes
    ----------
    whole : list of int
        Chunk indices of the items with a whole-image view; those views follow the items' own
        rows in this order.
    views : list of slice
        Per item, the batch rows of its box's other views (empty slices for none).
    """

    whole: list[int]
    views: list[slice]


def batch_views(chunk: Sequence[Prepared], with_views: bool = True) -> tuple[np.ndarray, Layout]:
    """The chunk's model inputs, then the whole-image views of its items that have one, then
    (``with_views``) the other views of their lesion boxes, so every view goes through one
    forward pass; and where each sits in the batch."""
    n = len(chunk)
    whole = [i for i, it in enumerate(chunk) if it.whole is not None]
    parts = [it.tensor[None] for it in chunk] + [chunk[i].whole[None] for i in whole]
    start, views = n + len(whole), []
    for it in chunk:
        k = len(it.views) if with_views and it.views is not None else 0
        views.append(slice(start, start + k))
        start += k
        if k:
            parts.append(it.views)
    return (np.concatenate(parts).astype(np.float32, copy=False),
            Layout(whole=whole, views=views))


def combine(logits: np.ndarray, chunk: Sequence[Prepared],
            layout: Layout) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Each item's logits: the mean over its box's views (the as-given view alone when it has
    no others), each view first averaged with the whole image's when the item is fused. Also
    each item's per-view logits ``(v, K)`` when it has several views, else None (their spread
    is the prediction's ``box_p_range``)."""
    n = len(chunk)
    whole_row = {i: n + j for j, i in enumerate(layout.whole)}
    out = logits[:n].copy()
    per_view: list[np.ndarray | None] = []
    for i, it in enumerate(chunk):
        rows = np.concatenate([logits[i:i + 1], logits[layout.views[i]]])
        if it.fuse:
            rows = (rows + logits[whole_row[i]]) / 2
        out[i] = rows.mean(axis=0)
        per_view.append(rows if len(rows) > 1 else None)
    return out, per_view


def whole_rows(values: np.ndarray, n: int, extra: list[int]) -> np.ndarray:
    """Rows of ``values`` (one per batch entry) for each item's whole-image view."""
    rows = np.arange(n)
    rows[extra] = n + np.arange(len(extra))
    return values[rows]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the probabilities are reported as Python floats)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
