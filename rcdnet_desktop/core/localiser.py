"""The lesion localiser: a small segmentation network that proposes a lesion box.

Architecture: the ImageNet EfficientNet-Lite0 encoder (the classifier's backbone, without its
1280-channel head) and a light U-Net-style decoder: lateral 1x1 convolutions bring the features of
strides 4, 8, 16 and 32 to :data:`DECODER_CHANNELS` channels, a top-down path adds them after
2x upsampling, each sum goes through a 3x3 convolution, and a 1x1 convolution gives one lesion
logit per pixel at stride 4, upsampled to the input size.

The network sees the whole image exactly as the classifier's whole-image view does (the one
preprocessing path, :func:`~rcdnet_desktop.core.preprocess.preprocess`). :func:`find_lesion`
turns its probability map into a :class:`~rcdnet_desktop.core.types.LesionFinding`: the connected
region above 0.5 with the largest probability mass, its outline and bounding box in image pixels,
and a confidence (the region's mean probability).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rcdnet_desktop.core.model import EfficientNetLite0, load_imagenet_lite0
from rcdnet_desktop.core.types import Box, LesionFinding

DECODER_CHANNELS = 64
# Index of the last Lite0 block of each stage whose output feeds the decoder: strides 4, 8, 16, 32.
_SKIP_BLOCKS = (2, 4, 10, 15)
_SKIP_CHANNELS = (24, 40, 112, 320)
PROB_THRESHOLD = 0.5
MIN_AREA_SHARE = 0.002  # regions smaller than this share of the image are noise, not lesions


class _ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int = 3) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class LesionLocaliser(nn.Module):
    """Lite0 encoder + light top-down decoder -> one lesion logit per input pixel.

    Parameters
    ----------
    pretrained : bool
        Initialise the encoder from the bundled ImageNet Lite0 weights (training); False when a
        full state_dict is loaded next (the app).
    """

    def __init__(self, pretrained: bool = True, decoder_channels: int = DECODER_CHANNELS,
                 drop_connect_rate: float = 0.1) -> None:
        super().__init__()
        enc = load_imagenet_lite0(drop_connect_rate) if pretrained \
            else EfficientNetLite0(drop_connect_rate)
        del enc._fc, enc._conv_head, enc._bn1  # the classifier head is not used here
        enc._blocks = enc._blocks[:_SKIP_BLOCKS[-1] + 1]
        self.encoder = enc
        c = decoder_channels
        self.lateral = nn.ModuleList(nn.Conv2d(k, c, 1) for k in _SKIP_CHANNELS)
        self.smooth = nn.ModuleList(_ConvBnRelu(c, c) for _ in _SKIP_CHANNELS[:-1])
        self.head = nn.Sequential(_ConvBnRelu(c, c), nn.Conv2d(c, 1, 1))
        self.config = {"decoder_channels": decoder_channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        y = F.relu6(enc._bn0(enc._conv_stem(x)))
        skips = []
        for i, block in enumerate(enc._blocks):
            y = block(y)
            if i in _SKIP_BLOCKS:
                skips.append(y)
        top = self.lateral[-1](skips[-1])
        for k in range(len(skips) - 2, -1, -1):
            lat = self.lateral[k](skips[k])
            top = F.interpolate(top, size=lat.shape[-2:], mode="bilinear", align_corners=False)
            top = self.smooth[k](top + lat)
        logits = self.head(top)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def find_lesion(prob: np.ndarray, image_hw: tuple[int, int],
                min_confidence: float = 0.0) -> LesionFinding | None:
    """The most probable lesion region of a probability map, in image pixels, or None.

    Parameters
    ----------
    prob : ndarray (h, w)
        Lesion probability over the model's input view (the whole image squeezed to h x w).
    image_hw : (int, int)
        Height and width of the image the view was made from.
    min_confidence : float
        Regions whose mean probability is below this are not reported (the model card's value).
    """
    import cv2

    h, w = prob.shape
    binary = (prob >= PROB_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    best, best_mass = 0, 0.0
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < MIN_AREA_SHARE * h * w:
            continue
        mass = float(prob[labels == k].sum())
        if mass > best_mass:
            best, best_mass = k, mass
    if best == 0:
        return None
    region = labels == best
    confidence = float(prob[region].mean())
    if confidence < min_confidence:
        return None
    sy, sx = image_hw[0] / h, image_hw[1] / w
    x, y, bw, bh = (int(v) for v in stats[best, :4])
    x0, y0 = int(np.floor(x * sx)), int(np.floor(y * sy))
    x1 = min(image_hw[1], int(np.ceil((x + bw) * sx)))
    y1 = min(image_hw[0], int(np.ceil((y + bh) * sy)))
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
    outline = (outline + 0.5) * np.array([sx, sy], dtype=np.float32)
    return LesionFinding(box=Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)),
                         outline=outline, confidence=confidence,
                         area_share=float(region.mean()))


@torch.no_grad()
def lesion_probability(model: LesionLocaliser, batch: torch.Tensor) -> np.ndarray:
    """(N, 3, s, s) preprocessed whole-image views -> (N, s, s) lesion probabilities."""
    return torch.sigmoid(model(batch))[:, 0].float().cpu().numpy()
