"""Classical bits-per-sample baselines, scored on a categorical codec's own levels.

A network with a categorical head is scored by the cross-entropy of the level it must predict.
The floors beside it, cheap and fair (``../shared/samplernn-notes.md``, "Measured here"):

* no context: the training tracks' level histogram (add-one smoothed);
* a predictor (LPC-32, persistence) plus a Laplace residual: each sample's level scored by the
  Laplace distribution's mass between the level's edges, mapped back to linear amplitude; its
  scale fixed (the training residual's mean absolute value) or adaptive (the mean absolute value
  of the previous 64 residuals of the same track: backward-adaptive, as in speech codecs, no
  side information).

The predictor sees what the network sees: the past as the codec's levels decode it.
Everything is vectorised numpy (the adaptive scale is a moving average: a cumulative sum).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

WINDOW = 64  # residuals the adaptive scale averages
_MIN_SCALE = 1e-6  # relative to the codec's full scale: digital silence has a zero residual
# Mass spread evenly over all levels, as a coder's escape code: after digital silence (scale
# near 0) an onset costs at most log2(levels / ESCAPE) bits, not thousands; elsewhere it costs
# log2(1 / (1 - ESCAPE)), about 1e-4 bits a sample.
ESCAPE = 1e-4


def level_edges(codec) -> np.ndarray:
    """The amplitude edges of a categorical codec's levels, (levels + 1,) float64.

    Level ``c`` holds the amplitudes in ``(edges[c], edges[c + 1]]``; the ends are -inf and
    +inf, because the codec clips what lies beyond full scale into the end levels. Mu-law follows
    ``librosa.mu_compress(quantize=True)``: level ``c >= 1`` is the companded interval
    ``(b[c - 1], b[c]]`` of ``b = linspace(-1, 1, levels)``, and level 0 only -1 itself.
    """
    levels = int(codec.levels)
    half = levels // 2
    if codec.name == "mulaw":
        mu = levels - 1
        comp = np.linspace(-1.0, 1.0, levels)[:-1]  # the levels - 1 inner edges, companded
        inner = np.sign(comp) * np.expm1(np.abs(comp) * math.log1p(mu)) / mu
    elif codec.name == "linear-q":
        inner = (np.arange(1, levels) - half - 0.5) / half
    else:
        raise ValueError(f"codec {codec.name!r} has no quantisation levels")
    return np.concatenate([[-np.inf], inner * float(codec.scale), [np.inf]])


def laplace_level_bits(
    levels: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    edges: np.ndarray,
    *,
    escape: float = 0.0,
) -> np.ndarray:
    """``-log2`` of the Laplace(mean, scale) mass over each sample's level, (samples,) float64,
    mixed with ``escape`` spread evenly over the levels (0: the pure Laplace mass).

    Computed in log space on the side of the mean the level lies on, so a level far in the tail
    costs many bits instead of an infinite ``-log2(0)``.
    """
    c = np.asarray(levels, dtype=np.int64)
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf at the open ends
        u = (edges[c] - mean) / scale  # lower edge, in scales from the mean
        v = (edges[c + 1] - mean) / scale  # upper edge
        tail = np.log1p(-np.exp(u - v))  # log(1 - e^-(v - u)): the level's share of its tail
        above = -u + tail  # the whole level above the mean: 0.5 e^-u (1 - e^-(v-u))
        below = v + tail  # the whole level below the mean
        middle = np.log(np.clip(1.0 - 0.5 * np.exp(-v) - 0.5 * np.exp(u), 1e-300, 1.0))
    log_p = np.where(u >= 0, math.log(0.5) + above, np.where(v <= 0, math.log(0.5) + below, middle))
    if escape > 0:
        log_p = np.logaddexp(math.log1p(-escape) + log_p, math.log(escape / (edges.size - 1)))
    return -log_p / math.log(2)


def moving_scale(residual: np.ndarray, *, window: int = WINDOW, initial: float) -> np.ndarray:
    """The Laplace scale for each sample: mean ``|residual|`` of the ``window`` samples before it.

    The maximum-likelihood Laplace scale of those residuals. Before a track's start the window
    holds ``initial`` (the training residual's scale), so the first samples are not scored
    against a scale measured on one or two residuals.
    """
    a = np.abs(np.asarray(residual, dtype=np.float64))
    csum = np.concatenate([[0.0], np.cumsum(a)])
    t = np.arange(a.size)
    lo = np.maximum(t - window, 0)
    missing = window - (t - lo)  # window places before the track's first sample
    return (csum[t] - csum[lo] + missing * initial) / window


def predictor_bits(
    codec,
    tracks: list[np.ndarray],
    predict: Callable[[np.ndarray], np.ndarray],
    *,
    train: list[np.ndarray],
    adaptive: bool = True,
    window: int = WINDOW,
) -> float:
    """Mean bits/sample of ``predict`` (past -> each sample's prediction) plus a Laplace residual.

    ``predict(x)`` gets a track as the codec's levels decode it and returns the prediction of
    every sample from the ones before it. The fixed scale (and the adaptive scale's first
    value) is the mean absolute residual on ``train``. Every sample of every track is scored
    but the first of each, as the network's bits/sample are.
    """
    edges = level_edges(codec)
    floor = _MIN_SCALE * float(codec.scale)

    def residual(x: np.ndarray) -> np.ndarray:
        return x - np.asarray(predict(x), dtype=np.float64)

    decoded = [_decoded(codec, y) for y in train]
    fixed = max(float(np.mean(np.abs(np.concatenate([residual(x) for _, x in decoded])))), floor)
    bits = []
    for y in tracks:
        levels, x = _decoded(codec, y)
        r = residual(x)
        mean = x - r  # the prediction
        scale = (
            moving_scale(r, window=window, initial=fixed) if adaptive else np.full(x.size, fixed)
        )
        scale = np.maximum(scale[1:], floor)
        bits.append(laplace_level_bits(levels[1:], mean[1:], scale, edges, escape=ESCAPE))
    return float(np.mean(np.concatenate(bits)))


def histogram_bits(codec, tracks: list[np.ndarray], *, train: list[np.ndarray]) -> float:
    """Mean bits/sample of the training tracks' level histogram (add-one smoothed) on ``tracks``:
    the no-context floor (``log2(levels)`` is a uniform guess)."""
    levels = int(codec.levels)
    counts = np.ones(levels)
    for y in train:
        counts += np.bincount(_decoded(codec, y)[0], minlength=levels)
    log_p = np.log2(counts / counts.sum())
    held = np.concatenate([_decoded(codec, y)[0][1:] for y in tracks])
    return float(-np.mean(log_p[held]))


def _decoded(codec, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A track's levels (int64) and their audio values (float64): what a network sees."""
    v = codec.encode(np.asarray(y, dtype=np.float32))
    return v.astype(np.int64), codec.decode(v).astype(np.float64)


def classical_bits(
    codec, tracks: list[np.ndarray], *, a: np.ndarray, train: list[np.ndarray]
) -> dict[str, dict[str, float]]:
    """The baselines beside a categorical network, as ``evaluate`` tabulates them.

    Column -> metric -> bits/sample: LPC (coefficients ``a``) and persistence with the
    adaptive residual (``bits_per_sample``), LPC with the fixed one (``bits_fixed_scale``), and
    the level histogram of ``train`` (``bits_no_context``, in the real-audio column: a property
    of the music's levels alone).
    """
    from noizenet.analysis.metrics import lpc_prediction, persistence_prediction

    def lpc(x: np.ndarray) -> np.ndarray:
        return lpc_prediction(x, a)

    return {
        "persistence": {
            "bits_per_sample": predictor_bits(codec, tracks, persistence_prediction, train=train)
        },
        "LPC-32": {
            "bits_per_sample": predictor_bits(codec, tracks, lpc, train=train),
            "bits_fixed_scale": predictor_bits(codec, tracks, lpc, train=train, adaptive=False),
        },
        "real audio": {"bits_no_context": histogram_bits(codec, tracks, train=train)},
    }
