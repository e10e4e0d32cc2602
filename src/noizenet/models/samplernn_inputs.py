"""Generation inputs shared by SampleRNN's reference path and its numba kernel (a module of
its own, so that neither imports the other): the checked seed and draws, and the padded sequence
both paths write the take into. ``spec`` is a :class:`~noizenet.models.samplernn.SampleRNNSpec`
(only its ``levels`` and ``lookback`` are read)."""

from __future__ import annotations

from typing import Any

import numpy as np

from noizenet.sampling import Sampling


def _prepare(spec: Any, forced: np.ndarray, n_free: int, sampling: Sampling) -> tuple:
    """Check and normalise the generation inputs shared by the reference path and the kernel:
    (forced (B, T) int64, B, T, per-stream (start, end) temperatures, uniforms, level values)."""
    forced = np.atleast_2d(np.asarray(forced)).astype(np.int64)
    if forced.ndim != 2 or forced.shape[1] < 1:
        raise ValueError(f"forced: expected class indices (streams, time), got {forced.shape}")
    if forced.min() < 0 or forced.max() >= spec.levels:
        raise ValueError(f"forced: class indices must lie in [0, {spec.levels})")
    B, T = forced.shape
    args = sampling.categorical_args(B, n_free, levels=spec.levels)
    return forced, B, T, args["temperature"], args["uniforms"], args["level_values"]


def _padded(spec: Any, forced: np.ndarray, n_free: int) -> np.ndarray:
    """(B, lookback + T + n_free) int64: middle-level padding, the seed, room for the take."""
    B, T = forced.shape
    seq = np.full((B, spec.lookback + T + max(n_free, 0)), spec.levels // 2, np.int64)
    seq[:, spec.lookback : spec.lookback + T] = forced
    return seq
