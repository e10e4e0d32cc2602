"""Generation seeds (paper 5.1.4): an unseen song, white noise, Perlin noise, or silence.

A seed is the audio the model is primed on before it runs free. Noise seeds are scaled to the
training audio's RMS so that they sit where the model's inputs normally live.
"""

from __future__ import annotations

import numpy as np

from noizenet.audio import load
from noizenet.config import SEED_KINDS, SeedSpec, parse_seed
from noizenet.errors import NoizeNetError

__all__ = ["SEED_KINDS", "SeedSpec", "make_seed", "parse_seed", "perlin_noise"]


def perlin_noise(
    n: int,
    *,
    sr: int = 22050,
    rng: np.random.Generator,
    base_hz: float = 110.0,
    octaves: int = 4,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
) -> np.ndarray:
    """1-D Perlin gradient noise sampled at audio rate, summed over octaves.

    Octave ``k`` places random gradients on a lattice ``base_hz * lacunarity**k`` times per second
    and interpolates between them with Perlin's quintic fade ``6t^5 - 15t^4 + 10t^3``; its weight
    is ``persistence**k``. Unlike white noise it has a pitch-like lattice rate and smooth
    contours, which is why the paper tried it as a seed. Returns (n,) float64 with unit RMS.
    """
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n) / sr
    total = np.zeros(n)
    for k in range(octaves):
        freq = base_hz * lacunarity**k
        pos = t * freq
        i0 = np.floor(pos).astype(np.int64)
        frac = pos - i0
        grads = rng.uniform(-1.0, 1.0, size=int(i0[-1]) + 2)
        g0, g1 = grads[i0], grads[i0 + 1]
        fade = frac**3 * (frac * (frac * 6 - 15) + 10)
        total += persistence**k * ((1 - fade) * g0 * frac + fade * g1 * (frac - 1))
    total -= total.mean()
    rms = np.sqrt(np.mean(total**2))
    return total / rms if rms > 0 else total


def make_seed(
    spec: SeedSpec, *, seconds: float, sr: int, rms: float, rng: np.random.Generator
) -> np.ndarray:
    """The seed's audio, (round(seconds * sr),) float32 (a song may be shorter if it ends)."""
    n = round(seconds * sr)
    if n < 1:
        raise NoizeNetError(f"seed length must be at least one sample, got {seconds} s")
    if spec.kind == "song":
        assert spec.path is not None
        return load(spec.path, sr=sr, offset=spec.offset, duration=seconds)
    if spec.kind == "white":
        return (rng.standard_normal(n) * rms).astype(np.float32)
    if spec.kind == "perlin":
        return (perlin_noise(n, sr=sr, rng=rng) * rms).astype(np.float32)
    if spec.kind == "silence":
        return np.zeros(n, dtype=np.float32)
    raise NoizeNetError(f"unknown seed kind {spec.kind!r}")
