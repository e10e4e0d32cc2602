"""Statistics of audio read in chunks, so a corpus larger than memory can be measured.

A codec needs the mean, spread and range of its training audio; the tracks may be memory-mapped
views (:class:`~noizenet.corpus.cache.TrackAudio`) that never sit in memory whole. Moments are
computed per chunk and merged exactly (Chan et al.'s pairwise update), which also keeps the
variance accurate when the mean is large, as it is for audio with a DC offset.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK = 1 << 20  # samples read at a time: 8 MB as float64


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (``m2``), minimum and maximum of samples."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @property
    def var(self) -> float:
        return self.m2 / self.n if self.n else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    @property
    def rms(self) -> float:
        """Root mean square: sqrt(variance + mean^2)."""
        return math.sqrt(max(self.var + self.mean**2, 0.0))

    @property
    def peak(self) -> float:
        return max(abs(self.min), abs(self.max)) if self.n else 0.0

    def __add__(self, other: Moments) -> Moments:
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(
            n=n,
            mean=self.mean + delta * other.n / n,
            m2=self.m2 + other.m2 + delta * delta * self.n * other.n / n,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )

    @classmethod
    def of_array(cls, y: np.ndarray) -> Moments:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if not y.size:
            return cls()
        mean = float(y.mean())
        return cls(
            n=int(y.size),
            mean=mean,
            m2=float(np.sum((y - mean) ** 2)),
            min=float(y.min()),
            max=float(y.max()),
        )

    @classmethod
    def combine(cls, parts: Iterable[Moments]) -> Moments:
        total = cls()
        for part in parts:
            total = total + part
        return total


def moments(y: Any, *, chunk: int = CHUNK) -> Moments:
    """Moments of one track, read ``chunk`` samples at a time.

    ``y`` is anything with ``len()`` and slicing that yields samples: a numpy array, a memory map
    or a :class:`~noizenet.corpus.cache.TrackAudio`.
    """
    n = len(y)
    total = Moments()
    for start in range(0, n, chunk):
        total = total + Moments.of_array(np.asarray(y[start : min(start + chunk, n)]))
    return total
