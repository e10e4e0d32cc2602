"""``model.safetensors``: a run's weights, with the model spec in their metadata.

Format 2 requires the checksum (:mod:`noizenet.tensorfile`). Format 1 files, written before the
checksum was required, still load with a :class:`~noizenet.tensorfile.LegacyFormatWarning`
naming the file: a format-1 file whose checksum key was deleted could not be told from one
written before checksums existed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass
class SavedWeights:
    """A network's weights as read from a file, as numpy arrays (no torch needed): enough for a
    family's fast kernel, and :meth:`model` builds the network when one is needed."""

    path: Path
    spec: Any
    arrays: dict[str, Any]  # state-dict names -> numpy arrays
    epochs: int | None  # a checkpoint says how many epochs it had completed; weights do not

    def kernel(self) -> Any:
        """The family's fast generation path on these weights, or None (it has none).

        Weights that do not fit their spec raise :class:`~noizenet.errors.CheckpointError`
        naming the file, as :meth:`model` does.
        """
        from noizenet.models import family_of

        try:
            return family_of(self.spec).kernel(self.spec, self.arrays)
        except (KeyError, ValueError) as exc:
            raise _mismatch(self.path, exc) from None

    def model(self) -> Any:
        """The network around these weights, in eval mode (imports torch)."""
        import torch

        from noizenet.models import build

        try:
            model = build(self.spec)
            model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.arrays.items()})
        except Exception as exc:
            raise _mismatch(self.path, exc) from None
        return model.eval()

    def generation_path(self) -> Any:
        """How to run these weights (``(forced, n_free, sampling, carry=None) -> (pred, out)``):
        the family's fast kernel on the arrays, or the network's reference path for a family
        without one (slow but correct; only then is torch imported)."""
        from noizenet.models import generation_path

        return generation_path(self.kernel(), self.model)


def _mismatch(path: Path | None, exc: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: weights do not match their model spec ({one_line(exc)})")


def read_weights(path: Path, *, checkpoints: bool = True) -> SavedWeights:
    """Read a weights file, or a training checkpoint's ``model.*`` tensors (``checkpoints``),
    checking format, version, checksum, spec and finiteness; never unpickles, never imports
    torch. Every problem raises :class:`~noizenet.errors.CheckpointError` naming the file."""
    path = Path(path)
    if checkpoints and file_format(path) == CHECKPOINT_FORMAT:
        tensors, meta = read_tensors(path, fmt=CHECKPOINT_FORMAT, versions=(CHECKPOINT_VERSION,),
                                     what="checkpoint", arrays=True)  # fmt: skip
        try:
            trainer = json.loads(meta["trainer"])
            raw, epochs = trainer["spec"], int(trainer["epoch"])
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: checkpoint metadata unreadable ({exc})") from None
        arrays = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    else:
        arrays, meta = read_tensors(path, fmt=WEIGHTS_FORMAT, what="weights", arrays=True,
                                    versions=(WEIGHTS_VERSION, *LEGACY_WEIGHTS_VERSIONS),
                                    legacy=LEGACY_WEIGHTS_VERSIONS)  # fmt: skip
        try:
            raw, epochs = json.loads(meta["spec"]), None
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: weights have no readable model spec ({exc})") from None
    from noizenet.models import spec_from_dict

    try:
        spec = spec_from_dict(raw)
    except Exception as exc:
        raise _mismatch(path, exc) from None
    import numpy as np

    if not all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"):
        raise CheckpointError(f"{path}: weights contain non-finite values")
    return SavedWeights(path, spec, arrays, epochs)


def load_model(path: Path) -> Any:
    """Rebuild a model (of its family) from a weights file (never unpickles).

    A missing, truncated, tampered (checksum), foreign or incompatible file, a format-2 file
    without its checksum, or weights that do not fit their spec, raise
    :class:`~noizenet.errors.CheckpointError` naming the file.
    """
    return read_weights(path, checkpoints=False).model()


def load_model_file(path: Path) -> tuple[Any, int | None]:
    """A model from a weights file or from a training checkpoint (its ``model.*`` tensors), and
    the epochs a checkpoint says it had completed (None for a weights file: it does not say)."""
    saved = read_weights(path)
    return saved.model(), saved.epochs


def file_format(path: Path) -> str | None:
    """The ``format`` a NoizeNet safetensors file says it has (None: unreadable or foreign)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            return (fh.metadata() or {}).get("format")
    except Exception:  # unreadable: the full read that follows says why, in one line
        return None
