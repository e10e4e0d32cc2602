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
    hop = 1  # audio samples per model step

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


@dataclass
class QuantCodec:
    """Quantised amplitude, one class index per sample: mu-law (``mulaw``) or linear (``linear-q``).

    The field's answer to the collapse of MSE models (WaveNet, SampleRNN): predict a distribution
    over ``levels`` classes and sample from it. Audio is divided by the training corpus's peak
    (fitted once over the corpus, never per file or batch, so loudness relations survive), then
    companded (mu-law, librosa's ``mu_compress``) or not (linear), and quantised. Silence maps to
    the middle level, ``levels // 2``. Indices travel as float32 (exact up to 2**24).
    """

    name: str = "mulaw"  # mulaw | linear-q
    levels: int = 256
    scale: float = 1.0  # training corpus peak |y|
    fitted: bool = False

    kind = "categorical"
    dim = 1
    hop = 1

    def fit(self, tracks: list[np.ndarray]) -> QuantCodec:
        if not tracks:
            raise ValueError("cannot fit a codec on no tracks")
        peak = Moments.combine(moments(y) for y in tracks).peak  # chunked: may be memory maps
        self.scale = peak if peak > _MIN_SCALE else 1.0
        self.fitted = True
        return self

    def stats_for(self, y: np.ndarray | None) -> None:
        return None

    def encode(self, y: np.ndarray, stats: Any = None) -> np.ndarray:
        """Audio (samples,) -> class indices (samples,) as float32."""
        x = np.clip(np.asarray(y, dtype=np.float64) / self.scale, -1.0, 1.0)
        half = self.levels // 2
        if self.name == "mulaw":
            import librosa

            q = librosa.mu_compress(x, mu=self.levels - 1, quantize=True)
        else:
            q = np.round(x * half)
        return np.clip(q + half, 0, self.levels - 1).astype(np.float32)

    def decode(self, v: np.ndarray, stats: Any = None) -> np.ndarray:
        """Class indices -> audio float32."""
        half = self.levels // 2
        q = np.asarray(v, dtype=np.float64).round() - half
        if self.name == "mulaw":
            import librosa

            x = librosa.mu_expand(q, mu=self.levels - 1, quantize=True)
        else:
            x = q / half
        return (x * self.scale).astype(np.float32)

    def level_values(self) -> np.ndarray:
        """The audio value of every class, (levels,) float32."""
        return self.decode(np.arange(self.levels, dtype=np.float32))

    def state(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FFTCodec:
    """Blocks of ``block`` samples as spectra (paper 5.7.1), one vector per model step.

    A short-time Fourier transform with a Hann window and blocks overlapping by half (librosa's
    ``stft``/``istft``): the inverse is a windowed overlap-add, so block edges do not click and
    the round trip is exact to float precision. Each block becomes the real and imaginary parts
    of its spectrum (the authors' choice) or its log-magnitude and phase, z-scored per bin over
    the training corpus. The model predicts the next block's vector.
    """

    name: str = "fft"
    block: int = 512
    parts: str = "real-imag"  # real-imag | logmag-phase
    mean: list[float] | None = None  # per vector component, fitted on training tracks
    std: list[float] | None = None
    fitted: bool = False

    kind = "regression"

    @property
    def hop(self) -> int:
        return self.block // 2

    @property
    def dim(self) -> int:
        return 2 * (self.block // 2 + 1)

    def _vectors(self, y: np.ndarray) -> np.ndarray:
        import librosa

        S = librosa.stft(
            np.asarray(y, dtype=np.float32),
            n_fft=self.block,
            hop_length=self.hop,
            window="hann",
            center=True,
        )  # (bins, frames)
        if self.parts == "real-imag":
            parts = (S.real, S.imag)
        else:
            parts = (np.log(np.abs(S) + _LOG_EPS), np.angle(S))
        return np.concatenate(parts, axis=0).T.astype(np.float64)  # (frames, 2 * bins)

    def fit(self, tracks: list[np.ndarray]) -> FFTCodec:
        if not tracks:
            raise ValueError("cannot fit a codec on no tracks")
        v = np.concatenate([self._vectors(np.asarray(y)) for y in tracks], axis=0)
        std = v.std(axis=0)
        self.mean = v.mean(axis=0).tolist()
        self.std = np.where(std > 1e-8, std, 1.0).tolist()  # e.g. the imaginary part at DC
        self.fitted = True
        return self

    def stats_for(self, y: np.ndarray | None) -> None:
        return None

    def encode(self, y: np.ndarray, stats: Any = None) -> np.ndarray:
        """Audio (samples,) -> (1 + samples // hop, dim) float32 block vectors."""
        v = (self._vectors(y) - np.asarray(self.mean)) / np.asarray(self.std)
        return v.astype(np.float32)

    def decode(self, v: np.ndarray, stats: Any = None, *, length: int | None = None) -> np.ndarray:
        """Block vectors (frames, dim) -> audio by inverse FFT and windowed overlap-add."""
        import librosa

        v = np.asarray(v, dtype=np.float64).reshape(-1, self.dim) * np.asarray(self.std)
        v = (v + np.asarray(self.mean)).T
        bins = self.block // 2 + 1
        a, b = v[:bins], v[bins:]
        S = a + 1j * b if self.parts == "real-imag" else np.exp(a) * np.exp(1j * b)
        y = librosa.istft(S, hop_length=self.hop, window="hann", center=True, length=length)
        return y.astype(np.float32)

    def steps_for(self, samples: int) -> int:
        """Model steps that cover ``samples`` of audio."""
        return 1 + samples // self.hop

    def state(self) -> dict[str, Any]:
        return asdict(self)


_LOG_EPS = 1e-6
Codec = RawCodec | QuantCodec | FFTCodec


def make_codec(cfg: CodecConfig) -> Codec:
    if cfg.name in ("zscore", "minmax"):
        return RawCodec(name=cfg.name, scaling=cfg.scaling)
    if cfg.name in ("mulaw", "linear-q"):
        return QuantCodec(name=cfg.name, levels=cfg.levels)
    if cfg.name == "fft":
        return FFTCodec(block=cfg.block, parts=cfg.fft_parts)
    raise ConfigError(f"codec.name: unknown codec {cfg.name!r}")


def codec_from_state(state: dict[str, Any]) -> Codec:
    """Rebuild a fitted codec from ``run.json``."""
    name = state.get("name") if isinstance(state, dict) else None
    cls = {
        "zscore": RawCodec,
        "minmax": RawCodec,
        "mulaw": QuantCodec,
        "linear-q": QuantCodec,
        "fft": FFTCodec,
    }.get(name)
    if cls is None:
        raise ConfigError(f"codec state not understood: unknown codec {name!r}")
    try:
        codec = cls(**state)
    except TypeError as exc:
        raise ConfigError(f"codec state not understood ({exc})") from None
    if not codec.fitted:
        raise ConfigError(f"codec state not understood (not fitted): {state!r}")
    return codec


def steps_for(codec: Codec, samples: int) -> int:
    """Model steps that produce ``samples`` of audio."""
    return codec.steps_for(samples) if isinstance(codec, FFTCodec) else samples
