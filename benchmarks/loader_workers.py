"""A DataLoader with 2 worker processes, untraced or under trace(workers=True): bench.py's worker workload.

    python benchmarks/loader_workers.py --method fork --mode untraced     # prints {"seconds": ..., ...}
    viztracer --quiet -o out.json benchmarks/loader_workers.py --method fork --mode untraced

The dataset is torch's TensorDataset, so spawn and forkserver workers import it by reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 2
ITEMS = 256  # 8 batches of 32 an epoch


def make_loader(method):
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    generator = torch.Generator().manual_seed(0)
    dataset = TensorDataset(torch.randn(ITEMS, 3, 32, 32, generator=generator),
                            torch.randint(0, 10, (ITEMS,), generator=generator))
    return DataLoader(dataset, batch_size=32, num_workers=2, multiprocessing_context=method)


def epochs(loader, n=EPOCHS):
    batches = 0
    for _ in range(n):
        for _batch in loader:
            batches += 1
    return batches


def untraced(loader, n=EPOCHS):
    t0 = time.perf_counter()  # wall time: the work is in other processes
    batches = epochs(loader, n)
    return {"seconds": time.perf_counter() - t0, "batches": batches}


def traced(loader, n=EPOCHS):
    import tracer
    t0 = time.perf_counter()
    with tracer.trace(workers=True) as t:
        batches = epochs(loader, n)
    seconds = time.perf_counter() - t0  # the whole block: recording, streaming, reading and merging
    in_workers = sum(1 for w in t.workers for _ in w.walk()) - len(t.workers)
    return {"seconds": seconds, "batches": batches, "calls": len(t), "worker_calls": in_workers,
            "workers": len(t.workers)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=("fork", "spawn", "forkserver"), default="fork")
    p.add_argument("--mode", choices=("untraced", "tracer"), default="untraced")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    loader = make_loader(args.method)
    print(json.dumps((traced if args.mode == "tracer" else untraced)(loader, args.epochs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
