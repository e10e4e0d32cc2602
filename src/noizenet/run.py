"""A run folder: the unit users share, resume, compare and generate from.

``config.toml`` (full resolved settings), ``model.safetensors`` (weights, with the model spec in
its metadata), ``run.json`` (codec statistics, sample rate, versions, seed, corpus, metrics),
``metrics.jsonl`` (one line per epoch), ``figures/*.png`` and ``audio/*.wav``.

Weights are only ever read through safetensors and metadata through JSON/TOML: loading a run
never executes code from it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noizenet.config import Config
from noizenet.errors import NoizeNetError

WEIGHTS_FORMAT = "noizenet-weights"
WEIGHTS_VERSION = "1"


def versions() -> dict[str, str]:
    import numpy
    import torch

    from noizenet import __version__

    return {
        "noizenet": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def save_weights(path: Path, model: Any) -> None:
    """Write the model's weights and spec atomically as safetensors, with a checksum.

    Refuses non-finite weights (:class:`~noizenet.errors.CheckpointError`).
    """
    from noizenet.tensorfile import write_tensors

    meta = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_VERSION,
        "spec": json.dumps(model.spec.to_dict()),
    }
    write_tensors(Path(path), model.state_dict(), meta)


def load_model(path: Path) -> Any:
    """Rebuild a model (of its family) from a safetensors file (never unpickles).

    A missing, truncated, tampered (checksum), foreign or incompatible file, or weights that do
    not fit their spec, raise :class:`~noizenet.errors.CheckpointError` naming the file.
    """
    import torch

    from noizenet.errors import CheckpointError
    from noizenet.models import build, spec_from_dict
    from noizenet.tensorfile import one_line, read_tensors

    path = Path(path)
    # files written before weights carried a checksum are still read (version 1 had none)
    tensors, meta = read_tensors(
        path, fmt=WEIGHTS_FORMAT, versions=(WEIGHTS_VERSION,), what="weights", require_digest=False
    )
    try:
        model = build(spec_from_dict(json.loads(meta["spec"])))
        model.load_state_dict(tensors, strict=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: weights do not match their model spec ({one_line(exc)})"
        ) from None
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise CheckpointError(f"{path}: weights contain non-finite values")
    model.eval()
    return model


REQUIRED_INFO = {"sample_rate": int, "codec": dict}


def read_run_info(path: Path) -> dict[str, Any]:
    """``run.json`` as a dict, checked for what generation needs; one-line errors naming it."""
    from noizenet.tensorfile import one_line

    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NoizeNetError(f"{path}: unreadable ({one_line(exc)})") from None
    if not isinstance(info, dict):
        raise NoizeNetError(f"{path}: expected a JSON object, got {type(info).__name__}")
    for key, kind in REQUIRED_INFO.items():
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            raise NoizeNetError(f"{path}: missing or invalid {key!r}")
    if info["sample_rate"] <= 0:
        raise NoizeNetError(f"{path}: invalid sample_rate {info['sample_rate']!r}")
    return info


@dataclass
class Run:
    """An existing run folder, opened for generation, reproduction or reporting."""

    path: Path
    config: Config
    info: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Run:
        path = Path(path)
        if not (path / "run.json").is_file():
            raise NoizeNetError(f"{path}: not a NoizeNet run folder (no run.json)")
        info = read_run_info(path / "run.json")
        config = Config.load(path / "config.toml")
        return cls(path, config, info)

    @property
    def sr(self) -> int:
        return int(self.info["sample_rate"])

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    def model(self) -> Any:
        return load_model(self.weights)

    def codec(self) -> Any:
        from noizenet.codecs import codec_from_state

        try:
            return codec_from_state(self.info["codec"])
        except (NoizeNetError, ValueError, TypeError, KeyError) as exc:
            raise NoizeNetError(f"{self.path / 'run.json'}: codec: {exc}") from None

    def metrics(self) -> list[dict[str, Any]]:
        from noizenet.io import read_jsonl

        p = self.path / "metrics.jsonl"
        return read_jsonl(p) if p.is_file() else []

    @property
    def name(self) -> str:
        return self.path.name
