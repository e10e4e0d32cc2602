"""Audio <-> model values, fitted on the training tracks only and saved with the run.

The paper's representation is the raw amplitude, scaled (section 5.1.5): z-score (the authors
used scikit-learn's StandardScaler, fitted per file) or min-max. ``scaling="corpus"`` fits one
scaler on all training tracks together, which keeps the relative loudness of songs;
``scaling="per-file"`` reproduces the paper, where every file is standardised by its own
statistics (a quiet song then sounds as loud as a loud one to the model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from noizenet.config import CodecConfig
from noizenet.corpus.stats import Moments, moments
from noizenet.errors import ConfigError

_MIN_SCALE = 1e-4  # below this a signal is treated as silent and has no scale of its own


@dataclass
class RawCodec:
    """Raw amplitude, one value per sample: ``value = (y - center) / scale``.

    zscore: center = mean, scale = standard deviation. minmax: center and scale map [min, max]
    to [-1, 1]. The inverse is exact up to float32 rounding.
    """

    name: str = "zscore"  # zscore | minmax
    scaling: str = "corpus"  # corpus | per-file
    center: float = 0.0  # fitted on training tracks (per-file: the mean of the files' centers)
    scale: float = 1.0
    fitted: bool = False

    kind = "regression"  # the model predicts the value itself
    dim = 1  # model values per step

    def fit(self, tracks: list[np.ndarray]) -> RawCodec:
        """Fit on training tracks only; validation and seeds never leak into the statistics.

        Tracks may be memory-mapped views: they are read in chunks, never concatenated.
        """
        if not tracks:
            raise ValueError("cannot fit a codec on no tracks")
        parts = [moments(y) for y in tracks]
        if self.scaling == "per-file":
            stats = [self._center_scale(m) for m in parts]
            self.center = float(np.mean([c for c, _ in stats]))
            self.scale = float(np.mean([s for _, s in stats]))
        else:
            self.center, self.scale = self._center_scale(Moments.combine(parts))
        self.scale = max(self.scale, _MIN_SCALE)
        self.fitted = True
        return self

    def _center_scale(self, m: Moments) -> tuple[float, float]:
        if self.name == "zscore":
            return m.mean, m.std
        return (m.max + m.min) / 2.0, (m.max - m.min) / 2.0

    def _stats(self, y: np.ndarray) -> tuple[float, float]:
        return self._center_scale(moments(y))

    def stats_for(self, y: np.ndarray | None) -> tuple[float, float]:
        """The (center, scale) used for signal ``y``: its own under per-file scaling."""
        if self.scaling == "per-file" and y is not None and y.size > 1:
            center, scale = self._stats(y)
            if scale >= _MIN_SCALE:
                return center, scale
        return self.center, self.scale

    def encode(self, y: np.ndarray, stats: tuple[float, float] | None = None) -> np.ndarray:
        """Audio (samples,) -> model values (samples,) float32."""
        center, scale = stats if stats is not None else self.stats_for(y)
        return ((np.asarray(y, dtype=np.float64) - center) / scale).astype(np.float32)

    def decode(self, v: np.ndarray, stats: tuple[float, float] | None = None) -> np.ndarray:
        """Model values -> audio float32 (no clipping: the WAV writer clips)."""
        center, scale = stats if stats is not None else (self.center, self.scale)
        return (np.asarray(v, dtype=np.float64) * scale + center).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}


def make_codec(cfg: CodecConfig) -> RawCodec:
    if cfg.name in ("zscore", "minmax"):
        return RawCodec(name=cfg.name, scaling=cfg.scaling)
    raise ConfigError(f"codec.name: unknown codec {cfg.name!r}")


def codec_from_state(state: dict[str, Any]) -> RawCodec:
    """Rebuild a fitted codec from ``run.json``."""
    try:
        codec = RawCodec(**state)
    except TypeError as exc:
        raise ConfigError(f"codec state not understood ({exc})") from None
    if codec.name not in ("zscore", "minmax") or not codec.fitted:
        raise ConfigError(f"codec state not understood: {state!r}")
    return codec
