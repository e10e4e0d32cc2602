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
    import torch

    from noizenet.models import build, spec_from_dict

    path = Path(path)
    tensors, meta = read_tensors(
        path,
        fmt=WEIGHTS_FORMAT,
        versions=(WEIGHTS_VERSION, *LEGACY_WEIGHTS_VERSIONS),
        what="weights",
        legacy=LEGACY_WEIGHTS_VERSIONS,
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
