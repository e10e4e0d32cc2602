"""Numbers about audio and runs: collapse of free-running generation, reproduction SNR."""

from __future__ import annotations

import numpy as np


def rolling_std(
    y: np.ndarray, *, sr: int = 22050, window_s: float = 0.05, hop_s: float = 0.001
) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviation of ``y`` in sliding windows, each window's own mean removed.

    Removing the mean makes a constant output (the paper's MSE models settle on a constant
    offset, not on zero) read as zero. Returns (window start times in s, std per window).
    """
    y = np.asarray(y, dtype=np.float64)
    w = max(1, round(window_s * sr))
    hop = max(1, round(hop_s * sr))
    if y.size < w:
        return np.zeros(0), np.zeros(0)
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    starts = np.arange(0, y.size - w + 1, hop)
    mean = (c1[starts + w] - c1[starts]) / w
    var = (c2[starts + w] - c2[starts]) / w - mean**2
    return starts / sr, np.sqrt(np.maximum(var, 0.0))


def collapse_time(
    y: np.ndarray,
    *,
    sr: int = 22050,
    reference_rms: float,
    window_s: float = 0.05,
    threshold: float = 0.01,
) -> float | None:
    """Seconds of generated audio until it collapses, or None if it never does.

    Collapsed means: the rolling ``window_s`` standard deviation (DC removed, see
    :func:`rolling_std`) stays below ``threshold * reference_rms`` from that point to the end.
    ``reference_rms`` is the training audio's RMS. Returns the start of the first window of that
    final quiet stretch (0.0: collapsed from the start).
    """
    times, std = rolling_std(y, sr=sr, window_s=window_s)
    if std.size == 0:
        return None
    loud = np.nonzero(std >= threshold * reference_rms)[0]
    if loud.size == 0:
        return 0.0
    if loud[-1] == std.size - 1:
        return None
    return float(times[loud[-1] + 1])
