"""The classifier backbones a bundle may hold, by the name the model card gives them.

Plain data (no torch), so the card can check a bundle's ``architecture.backbone`` without the
network code: :mod:`rcdnet_desktop.core.model.network` builds the network from these stage tables.
"""

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage.
STAGES = {
    "EfficientNet-Lite0": (
        (1, 3, 1, 1, 32, 16),
        (2, 3, 2, 6, 16, 24),
        (2, 5, 2, 6, 24, 40),
        (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112),
        (4, 5, 2, 6, 112, 192),
        (1, 3, 1, 6, 192, 320),
    ),
    "EfficientNet-Lite2": (  # Lite0 scaled by width 1.1 and depth 1.2 (stem and head fixed)
        (1, 3, 1, 1, 32, 16),
        (3, 3, 2, 6, 16, 24),
        (3, 5, 2, 6, 24, 48),
        (4, 3, 2, 6, 48, 88),
        (4, 5, 1, 6, 88, 120),
        (5, 5, 2, 6, 120, 208),
        (1, 3, 1, 6, 208, 352),
    ),
}
LITE0 = "EfficientNet-Lite0"
BACKBONES = tuple(STAGES)
