"""A training process for the resume tests, which kills itself with SIGKILL at a chosen point.

    python resume_worker.py CONFIG.toml RUN [--resume] [--kill WHERE]

WHERE is ``step:K`` (after the K-th training step, before its checkpoint if one is due),
``checkpoint:E:S`` (right after the checkpoint at epoch E step S is on disk) or ``epoch:K``
(after epoch K's metrics line is written, before its checkpoint). SIGKILL gives the process no
chance to clean up, like a crash, an OOM kill or a pulled plug.
"""

from __future__ import annotations

import argparse
import os
import signal

from noizenet.config import Config
from noizenet.train import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--kill", default=None)
    args = ap.parse_args()

    def die(*_: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def attach(trainer) -> None:
        if args.kill is None:
            return
        kind, *nums = args.kill.split(":")
        n = [int(x) for x in nums]
        if kind == "step":
            trainer.on_step.append(lambda tr, b, loss: tr.global_step == n[0] and die())
        elif kind == "checkpoint":
            # runs after the run folder's own callback has written the file
            trainer.on_checkpoint.append(lambda tr, c, best: c.position == tuple(n) and die())
        elif kind == "epoch":
            trainer.on_epoch.append(lambda tr, r: r.epoch == n[0] and die())
        else:
            raise SystemExit(f"unknown kill point {args.kill}")

    config = None if args.resume else Config.load(args.config)
    train(config, args.out, resume=args.resume, progress=False, attach=attach)


if __name__ == "__main__":
    main()
