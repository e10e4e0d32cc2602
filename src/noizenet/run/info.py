"""``run.json``, typed: what a run knows about itself besides its settings and weights.

Read back tolerantly: a run.json from an older NoizeNet (fewer keys) or a newer one (more keys)
still opens. A known key whose value has the wrong type reads as its default, and keys this
version does not know are kept and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError
from noizenet.io import atomic_write_json
from noizenet.tensorfile import one_line

STATUSES = ("training", "complete", "interrupted", "diverged", "time-limit")


def versions() -> dict[str, str]:
    """The versions that made a run (noizenet, torch, numpy, python), for its provenance."""
    import numpy
    import torch

    from noizenet import __version__

    return {
        "noizenet": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


@dataclass
class RunInfo:
    """The contents of ``run.json``; training writes it, every other verb reads it."""

    status: str = "training"  # one of STATUSES
    created: str = ""  # local time the run started, ISO 8601
    seed: int = 0  # the run's random seed (config ``seed``)
    sample_rate: int = 0  # Hz; 0 only in a run.json that lacks it
    codec: dict[str, Any] = field(default_factory=dict)  # the fitted codec's state
    model: dict[str, Any] = field(default_factory=dict)  # the model spec
    parameters: int = 0  # trainable parameters
    train_rms: float = 0.1  # RMS of the training audio: the level noise seeds are scaled to
    device: str = ""
    precision: str = "fp32"
    distributed: dict[str, Any] = field(default_factory=dict)  # world_size, backend
    versions: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)  # source, train, val, skipped, cache
    metrics: dict[str, Any] = field(default_factory=dict)  # the last epoch's figures
    resumed: list[str] = field(default_factory=list)  # times the run was resumed
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunInfo:
        """Known keys of the right type become fields; the rest is kept in ``extra``."""
        info = cls()
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        for key, value in raw.items():
            f = known.get(key)
            if f is None:
                info.extra[key] = value
            elif _fits(value, getattr(info, key)):
                setattr(info, key, float(value) if key == "train_rms" else value)
        return info

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        extra = out.pop("extra")
        if not out["resumed"]:
            del out["resumed"]  # as runs that were never resumed always wrote it
        return {**out, **{k: v for k, v in extra.items() if k not in out}}

    # -- what other verbs ask of it ------------------------------------------------------------
    @property
    def epochs_done(self) -> int:
        epochs = self.metrics.get("epochs", 0)
        return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else 0

    def tracks(self, split: str) -> list[dict[str, Any]]:
        """The corpus entries of one split (``train``, ``val``, ``skipped``)."""
        return [e for e in self.corpus.get(split) or [] if isinstance(e, dict)]


def _fits(value: Any, default: Any) -> bool:
    """True when ``value`` has the type of the field's ``default`` (an int is a float too)."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def read_run_info(path: str | Path, *, strict: bool = True) -> RunInfo:
    """``run.json``, read with one-line errors naming it.

    ``strict`` (generation, training, evaluation) also insists on what generating needs: a
    positive ``sample_rate`` and a ``codec``. A report reads with ``strict=False``, so that it can
    show any run, even one that never finished its first epoch.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NoizeNetError(f"{path}: unreadable ({one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise NoizeNetError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    info = RunInfo.from_dict(raw)
    if strict:
        for key, kind in (("sample_rate", int), ("codec", dict)):
            if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
                raise NoizeNetError(f"{path}: missing or invalid {key!r}")
        if info.sample_rate <= 0:
            raise NoizeNetError(f"{path}: invalid sample_rate {info.sample_rate!r}")
    return info


def write_run_info(path: str | Path, info: RunInfo) -> None:
    """Write ``run.json`` atomically (a reader never sees half of it)."""
    atomic_write_json(Path(path), info.to_dict())
