"""Model factory for RcdNet, its ablations and the torchvision baselines.

torchvision ImageNet weights cannot be downloaded here; they are used only when already present
in the local torch hub cache (``$TORCH_HOME/hub/checkpoints``), otherwise the baseline is trained
from scratch and :func:`build_model` says so in its returned info.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from rcdnet_desktop.core.model.network import RcdNet

RCDNET_VARIANTS = {
    "rcdnet": {},
    "rcdnet-no-cbam": {"use_cbam": False},
    "rcdnet-no-dsc": {"use_dsc": False},
    "lite0": {"use_cbam": False, "use_dsc": False},  # plain Lite0 fine-tuning
    "rcdnet-lite2": {"backbone": "EfficientNet-Lite2"},  # RcdNet on the larger Lite2 backbone
}
TORCHVISION = {
    "resnet50": ("resnet50", "ResNet50_Weights"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights"),
    "regnet_y_400mf": ("regnet_y_400mf", "RegNet_Y_400MF_Weights"),
    "vit_b_16": ("vit_b_16", "ViT_B_16_Weights"),
    "resnext50_32x4d": ("resnext50_32x4d", "ResNeXt50_32X4D_Weights"),
}
ARCHS = tuple(RCDNET_VARIANTS) + tuple(TORCHVISION)


def build_model(arch: str, pretrained: bool = True) -> tuple[nn.Module, dict]:
    """Return (model with a 2-class head, info dict with ``init`` = how it was initialised)."""
    if arch in RCDNET_VARIANTS:
        m = RcdNet(pretrained=pretrained, **RCDNET_VARIANTS[arch])
        init = "imagenet-" + m.config["backbone"].split("-")[-1].lower()
        return m, {"arch": arch, "init": init if pretrained else "random",
                   "model_config": m.config}
    if arch not in TORCHVISION:
        raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")
    import torch
    import torchvision.models as tvm

    fn_name, weights_name = TORCHVISION[arch]
    weights_enum = getattr(tvm, weights_name).DEFAULT
    model = getattr(tvm, fn_name)(weights=None)
    init = "scratch (ImageNet weights not in local torch cache)"
    if pretrained:
        from torch.hub import get_dir

        f = Path(get_dir()) / "checkpoints" / Path(weights_enum.url).name
        if f.exists():
            model.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
            init = "imagenet (local torch cache)"
    _replace_head(model, 2)
    return model, {"arch": arch, "init": init}


def _replace_head(model: nn.Module, n: int) -> None:
    if hasattr(model, "fc") and isinstance(model.fc, nn.Linear):
        model.fc = nn.Linear(model.fc.in_features, n)
    elif hasattr(model, "classifier"):
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, n)
    elif hasattr(model, "heads"):
        model.heads.head = nn.Linear(model.heads.head.in_features, n)
    else:  # pragma: no cover
        raise ValueError("cannot find the classifier head")
