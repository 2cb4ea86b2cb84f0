"""The cine sweep as ratios measured in one run on this machine.

Times sweeping every frame of a real cine clip (the pydicom test clip, 30 frames of 240 x 320
JPEG) through :func:`rcdnet_desktop.core.cine.classify_frames` (a chunk of frames per forward
pass, frames decoded one at a time), against classifying the same frames one by one with
``engine.predict`` as the viewer does for the frame on display; then the chunked sweep against
the bare model on the same frames already prepared (the decoding and preparation overhead).

Goal: the chunked sweep no slower than frame-by-frame prediction beyond noise (ratio <= 1.3 on
a CPU, where a batch of 8 costs about 8 single passes: measured 0.9 to 1.2 on a shared 2-core
machine with ONNX Runtime; batching is what pays on a GPU). Decoding and preparing each frame
(the localiser included) costs about as much as the model on the CPU.

Usage: python benchmarks/bench_cine_sweep.py [--repeats 3] [--chunk 8] [--clip FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--clip", default="")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from pydicom.data import get_testdata_file

    from rcdnet_desktop.core.cine import classify_frames
    from rcdnet_desktop.core.io import read_image
    from rcdnet_desktop.core.model.engine import InferenceEngine

    record = read_image(args.clip or get_testdata_file("examples_ybr_color.dcm"))
    engine = InferenceEngine(device="cpu")
    frames = list(range(record.frame_count))

    def sweep() -> None:
        for _ in classify_frames(engine, record, frames, chunk=args.chunk):
            pass

    def one_by_one() -> None:
        for f in frames:
            engine.predict(record, frame=f)

    prepared = [engine.prepare(record, frame=f) for f in frames]

    def bare() -> None:
        for i in range(0, len(prepared), args.chunk):
            engine.predict_prepared(prepared[i:i + args.chunk])

    fns = {"sweep": sweep, "one_by_one": one_by_one, "bare": bare}
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(frames)
    print(f"{n} frames of {record.path.name}, chunk {args.chunk}, {args.repeats} repeats")
    print(f"sweep: {n / med['sweep']:.1f} frames/s")
    print(f"sweep / frame-by-frame predict: {med['sweep'] / med['one_by_one']:.2f}")
    print(f"sweep / bare model on prepared frames: {med['sweep'] / med['bare']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
