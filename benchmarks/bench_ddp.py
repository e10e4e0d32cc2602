"""Training throughput on 1 and 2 (or more) gloo processes on the CPU, in the same run.

    PYTHONPATH=src python benchmarks/bench_ddp.py                   # hidden 50, worlds 1 and 2
    PYTHONPATH=src python benchmarks/bench_ddp.py --per-process     # 32 streams per process
    PYTHONPATH=src python benchmarks/bench_ddp.py --hidden 50,512 --worlds 1
        --precision bf16 --compile --json                            # one process, bf16, compiled

Every world size trains the same synthetic audio with the same GLOBAL batch (``--batch``
streams of ``--chunk`` samples; with W processes each takes batch / W streams; with
``--per-process`` each takes ``--batch`` streams and the global batch is W times it) through the
real trainer step: forward, loss, backward, the all-reduce of gradients, clipping and Adam.
Each process uses one torch thread, so W processes use W cores. A figure is the median over
``--repeats`` rounds of ``--steps`` steps, after ``--warmup`` steps; samples/s counts the whole
batch's samples per second of wall-clock time on rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, opts: dict[str, Any], results: Any) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch

    from noizenet.config import TrainConfig
    from noizenet.models import build, spec_from_dict
    from noizenet.train.distributed import process_group
    from noizenet.train.streams import Streams
    from noizenet.train.trainer import Trainer

    torch.set_num_threads(1)
    # the environment torchrun would give; process_group() joins (and leaves) as training does
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
        }
    )
    with process_group() as dist:
        batch, chunk = opts["batch"], opts["chunk"]
        steps = opts["warmup"] + opts["steps"]
        rng = np.random.default_rng(0)
        n = batch * chunk * steps + 1  # one song the streams walk in `steps` steps
        t = np.arange(n) / 22050
        track = (np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)
        streams = Streams([track], batch=batch, chunk=chunk)
        torch.manual_seed(0)
        model = build(spec_from_dict({"hidden": opts["hidden"], "dropout": 0.0}))
        cfg = TrainConfig(batch=batch, precision=opts["precision"], compile=opts["compile"])
        trainer = Trainer(model, streams, cfg, progress=False, dist=dist)
        batches = list(streams.epoch(0, seed=0, rank=rank, world=world))
        warm, timed = batches[: opts["warmup"]], batches[opts["warmup"] :]
        samples = sum(b.total_samples for b in timed)
        for b in warm:
            trainer.train_step(b)
        rates = []
        for _ in range(opts["repeats"]):
            dist.barrier()
            t0 = time.perf_counter()
            for b in timed:
                trainer.train_step(b)
            rates.append(samples / (time.perf_counter() - t0))
        if rank == 0:
            results.put(rates)


def measure(world: int, opts: dict[str, Any]) -> list[float]:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    mp.start_processes(
        worker, args=(world, free_port(), opts, results), nprocs=world, start_method="spawn"
    )
    return results.get()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", default="50", help="comma-separated hidden sizes (default 50)")
    ap.add_argument("--worlds", default="1,2", help="process counts to compare (default 1,2)")
    ap.add_argument("--batch", type=int, default=32, help="global batch: streams (default 32)")
    ap.add_argument(
        "--per-process",
        action="store_true",
        help="--batch is each process's: the global batch grows with the processes (weak "
        "scaling, what a user adding GPUs does) instead of being shared out (strong scaling)",
    )
    ap.add_argument("--chunk", type=int, default=256, help="samples per chunk (default 256)")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per round (default 4)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the median is kept")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    worlds = [int(w) for w in args.worlds.split(",")]
    rows = []
    for hidden in (int(h) for h in args.hidden.split(",")):
        base = None
        for world in worlds:
            opts = {
                "hidden": hidden,
                "batch": args.batch * world if args.per_process else args.batch,
                "chunk": args.chunk,
                "steps": args.steps,
                "warmup": args.warmup,
                "repeats": args.repeats,
                "precision": args.precision,
                "compile": args.compile,
            }
            rates = measure(world, opts)
            rate = statistics.median(rates)
            base = base if base is not None else rate
            rows.append(
                {
                    "hidden": hidden,
                    "processes": world,
                    "precision": args.precision,
                    "compile": args.compile,
                    "global_batch": opts["batch"],
                    "samples_per_s": round(rate),
                    "vs_first": round(rate / base, 2),
                    "rounds": [round(r) for r in rates],
                }
            )
            print(
                f"hidden {hidden:4d}  {world} process{'es' if world > 1 else '  '}  "
                f"{args.precision}{' compiled' if args.compile else ''}, "
                f"global batch {opts['batch']} x {args.chunk}: "
                f"{rate:12,.0f} training samples/s  (x{rate / base:.2f} vs {worlds[0]})",
                flush=True,
            )
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
