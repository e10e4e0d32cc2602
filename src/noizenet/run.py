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
    """Write the model's weights and spec atomically as safetensors."""
    from safetensors.torch import save_file

    from noizenet.io import atomic_path

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_VERSION,
        "spec": json.dumps(model.spec.to_dict()),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_model(path: Path) -> Any:
    """Rebuild a :class:`~noizenet.models.NoizeNet` from a safetensors file (never unpickles)."""
    from safetensors import safe_open

    from noizenet.models import ModelSpec, NoizeNet

    path = Path(path)
    if not path.is_file():
        raise NoizeNetError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except Exception as exc:
        raise NoizeNetError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise NoizeNetError(f"{path}: not a NoizeNet weights file")
    if meta.get("format_version") != WEIGHTS_VERSION:
        raise NoizeNetError(
            f"{path}: weights format version {meta.get('format_version')!r} "
            f"is not supported (this NoizeNet reads {WEIGHTS_VERSION})"
        )
    try:
        spec = ModelSpec(**json.loads(meta["spec"]))
        model = NoizeNet(spec)
        model.load_state_dict(tensors, strict=True)
    except Exception as exc:
        raise NoizeNetError(f"{path}: weights do not match their model spec ({exc})") from None
    model.eval()
    return model


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
        try:
            info = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise NoizeNetError(f"{path / 'run.json'}: unreadable ({exc})") from None
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

        return codec_from_state(self.info["codec"])

    def metrics(self) -> list[dict[str, Any]]:
        from noizenet.io import read_jsonl

        p = self.path / "metrics.jsonl"
        return read_jsonl(p) if p.is_file() else []

    @property
    def name(self) -> str:
        return self.path.name
