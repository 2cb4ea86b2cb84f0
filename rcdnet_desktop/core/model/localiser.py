"""The lesion localiser: a small segmentation network that proposes a lesion box.

Architecture: the ImageNet EfficientNet-Lite0 encoder (the classifier's backbone, without its
1280-channel head) and a light U-Net-style decoder: lateral 1x1 convolutions bring the features of
strides 4, 8, 16 and 32 to :data:`DECODER_CHANNELS` channels, a top-down path adds them after
2x upsampling, each sum goes through a 3x3 convolution, and a 1x1 convolution gives one lesion
logit per pixel at stride 4, upsampled to the input size.

The network sees the whole image exactly as the classifier's whole-image view does (the one
preprocessing path, :func:`~rcdnet_desktop.core.preprocess.preprocess`).
:func:`~rcdnet_desktop.core.lesion.find_lesion` (plain numpy, no torch) turns its probability
map into a :class:`~rcdnet_desktop.core.types.LesionFinding`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rcdnet_desktop.core.model.network import EfficientNetLite0, load_imagenet_lite0

DECODER_CHANNELS = 64
# Index of the last Lite0 block of each stage whose output feeds the decoder: strides 4, 8, 16, 32.
_SKIP_BLOCKS = (2, 4, 10, 15)
_SKIP_CHANNELS = (24, 40, 112, 320)


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


@torch.no_grad()
def lesion_probability(model: LesionLocaliser, batch: torch.Tensor) -> np.ndarray:
    """(N, 3, s, s) preprocessed whole-image views -> (N, s, s) lesion probabilities."""
    return torch.sigmoid(model(batch))[:, 0].float().cpu().numpy()
