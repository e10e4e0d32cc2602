"""Losses of one-step prediction, for any family: per sample (training), and over whole tracks
with the state carried and each chunk's ``lookback`` samples in front (validation, evaluation,
bits per sample)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def loss_name(spec: Any, configured: str) -> str:
    """The loss a model trains with: a categorical head cross-entropy whatever ``train.loss``
    says, a regression head the configured one."""
    return "ce" if spec.categorical else configured


def pad_value(spec: Any) -> float:
    """The model value of silence, fed as the input before a song starts (lookback): the middle
    level for a categorical head, 0 for a regression head."""
    return float(spec.levels // 2) if spec.categorical else 0.0


def elementwise_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample loss (no reduction), so padding can be masked out."""
    if name == "mse":
        return lambda pred, target: (pred - target).pow(2).mean(-1)
    if name == "mae":
        return lambda pred, target: (pred - target).abs().mean(-1)
    if name == "ce":  # categorical head: logits (B, T, levels), target indices (B, T, 1)
        return lambda logits, target: torch.nn.functional.cross_entropy(
            logits.flatten(0, -2), target[..., 0].long().flatten(), reduction="none"
        ).view(target.shape[:-1])
    raise ValueError(f"unknown loss {name!r}")


@torch.no_grad()
def sequence_loss_sum(
    model: Any,
    tracks: list[np.ndarray],
    loss: str,
    *,
    device: torch.device | str = "cpu",
    chunk: int = 65536,
) -> tuple[float, int]:
    """(sum of per-sample losses, samples) of one-step prediction over whole tracks.

    Each chunk's input carries the ``model.lookback`` samples before it (silence before the
    song starts, :func:`pad_value`), and the state is carried from chunk to chunk.
    """
    was_training = model.training
    model.eval()
    fn = elementwise_loss(loss)
    back = int(model.lookback)
    pad = pad_value(model.spec)
    total, count = 0.0, 0
    for v in tracks:
        v = torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(1, len(v), -1).to(device)
        if back:
            v = torch.cat([torch.full((1, back, v.shape[2]), pad, device=v.device), v], dim=1)
        n = v.shape[1] - back  # the song's own samples
        state = None
        for s in range(0, n - 1, chunk):
            stop = min(s + chunk, n - 1)
            x = v[:, s : back + stop]  # lookback + (stop - s) inputs
            y = v[:, back + s + 1 : back + stop + 1]
            pred, state = model(x, state)
            total += float(fn(pred, y).sum())
            count += y.shape[1]
    model.train(was_training)
    return total, count


def sequence_loss(model: Any, tracks: list[np.ndarray], loss: str, **options: Any) -> float:
    """Per-sample loss of one-step prediction over whole tracks, state carried across chunks
    (``options``: ``device``, ``chunk``, as :func:`sequence_loss_sum` takes them)."""
    total, count = sequence_loss_sum(model, tracks, loss, **options)
    return total / max(count, 1)


def bits_per_sample(model: Any, values: list[np.ndarray], **options: Any) -> float | None:
    """Cross-entropy of one-step prediction over encoded tracks in bits per sample (None for a
    regression head, which has no distribution)."""
    if not model.spec.categorical:
        return None
    return sequence_loss(model, values, "ce", **options) / math.log(2)
