"""Safe tensor files: safetensors with a checksum, read with one-line errors naming the file.

Weights (``model.safetensors``) and training checkpoints are both written here. safetensors holds
plain tensors and string metadata and never executes code on load, but it has no checksum: a
flipped byte in the data reads back as a different number. We store a SHA-256 of the metadata and
of every tensor's name, dtype, shape and bytes, and check it on load, so truncation and tampering
are caught, not trained or generated from.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from noizenet.errors import CheckpointError
from noizenet.io import atomic_path

DIGEST_KEY = "sha256"


class LegacyFormatWarning(UserWarning):
    """A file in an older format that still loads, but with weaker guarantees."""


def tensor_digest(tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> str:
    """SHA-256 over the metadata (but the digest itself) and every tensor's name, dtype, shape
    and raw bytes, in name order. Torch tensors and numpy arrays of the same values give the
    same digest (the dtype is named as torch names it), so a file read either way is checked."""
    h = hashlib.sha256()
    for key in sorted(metadata or {}):
        if key != DIGEST_KEY:
            h.update(f"{len(key)}:{key}={len(metadata[key])}:{metadata[key]};".encode())
    for name in sorted(tensors):
        dtype, shape, raw = _layout(tensors[name])
        h.update(f"{name}|{dtype}|{shape}|".encode())
        h.update(raw)
    return h.hexdigest()


def _layout(t: Any) -> tuple[str, tuple[int, ...], bytes]:
    """(torch's dtype name, shape, contiguous little-endian bytes) of a tensor or an array."""
    import numpy as np

    if isinstance(t, np.ndarray):  # (ascontiguousarray would make a 0-d array 1-d)
        return f"torch.{t.dtype.name}", tuple(t.shape), t.tobytes(order="C")
    import torch

    t = t.detach().cpu().contiguous()
    return str(t.dtype), tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy().tobytes()


def write_tensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    """Write ``tensors`` (CPU, contiguous) and ``metadata`` atomically, with their digest.

    Refuses non-finite floating-point values: a NaN must never reach a file we later load.
    """
    import torch
    from safetensors.torch import save_file

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    for name, t in clean.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: refusing to write non-finite values in {name!r}")
    meta = {**metadata, DIGEST_KEY: tensor_digest(clean, metadata)}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=meta)


def read_tensors(
    path: Path,
    *,
    fmt: str,
    versions: tuple[str, ...],
    what: str,
    legacy: tuple[str, ...] = (),
    arrays: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a file written by :func:`write_tensors`, checking everything that can be checked.

    ``fmt`` is the expected ``format`` metadata (a foreign safetensors file lacks it),
    ``versions`` the ``format_version`` values this code reads, ``what`` names the kind of file
    in messages; ``arrays``: numpy arrays instead of torch tensors (no torch import). The
    checksum is required, except in ``legacy`` versions (a subset of
    ``versions``, from before the checksum was added): those still load, with a warning naming
    the file, since deleting their checksum key would go unnoticed. Every problem raises
    :class:`~noizenet.errors.CheckpointError`, one line, naming ``path``.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    try:
        with safe_open(str(path), framework="numpy" if arrays else "pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
            if arrays:  # safetensors reads a 0-d tensor into numpy as shape (1,)
                import numpy as np

                tensors = {
                    k: np.reshape(a, tuple(fh.get_slice(k).get_shape())) for k, a in tensors.items()
                }
    except Exception as exc:  # safetensors raises several types for one meaning: unreadable
        raise CheckpointError(
            f"{path}: not a readable safetensors file, truncated or corrupted ({one_line(exc)})"
        ) from None
    if meta.get("format") != fmt:
        found = meta.get("format")
        kind = f"a {found!r} file" if found else "a safetensors file from another program"
        raise CheckpointError(f"{path}: not a NoizeNet {what} file ({kind})")
    if meta.get("format_version") not in versions:
        raise CheckpointError(
            f"{path}: {what} format version {meta.get('format_version')!r} is not supported "
            f"(this NoizeNet reads {', '.join(versions)})"
        )
    digest = meta.get(DIGEST_KEY)
    version = meta["format_version"]
    if version in legacy:
        checked = "checksum verified" if digest is not None else "no checksum"
        warnings.warn(
            f"{path}: {what} format version {version} from an older NoizeNet ({checked}); "
            "it loads, but only newer files must carry a checksum",
            LegacyFormatWarning,
            stacklevel=3,
        )
    elif digest is None:
        raise CheckpointError(
            f"{path}: {what} file (format version {version}) has no checksum; it cannot be trusted"
        )
    if digest is not None and digest != tensor_digest(tensors, meta):
        raise CheckpointError(
            f"{path}: checksum mismatch, the {what} file was corrupted or modified"
        )
    return tensors, meta


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one short line (library messages can span many)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
