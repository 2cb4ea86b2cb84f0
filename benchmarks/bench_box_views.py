"""CPU cost of the box views, as ratios measured in one run on this machine.

The bundled engine (ONNX Runtime on the CPU) classifies a user box on the bundled malignant
sample three ways, timed in turn: a bare forward pass of one preprocessed view (the unit),
the box classified alone (``box_views=False``: prepare + predict, the input guard's whole-image
row included) and the box through the model card's ``box_views`` (the default: the
localiser's pass when the card snaps a drawn box to the lesion, then every view). Printed: each as a
ratio to the bare forward pass, and the views' cost as a ratio to the box alone; the same for
the prediction with both heat maps (``explain``), which is what the viewer runs.

Usage: python benchmarks/bench_box_views.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import interleaved_medians  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)

    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.resources import resources_dir
    from rcdnet_desktop.core.types import Box

    pixels = read_image(resources_dir() / "samples" / "busi_malignant_sample.png").pixels
    h, w = pixels.shape[:2]
    box = Box(w // 3, h // 3, w // 4, h // 4)
    alone = InferenceEngine(device="cpu", backend="onnx", box_views=False)
    views = InferenceEngine(device="cpu", backend="onnx")
    n_views = len(views.card.box_views.get("views", [[1, 0, 0]]))
    x = alone.prepare(pixels, roi=box).tensor[None].astype(np.float32)
    t = interleaved_medians({
        "forward": lambda: alone._runtime.classifier.forward(x, False),
        "alone": lambda: alone.predict(pixels, roi=box),
        "views": lambda: views.predict(pixels, roi=box),
        "alone_maps": lambda: alone.explain(pixels, roi=box),
        "views_maps": lambda: views.explain(pixels, roi=box),
    }, args.repeats)
    print(f"box views in the card: {n_views} (the box as given + {n_views - 1})")
    print(f"bare forward pass (one view):         1.00x  ({t['forward'] * 1e3:.1f} ms)")
    for key, what in (("alone", "box alone, predict"), ("views", "box views, predict"),
                      ("alone_maps", "box alone, predict + maps"),
                      ("views_maps", "box views, predict + maps")):
        print(f"{what + ':':<38}{t[key] / t['forward']:.2f}x")
    print(f"views / alone (predict):              {t['views'] / t['alone']:.2f}x")
    print(f"views / alone (predict + maps):       {t['views_maps'] / t['alone_maps']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
