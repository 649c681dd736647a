"""Benchmark of tdann.screening.screen: peak memory must not grow with the number of inputs.

Runs the same screening (ResNet-18 width 0.25, 32 px, all 8 blocks, k = 16, reservoir 2048) over N and
10 N inputs, each in its own subprocess, and prints peak RSS (ru_maxrss) of both and their ratio
(goal <= 1.2), plus throughput in inputs/s against a plain forward pass (no hooks) in the same process.

    OMP_NUM_THREADS=1 PYTHONPATH=workflow python tests/benchmarks/bench_screening.py [--n 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BATCH, SIZE, K, RESERVOIR = 128, 32, 16, 2048


def store(n: int, pool: np.ndarray):
    """(start, batch) pairs for n inputs, cycling through a fixed pool (constant memory)."""
    for start in range(0, n, BATCH):
        b = min(BATCH, n - start)
        offset = start % (len(pool) - BATCH + 1)
        yield start, pool[offset: offset + b]


def child(n: int) -> None:
    from tdann.models import LAYERS, build_model
    from tdann.screening import screen

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("resnet18", 0.25).eval()
    pool = np.random.default_rng(0).random((512, 3, SIZE, SIZE), dtype=np.float32)
    with torch.no_grad():  # baseline: plain forward passes over the same batches
        t0 = time.perf_counter()
        for _, batch in store(min(n, 2048), pool):
            model.embed(torch.from_numpy(batch))
        plain = min(n, 2048) / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        screen(model, store(n, pool), LAYERS, K, Path(tmp) / "s.h5", reservoir=RESERVOIR, progress=False)
        seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "seconds": seconds, "rate": n / seconds, "plain_rate": plain, "rss_mb": rss_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="inputs of the small run (the large one has 10x)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2] / "workflow"),
                                                      env.get("PYTHONPATH")]))
    runs = []
    for n in (args.n, 10 * args.n):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], env=env, check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        r = runs[-1]
        print(f"N={r['n']:>7}: peak RSS {r['rss_mb']:7.1f} MiB, {r['rate']:7.1f} inputs/s screened "
              f"(plain forward {r['plain_rate']:7.1f} inputs/s, ratio {r['rate'] / r['plain_rate']:.2f}), "
              f"{r['seconds']:.1f} s")
    ratio = runs[1]["rss_mb"] / runs[0]["rss_mb"]
    print(f"peak RSS ratio 10N / N = {ratio:.3f} (goal <= 1.2): {'OK' if ratio <= 1.2 else 'FAIL'}")


if __name__ == "__main__":
    main()
