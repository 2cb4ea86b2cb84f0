"""Inference cost as ratios measured in one run on this machine.

Prints the median time of a bare forward pass (batch 1), of predict + both heat maps (fast
closed-form path) and of pytorch-grad-cam GradCAM for both classes, each as a ratio to the
bare forward pass; then the folder throughput of ``rcdnet classify --no-auto-box`` (decode,
preprocess, batched model) against the model's bare batch throughput on ready tensors, and the
folder throughput of the default (automatic box) against it.

With a lesion localiser in the bundle it also times the default pipeline with no box drawn
(localise + classify the automatic box + both heat maps, preprocessing included) against the
same image classified whole without the localiser (the prediction cost before the localiser).

Those figures are the torch backend's. Then both backends side by side: predict + both heat maps
(closed form, preprocessed image) in ONNX Runtime against torch on the CPU, as a ratio measured
in one run, and the folder throughput of whole-image classification on each.

Goals: predict + both heat maps within 1.3x of a bare forward pass; the automatic-box pipeline
within 2x the whole-image prediction; folder classification at least 0.8x the bare batch
throughput.

Usage: python benchmarks/bench_inference.py [--images 200] [--folder DIR] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def interleaved_medians(fns: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each function, timed in turn so load from other processes hits all."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def synthetic_folder(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` greyscale PNGs of BUSI's median size (about 564x474) with speckle-like noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.gamma(2.0, 30.0, (474, 564)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"img_{i:04d}.png")
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="synthetic images for throughput")
    ap.add_argument("--folder", type=Path, help="use this folder of images instead")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    from rcdnet_desktop.core.batch import review
    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.model.engine import InferenceEngine
    from rcdnet_desktop.core.model.explain import gradcam_maps
    from rcdnet_desktop.core.resources import sample_path

    engine = InferenceEngine(device=args.device, backend="torch")
    model, device = engine.model, torch.device(engine.device)
    record = read_image(sample_path())

    def bare():
        with torch.inference_mode():
            model(x)

    prepared = engine.prepare(record, auto_box=False)
    x = torch.from_numpy(prepared.tensor).unsqueeze(0).to(device)
    timed = {
        "bare": bare,
        "fast": lambda: engine.explain_prepared([prepared]),
        "full": lambda: engine.explain(record, auto_box=False),
        "gradcam": lambda: gradcam_maps(model, x, "gradcam"),
    }
    if engine.localiser is not None:
        timed["auto"] = lambda: engine.explain(record)
    med = interleaved_medians(timed, args.repeats)
    t_bare, t_fast, t_full, t_gc = med["bare"], med["fast"], med["full"], med["gradcam"]

    print(f"device: {engine.device}, torch threads: {torch.get_num_threads()}, "
          f"image {record.width}x{record.height}")
    print(f"bare forward pass (batch 1):              {t_bare * 1e3:8.1f} ms   1.00x")
    print(f"predict + both heat maps (fast path):     {t_fast * 1e3:8.1f} ms   "
          f"{t_fast / t_bare:.2f}x  (goal <= 1.3x)")
    print(f"  same, including preprocessing + resize: {t_full * 1e3:8.1f} ms   "
          f"{t_full / t_bare:.2f}x")
    print(f"pytorch-grad-cam GradCAM, both classes:   {t_gc * 1e3:8.1f} ms   "
          f"{t_gc / t_bare:.2f}x")
    if "auto" in med:
        mode = "fusion" if engine.fusion else "automatic box"
        print(f"no box drawn: localise + classify ({mode}) + both maps: {med['auto'] * 1e3:8.1f} "
              f"ms   {med['auto'] / t_full:.2f}x the whole-image prediction above (goal <= 2x)")
    else:
        print("the bundle has no lesion localiser: the automatic-box pipeline is not timed")

    batch = x.expand(engine.batch_size, -1, -1, -1).contiguous()

    def bare_batch():
        with torch.inference_mode():
            model(batch)

    def batch_seconds() -> float:
        return interleaved_medians({"b": bare_batch}, 5, warmup=1)["b"]

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or synthetic_folder(Path(tmp), args.images)
        n_files = sum(1 for _ in review([folder], engine, chunk=engine.batch_size,
                                        auto_box=False))  # warm the file cache
        # Bare batch timing before and after the folder run, so both see the same machine load.
        t_batch = batch_seconds()
        t0 = time.perf_counter()
        n_ok = sum(item.status == "ok" for item in review([folder], engine,
                                                         chunk=engine.batch_size,
                                                         auto_box=False))
        t_folder = time.perf_counter() - t0
        t_auto = None
        if engine.localiser is not None:
            t0 = time.perf_counter()
            sum(1 for _ in review([folder], engine, chunk=engine.batch_size))
            t_auto = time.perf_counter() - t0
        t_batch = (t_batch + batch_seconds()) / 2

    bare_rate = engine.batch_size / t_batch
    folder_rate = n_ok / t_folder
    print(f"bare batch throughput (batch {engine.batch_size}):         {bare_rate:8.1f} images/s")
    print(f"folder classification, whole images ({n_ok}/{n_files} files):  {folder_rate:8.1f} "
          f"images/s   {folder_rate / bare_rate:.2f}x  (goal >= 0.8x)")
    if t_auto is not None:
        auto_rate = n_files / t_auto
        print(f"folder classification, no box drawn (localiser + classifier): {auto_rate:8.1f} "
              f"images/s   {auto_rate / folder_rate:.2f}x the whole-image folder rate")
    compare_backends(engine, prepared, folder_rate, args, record)
    return 0


def compare_backends(torch_engine, prepared, torch_folder_rate: float, args, record) -> None:
    """ONNX Runtime against torch on the CPU: one prediction + both maps, and a folder.

    Also the default no-box pipeline on ONNX Runtime against the whole-image prediction on torch
    (the prediction as it was before the localiser and the ONNX backend), timed in turn.
    """
    import torch

    from rcdnet_desktop.core.batch import review
    from rcdnet_desktop.core.model.engine import InferenceEngine

    if torch_engine.device != "cpu":
        print("backends: the torch engine is not on the CPU; the side-by-side is not timed")
        return
    onnx_engine = InferenceEngine(backend="onnx")
    x = torch.from_numpy(prepared.tensor).unsqueeze(0)

    def torch_bare():
        with torch.inference_mode():
            torch_engine.model(x)

    med = interleaved_medians({
        "bare": torch_bare,
        "torch": lambda: torch_engine.explain_prepared([prepared]),
        "onnx": lambda: onnx_engine.explain_prepared([prepared]),
    }, args.repeats)
    print(f"backends, predict + both heat maps: torch {med['torch'] * 1e3:.1f} ms, ONNX Runtime "
          f"{med['onnx'] * 1e3:.1f} ms   ONNX/torch {med['onnx'] / med['torch']:.2f}x; "
          f"against torch's bare forward pass ({med['bare'] * 1e3:.1f} ms) "
          f"{med['onnx'] / med['bare']:.2f}x  (goal <= 0.5x)")
    if onnx_engine.has_localiser:
        med = interleaved_medians({
            "before": lambda: torch_engine.explain(record, auto_box=False),
            "default": lambda: onnx_engine.explain(record),
        }, args.repeats)
        print(f"no box drawn, default backend (ONNX Runtime, localise + classify + both maps): "
              f"{med['default'] * 1e3:.1f} ms   {med['default'] / med['before']:.2f}x the "
              f"whole-image prediction on torch ({med['before'] * 1e3:.1f} ms; goal <= 2x)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or synthetic_folder(Path(tmp), args.images)
        sum(1 for _ in review([folder], onnx_engine, chunk=onnx_engine.batch_size,
                              auto_box=False))  # warm up
        t0 = time.perf_counter()
        n_ok = sum(item.status == "ok" for item in review([folder], onnx_engine,
                                                         chunk=onnx_engine.batch_size,
                                                         auto_box=False))
        onnx_rate = n_ok / (time.perf_counter() - t0)
    print(f"backends, folder classification (whole images): torch {torch_folder_rate:.1f} "
          f"images/s, ONNX Runtime {onnx_rate:.1f} images/s   ONNX/torch "
          f"{onnx_rate / torch_folder_rate:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
