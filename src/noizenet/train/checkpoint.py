"""Training checkpoints: the trainer's whole position in one safetensors file, and where they live.

A :class:`Checkpoint` holds every tensor a resumed run needs as named safetensors entries
(``model.*`` weights, ``optim.*`` optimizer state, ``state.*`` the streams' carried hidden state,
``rng.*`` random generator states) and everything else as JSON in the file's metadata: epoch and
step within it, loss accumulators, metrics already logged, learning rate, optimizer
hyper-parameters. Nothing is pickled, so loading a checkpoint cannot execute code; a checksum
catches truncation and tampering (:mod:`noizenet.tensorfile`).

:class:`CheckpointStore` keeps ``RUN/checkpoints/``: the last N checkpoints, named by position
(``ckpt-e0003-s000120.safetensors``: 3 epochs done, next step 120), and ``best.safetensors``, the
checkpoint with the lowest validation loss so far.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noizenet.errors import CheckpointError
from noizenet.run.weights import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
from noizenet.tensorfile import read_tensors, write_tensors

BEST = "best.safetensors"
_NAME = re.compile(r"ckpt-e(\d+)-s(\d+)\.safetensors")


@dataclass
class Checkpoint:
    """A trainer's position: tensors (CPU copies) and JSON-able metadata."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the file it was read from, if any

    @property
    def position(self) -> tuple[int, int]:
        """(epochs completed, next step within the current epoch)."""
        return int(self.meta["epoch"]), int(self.meta["step"])

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix.``, with the prefix removed."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}


def checkpoint_name(epoch: int, step: int) -> str:
    return f"ckpt-e{epoch:04d}-s{step:06d}.safetensors"


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write atomically (temp file, fsync, rename); refuses non-finite values."""

    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "trainer": json.dumps(ckpt.meta, sort_keys=True),
    }
    write_tensors(Path(path), ckpt.tensors, meta)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and check a checkpoint; every problem is a one-line :class:`CheckpointError`."""

    path = Path(path)
    tensors, meta = read_tensors(
        path, fmt=CHECKPOINT_FORMAT, versions=(CHECKPOINT_VERSION,), what="checkpoint"
    )
    try:
        trainer = json.loads(meta["trainer"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata unreadable ({exc})") from None
    needed = ("epoch", "step", "global_step", "progress", "history", "optimizer", "rng", "spec")
    missing = [k for k in needed if not isinstance(trainer, dict) or k not in trainer]
    if missing:
        raise CheckpointError(f"{path}: checkpoint metadata lacks {', '.join(missing)}")
    return Checkpoint(tensors, trainer, path)


def share_checkpoint(dist: Any, ckpt: Checkpoint | None) -> Checkpoint | None:
    """Rank 0's checkpoint (or None) on every rank, sent as safetensors bytes and JSON, never
    pickled; only rank 0 needs to see the run folder."""
    if not dist.enabled:
        return ckpt
    from safetensors.torch import load, save

    meta = dist.broadcast_json(None if ckpt is None else ckpt.meta)
    if meta is None:
        return None
    data = dist.broadcast_bytes(save(ckpt.tensors) if ckpt is not None else None)
    if ckpt is not None:
        return ckpt
    return Checkpoint(load(data), meta)


# -- flattening torch objects into named tensors + JSON --------------------------------------
def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as ``optim.<param>.<key>`` tensors, hyper-parameters as JSON."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for idx, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().clone()
            else:
                other.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "state": other}


def optimizer_from_flat(opt: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    """Restore what :func:`optimizer_to_flat` saved into a fresh optimizer of the same kind."""
    saved = ckpt.meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for name, value in ckpt.section("optim").items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value.clone()
    for idx, entries in saved["state"].items():
        state.setdefault(int(idx), {}).update(entries)
    groups = []
    for current, group in zip(opt.param_groups, saved["param_groups"], strict=True):
        # JSON turned tuples (Adam's betas) into lists; give them back their type
        groups.append(
            {k: tuple(v) if isinstance(current.get(k), tuple) else v for k, v in group.items()}
        )
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_to_flat() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every random generator training may draw from: torch CPU (dropout), CUDA, MPS, numpy's
    global generator and Python's ``random``."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        tensors["rng.mps"] = torch.mps.get_rng_state()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64).copy())
    version, py_state, py_gauss = random.getstate()
    meta = {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(py_state), py_gauss],
    }
    return tensors, meta


def rng_from_flat(ckpt: Checkpoint) -> None:
    t = ckpt.tensors
    torch.set_rng_state(t["rng.torch"].clone())
    cuda = [t[f"rng.cuda.{i}"] for i in range(len(t)) if f"rng.cuda.{i}" in t]
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    if (
        "rng.mps" in t
        and getattr(torch.backends, "mps", None)
        and torch.backends.mps.is_available()
    ):
        torch.mps.set_rng_state(t["rng.mps"])
    kind, pos, has_gauss, gauss = ckpt.meta["rng"]["numpy"]
    keys = t["rng.numpy"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))
    version, py_state, py_gauss = ckpt.meta["rng"]["python"]
    random.setstate((version, tuple(py_state), py_gauss))


def _position(path: Path) -> tuple[int, int] | None:
    """A checkpoint file's (epoch, step), read from its metadata alone; None if unreadable."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            trainer = json.loads((fh.metadata() or {})["trainer"])
        return int(trainer["epoch"]), int(trainer["step"])
    except Exception:  # missing, torn or foreign: no position
        return None


# -- the checkpoints folder -----------------------------------------------------------------
class CheckpointStore:
    """``RUN/checkpoints``: the last ``keep`` checkpoints by position, plus the best."""

    def __init__(self, folder: Path, *, keep: int) -> None:
        self.folder = Path(folder)
        self.keep = keep

    def paths(self) -> list[Path]:
        """Checkpoints oldest first (by epoch, then step), the best excluded."""
        if not self.folder.is_dir():
            return []
        found = []
        for p in self.folder.iterdir():
            m = _NAME.fullmatch(p.name)
            if m:
                found.append(((int(m[1]), int(m[2])), p))
        return [p for _, p in sorted(found)]

    def write(self, ckpt: Checkpoint, *, best: bool = False) -> Path:
        """Write ``ckpt`` under its position's name (and as the best), then prune old ones."""
        path = self.folder / checkpoint_name(*ckpt.position)
        save_checkpoint(path, ckpt)
        if best:
            save_checkpoint(self.folder / BEST, ckpt)
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def drop_after(self, position: tuple[int, int]) -> None:
        """Delete checkpoints later than ``position``: after a rollback, or a resume from an
        earlier checkpoint than the newest (one that failed to load), they are a dead branch.
        The best checkpoint too when it is later: a best from that branch would be stale (the
        branch training continues on may never reach its loss, and would keep it forever)."""
        for p in self.paths():
            m = _NAME.fullmatch(p.name)
            assert m is not None
            if (int(m[1]), int(m[2])) > position:
                p.unlink(missing_ok=True)
        best = self.folder / BEST
        at = _position(best)
        if best.is_file() and (at is None or at > position):
            best.unlink(missing_ok=True)

    def clean_temporaries(self) -> None:
        """Remove temp files a killed write left behind (they never look like checkpoints)."""
        if self.folder.is_dir():
            for p in self.folder.glob(".*.tmp*"):
                p.unlink(missing_ok=True)

    def latest(self, *, log: Any = None) -> Checkpoint | None:
        """The newest checkpoint that loads and checks out; unreadable ones are reported and
        passed over (an older checkpoint resumes to the same result, only later)."""
        for p in reversed(self.paths()):
            try:
                return load_checkpoint(p)
            except CheckpointError as exc:
                if log is not None:
                    log(f"skipping {exc}")
        return None
