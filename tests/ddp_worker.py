"""One rank of a distributed training run for the tests, started by torchrun.

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_worker.py \\
        CONFIG.toml RUN REPORT_DIR [--resume] [--stop-at K]

Each rank writes ``REPORT_DIR/rank{R}.json`` at exit: the loss of every step it saw, and every
file it opened for writing, renamed, created or removed (from Python's audit events), so the
test can show that only rank 0 wrote the run folder. ``--stop-at K`` asks rank 0 alone to stop
after global step K, as a SIGTERM would: every rank must stop at the same step.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
written: list[str] = []


def audit(event: str, args: tuple) -> None:
    """Record every path this process writes to (Python-level file operations)."""
    if event == "open" and len(args) >= 3:
        path, mode, flags = args[0], args[1], args[2]
        writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
        if writes and isinstance(path, str | bytes | os.PathLike):
            written.append(os.fsdecode(path))
    elif (
        event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree")
        and args
        and isinstance(args[0], str | bytes | os.PathLike)
    ):
        written.append(os.fsdecode(args[0]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("report")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--stop-at", type=int, default=0)
    args = ap.parse_args()
    rank = int(os.environ.get("RANK", 0))
    losses: list[list[float]] = []

    def report() -> None:
        Path(args.report, f"rank{rank}.json").write_text(
            json.dumps({"losses": losses, "written": [os.path.abspath(p) for p in written]})
        )

    atexit.register(report)
    sys.addaudithook(audit)

    from noizenet.config import Config
    from noizenet.errors import NoizeNetError
    from noizenet.train import train

    def attach(trainer) -> None:
        trainer.on_step.append(lambda tr, b, loss: losses.append([tr.global_step, loss]))
        if args.stop_at and rank == 0:
            trainer.on_step.append(
                lambda tr, b, loss: (
                    tr.global_step == args.stop_at and setattr(tr, "stop_signal", signal.SIGTERM)
                )
            )

    config = None if args.resume else Config.load(args.config)
    try:
        train(config, args.out, resume=args.resume, progress=False, attach=attach)
    except NoizeNetError as exc:
        print(f"rank {rank}: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
