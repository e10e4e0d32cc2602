"""``model.safetensors``: a run's weights, with the model spec in their metadata.

Format 2 requires the checksum (:mod:`noizenet.tensorfile`). Format 1 files, written before the
checksum was required, still load with a :class:`~noizenet.tensorfile.LegacyFormatWarning`
naming the file: a format-1 file whose checksum key was deleted could not be told from one
written before checksums existed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from noizenet.errors import CheckpointError
from noizenet.tensorfile import one_line, read_tensors, write_tensors

WEIGHTS_FORMAT = "noizenet-weights"
WEIGHTS_VERSION = "2"
LEGACY_WEIGHTS_VERSIONS = ("1",)
# training checkpoints (:mod:`noizenet.train.checkpoint`) hold weights too, read here as well
CHECKPOINT_FORMAT = "noizenet-checkpoint"
CHECKPOINT_VERSION = "1"


def save_weights(path: Path, model: Any) -> None:
    """Write the model's weights and spec atomically as safetensors, with a checksum.

    Refuses non-finite weights (:class:`~noizenet.errors.CheckpointError`).
    """
    meta = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_VERSION,
        "spec": json.dumps(model.spec.to_dict()),
    }
    write_tensors(Path(path), model.state_dict(), meta)


def load_model(path: Path) -> Any:
    """Rebuild a model (of its family) from a safetensors file (never unpickles).

    A missing, truncated, tampered (checksum), foreign or incompatible file, a format-2 file
    without its checksum, or weights that do not fit their spec, raise
    :class:`~noizenet.errors.CheckpointError` naming the file.
    """
    path = Path(path)
    tensors, meta = read_tensors(
        path,
        fmt=WEIGHTS_FORMAT,
        versions=(WEIGHTS_VERSION, *LEGACY_WEIGHTS_VERSIONS),
        what="weights",
        legacy=LEGACY_WEIGHTS_VERSIONS,
    )
    try:
        raw = json.loads(meta["spec"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: weights have no readable model spec ({exc})") from None
    return _model(path, raw, tensors)


def load_model_file(path: Path) -> tuple[Any, int | None]:
    """A model from a weights file or from a training checkpoint (its ``model.*`` tensors), and
    the epochs a checkpoint says it had completed (None for a weights file: it does not say)."""
    path = Path(path)
    if file_format(path) != CHECKPOINT_FORMAT:
        return load_model(path), None
    tensors, meta = read_tensors(
        path, fmt=CHECKPOINT_FORMAT, versions=(CHECKPOINT_VERSION,), what="checkpoint"
    )
    try:
        trainer = json.loads(meta["trainer"])
        raw, epochs = trainer["spec"], int(trainer["epoch"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata unreadable ({exc})") from None
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    return _model(path, raw, weights), epochs


def file_format(path: Path) -> str | None:
    """The ``format`` a NoizeNet safetensors file says it has (None: unreadable or foreign)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("format")
    except Exception:  # unreadable: the full read that follows says why, in one line
        return None


def _model(path: Path, raw: Any, tensors: dict[str, Any]) -> Any:
    import torch

    from noizenet.models import build, spec_from_dict

    try:
        model = build(spec_from_dict(raw))
        model.load_state_dict(tensors, strict=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: weights do not match their model spec ({one_line(exc)})"
        ) from None
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise CheckpointError(f"{path}: weights contain non-finite values")
    model.eval()
    return model
