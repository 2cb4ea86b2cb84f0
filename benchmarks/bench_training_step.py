"""Training cost per architecture as ratios measured in one run on this machine.

Times one optimiser step (forward, backward, Adam update) on a batch of random 224x224 images
for each architecture of the comparison harness, interleaved so load from other processes hits
all of them alike, and prints each as a ratio to RcdNet's step. The projection to the recipe's
30 epochs (BUSI's 443 training images, batch 32) shows which baselines are practical on this
machine's CPU and which need a GPU.

Usage: python benchmarks/bench_training_step.py [--archs rcdnet resnet50 ...] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

DEFAULT_ARCHS = ("rcdnet", "lite0", "mobilenet_v2", "regnet_y_400mf", "resnet50",
                 "resnext50_32x4d", "vit_b_16")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-images", type=int, default=443, help="images per epoch")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args(argv)

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_inference import interleaved_medians
    from training.models import build_model

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 3, 224, 224)
    y = torch.randint(0, 2, (args.batch,))

    def step_fn(model, opt):
        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return step

    fns = {}
    for arch in args.archs:
        model, _ = build_model(arch, pretrained=False)
        model.train()
        fns[arch] = step_fn(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    med = interleaved_medians(fns, args.repeats, warmup=1)

    steps = math.ceil(args.train_images / args.batch) * args.epochs
    base = med.get("rcdnet", next(iter(med.values())))
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"{steps} steps = {args.epochs} epochs of {args.train_images} images")
    print(f"{'arch':<18}{'s/step':>8}{'ratio':>8}{f'{args.epochs} epochs':>12}")
    for arch, t in med.items():
        print(f"{arch:<18}{t:>8.2f}{t / base:>7.1f}x{t * steps / 3600:>10.1f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
