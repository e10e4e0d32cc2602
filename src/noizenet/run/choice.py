"""Which weights of a run generate: ``--checkpoint last|best|epoch:N|PATH``.

``last`` is ``model.safetensors`` (the weights after the last epoch, or where training
stopped); ``epoch:N`` the weights kept after epoch N (``weights/epoch-NNNN.safetensors``);
``best`` the epoch with the lowest validation loss in ``metrics.jsonl``. That file is
rewritten on every rollback and resume to the epochs of the branch training is on, and the
epoch weights of a dropped branch are deleted with their lines, so ``best`` is read from what
is there rather than remembered: it cannot go stale. A PATH is a weights file, or a training
checkpoint (its model weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noizenet.config import CheckpointChoice, parse_checkpoint
from noizenet.errors import ConfigError
from noizenet.run.weights import CHECKPOINT_FORMAT, file_format, read_weights


@dataclass(frozen=True)
class Weights:
    """The weights a take is made from, and what its name and metadata say about them."""

    choice: str  # the setting as given: last, best, epoch:3, or the path
    path: Path
    epochs: int  # epochs those weights had trained (0 where a file does not say)
    tag: str | None  # the take name's checkpoint field (None: last, the run's own weights)

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.choice, "weights": str(self.path), "epochs": self.epochs}


def choose_weights(run: Any, checkpoint: str | CheckpointChoice = "last") -> Weights:
    """Resolve ``checkpoint`` for the opened run ``run``; a choice the folder cannot give
    (no such epoch, no validation loss, a missing file) raises a one-line
    :class:`~noizenet.errors.ConfigError` naming ``generation.checkpoint``."""
    choice = (
        checkpoint if isinstance(checkpoint, CheckpointChoice) else parse_checkpoint(checkpoint)
    )
    paths = run.paths
    if choice.kind == "last":
        return Weights("last", paths.weights, run.info.epochs_done, None)
    if choice.kind == "epoch":
        return _epoch(run, choice.epoch, choice.text, choice.tag)
    if choice.kind == "best":
        epoch = best_epoch(run.metrics())
        if epoch is None:
            raise ConfigError(
                f"generation.checkpoint: best: {run.path} has no epoch with a validation loss "
                "(no validation tracks, or none finite); use last or epoch:N"
            )
        return _epoch(run, epoch, "best", choice.tag)
    path = Path(choice.path)
    if not path.is_file():
        raise ConfigError(f"generation.checkpoint: {path}: no such weights file")
    epochs = 0
    kept = {p.resolve(): n for n, p in paths.epoch_weights_kept().items()}
    if path.resolve() in kept:
        epochs = kept[path.resolve()]
    elif path.resolve() == paths.weights.resolve():
        epochs = run.info.epochs_done
    elif file_format(path) == CHECKPOINT_FORMAT:
        epochs = read_weights(path).epochs or 0
    return Weights(str(path), path, epochs, choice.tag)


def best_epoch(records: list[dict[str, Any]]) -> int | None:
    """The epoch with the lowest finite validation loss (the first of equals), or None."""
    best: tuple[float, int] | None = None
    for r in records:
        loss = r.get("val_loss")
        if isinstance(loss, int | float) and math.isfinite(loss):
            key = (float(loss), int(r["epoch"]))
            best = key if best is None or key < best else best
    return None if best is None else best[1]


def _epoch(run: Any, epoch: int, choice: str, tag: str) -> Weights:
    done = run.info.epochs_done
    if epoch > done:
        raise ConfigError(
            f"generation.checkpoint: {choice}: {run.path} has trained {done} epochs"
            + (f" (choose epoch:1 ... epoch:{done})" if done else "")
        )
    path = run.paths.epoch_weights(epoch)
    if not path.is_file():
        what = "" if choice.startswith("epoch") else " (the best epoch)"
        raise ConfigError(
            f"generation.checkpoint: {choice}: {run.path} keeps no weights of epoch {epoch}"
            f"{what}: {path.name} is missing (trained before runs kept every epoch's weights); "
            "use last or the PATH of a checkpoint"
        )
    return Weights(choice, path, epoch, tag)
