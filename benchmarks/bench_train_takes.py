"""What takes during training cost: training wall time without takes, with the default take at
the run's end, and with ``--sample-every 1``, as ratios measured side by side.

    PYTHONPATH=src python benchmarks/bench_train_takes.py                 # ~10 min on 2 cores
    PYTHONPATH=src python benchmarks/bench_train_takes.py --preset mulaw --epochs 2 --repeats 1

Each training runs in a fresh ``python -m noizenet train`` process on the embedded corpus (the
demo's songs), so the first take pays what a user's does (importing generation, loading the
numba kernels from their cache); the modes alternate within each repeat, so a busy machine
slows all of them alike. The training time runs from the process start to training's last line (the
run's end takes included); the loss curve and report the verb draws after it are timed apart.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {  # name -> extra flags
    "no takes": ["--sample-seconds", "0"],
    "default (end of run)": [],
    "--sample-every 1": ["--sample-every", "1"],
}


def train_seconds(out: Path, flags: list[str]) -> tuple[float, float, float]:
    """(wall seconds from the process start to training's last line, seconds the takes took by
    metrics.jsonl, seconds the verb then spent drawing the loss curve and the report)."""
    cmd = [sys.executable, "-m", "noizenet", "train", "--out", str(out), "--quiet", *flags]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    trained = reported = None
    for line in proc.stdout:
        now = time.perf_counter() - t0
        if line.startswith(("epoch ", "takes ")):  # training's own lines: the last one ends it
            trained = now
        elif line.startswith("report:"):
            reported = now
    proc.wait()
    if proc.returncode or trained is None or reported is None:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return trained, sum(r.get("takes_s", 0.0) for r in lines), reported - trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="paper")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--work", type=Path, default=None)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-takes-"))
    base = ["--preset", args.preset, "--epochs", str(args.epochs), "--data", "embedded"]
    train_seconds(work / "warm", [*base, "--epochs", "1", "--sample-seconds", "0.1"])  # caches
    times: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
    for r in range(args.repeats):
        for mode, flags in MODES.items():
            out = work / f"{r}-{list(MODES).index(mode)}"
            times[mode].append(train_seconds(out, [*base, *flags, "--force"]))
            print(f"repeat {r + 1}: {mode}: {times[mode][-1][0]:.1f} s", flush=True)

    def mean(mode: str, i: int) -> float:
        return sum(t[i] for t in times[mode]) / len(times[mode])

    ref = mean("no takes", 0)
    print(f"\n{args.preset}, {args.epochs} epochs, embedded corpus, {args.repeats} repeats")
    for mode in MODES:
        print(
            f"{mode:22s} training {mean(mode, 0):7.1f} s  x{mean(mode, 0) / ref:.3f}  "
            f"(takes by their own clock {mean(mode, 1):.2f} s; report after it "
            f"{mean(mode, 2):.1f} s)"
        )


if __name__ == "__main__":
    main()
