"""Start-up cost of this tree against another checkout, as ratios (printed, not a test).

Measures, in fresh processes, alternating between the two trees so that load from other
processes hits both alike (median of ``--runs``):

* the imports of ``rcdnet --help``: the sum of ``python -X importtime`` over every module it
  imports (the parser is built, so every module it needs is imported), and whether
  ``import rcdnet_desktop.cli`` imports torch (the default ONNX path must not);
* ``rcdnet --help``: the whole process, interpreter start included;
* ``rcdnet classify`` of the bundled benign sample: start, bundle verification, one
  prediction (the ONNX path on the CPU);
* launch -> first heat maps in the viewer (the ``--child`` mode of this tree's
  ``bench_viewer.py``, run on each tree's package), unless ``--no-viewer``.

Usage::

    git archive main | tar -x -C /tmp/base
    python benchmarks/bench_startup.py --base /tmp/base [--runs 5] [--no-viewer]

Ratios are this tree over the base: below 1 is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "samples" / "busi_benign_sample.png"


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), RCDNET_DEVICE="cpu")
    env.pop("RCDNET_MODEL_DIR", None)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _timed(tree: Path, args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=tree, env=_env(tree),
                          capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed in {tree}:\n{proc.stderr[-2000:]}")
    return elapsed


def import_cost(tree: Path) -> float:
    """Seconds ``rcdnet --help`` spends importing, by ``-X importtime``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "rcdnet_desktop.cli",
                           "--help"], cwd=tree, env=_env(tree), capture_output=True, text=True,
                          timeout=300)
    # Each line: "import time: self | cumulative | name"; top-level modules are not indented.
    total = sum(int(m.group(1)) for m in re.finditer(
        r"^import time:\s+\d+ \|\s+(\d+) \| \S", proc.stderr, re.M))
    return total / 1e6


def imports_torch(tree: Path) -> bool:
    """Whether ``import rcdnet_desktop.cli`` imports torch."""
    proc = subprocess.run([sys.executable, "-c",
                           "import sys, rcdnet_desktop.cli; print('torch' in sys.modules)"],
                          cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=300)
    return proc.stdout.strip() == "True"


def first_maps(tree: Path) -> float:
    """Seconds from launch to the first heat maps on screen, by this tree's viewer bench run on
    ``tree``'s package."""
    t0 = time.time()
    script = REPO / "benchmarks" / "bench_viewer.py"
    proc = subprocess.run([sys.executable, str(script), "--child", repr(t0), "--device", "cpu",
                           str(SAMPLE), str(SAMPLE)], cwd=tree, env=_env(tree),
                          capture_output=True, text=True, timeout=900)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"viewer bench failed in {tree}:\n{proc.stderr[-2000:]}")
    return float(json.loads(line[7:])["launch_to_first_maps"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the other checkout")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-viewer", action="store_true")
    args = p.parse_args()
    trees = {"base": args.base.resolve(), "this": REPO}
    cli = ["-m", "rcdnet_desktop.cli"]
    measures = {
        "imports of rcdnet --help (importtime)": import_cost,
        "rcdnet --help": lambda t: _timed(t, [*cli, "--help"]),
        "rcdnet classify sample": lambda t: _timed(t, [*cli, "classify", str(SAMPLE)]),
    }
    if not args.no_viewer:
        measures["viewer launch -> first heat maps"] = first_maps
    times: dict[str, dict[str, list[float]]] = {m: {k: [] for k in trees} for m in measures}
    for _ in range(args.runs):
        for name, fn in measures.items():
            for key, tree in trees.items():
                times[name][key].append(fn(tree))
    torch = {key: imports_torch(tree) for key, tree in trees.items()}
    print(f"Start-up, median of {args.runs} runs alternating between the trees, "
          f"{os.cpu_count()} CPU threads (base: {trees['base']}):")
    print(f"  {'':40s} {'base s':>8s} {'this s':>8s} {'this/base':>9s}")
    for name in measures:
        base = statistics.median(times[name]["base"])
        this = statistics.median(times[name]["this"])
        print(f"  {name:40s} {base:8.3f} {this:8.3f} {this / base:9.2f}")
    print(f"  torch imported by rcdnet_desktop.cli: base {torch['base']}, this {torch['this']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
