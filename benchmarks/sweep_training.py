"""Training throughput over streams (B) and chunk length (L): how the defaults were chosen.

    PYTHONPATH=src python benchmarks/sweep_training.py                # hidden 50, ~2 minutes
    PYTHONPATH=src python benchmarks/sweep_training.py --hidden 512 --batches 8 32 --chunks 256

Prints samples/s of the real trainer step (stateful truncated BPTT, MSE head, Adam) for every
(B, L), each the median of ``--repeats`` timed repetitions after a warm-up, all in one process so
the figures compare. Larger B and L amortise per-step overhead, but a step then covers more
samples, so an epoch makes fewer weight updates: the default is the smallest setting within a
few percent of the best throughput. Not part of the test suite.
"""

from __future__ import annotations

import argparse

from noizenet.bench import training_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--chunks", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    ap.add_argument("--mulaw", action="store_true", help="categorical head (256 levels)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"samples/s, hidden {args.hidden}, {'mu-law 256' if args.mulaw else 'MSE'}")
    print("B \\ L " + "".join(f"{c:>10}" for c in args.chunks))
    for b in args.batches:
        rates = [
            training_rate(args.hidden, args.mulaw, batch=b, chunk=c, repeats=args.repeats)
            for c in args.chunks
        ]
        print(f"{b:<6}" + "".join(f"{r:>10,.0f}" for r in rates), flush=True)


if __name__ == "__main__":
    main()
