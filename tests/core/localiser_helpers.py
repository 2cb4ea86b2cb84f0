"""A fake lesion localiser with a known finding, for engine, batch and CLI tests."""

from __future__ import annotations

import math

import torch
from torch import nn

from rcdnet_desktop.core.types import Box

# The fake localiser's lesion, in the 224 x 224 view: rows 56-111, columns 84-139.
BLOB = (slice(56, 112), slice(84, 140))


class FakeLocaliser(nn.Module):
    """Stands in for LesionLocaliser: fixed logits, ``inside`` on BLOB, ``outside`` elsewhere."""

    def __init__(self, inside: float = 8.0, outside: float = -8.0) -> None:
        super().__init__()
        self.inside, self.outside = inside, outside
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = torch.full((x.shape[0], 1, *x.shape[-2:]), self.outside)
        out[:, :, BLOB[0], BLOB[1]] = self.inside
        return out


def blob_box(hw: tuple[int, int]) -> Box:
    """BLOB's bounding box in the pixels of an image of size ``hw`` (as find_lesion maps it)."""
    sy, sx = hw[0] / 224, hw[1] / 224
    x0, y0 = math.floor(84 * sx), math.floor(56 * sy)
    x1, y1 = min(hw[1], math.ceil(140 * sx)), min(hw[0], math.ceil(112 * sy))
    return Box(x0, y0, x1 - x0, y1 - y0)
