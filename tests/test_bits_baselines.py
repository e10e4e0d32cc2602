"""Classical bits/sample baselines on a codec's levels: checked where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from noizenet.analysis import bits
from noizenet.analysis.metrics import fit_lpc, lpc_prediction
from noizenet.codecs import QuantCodec


@pytest.mark.parametrize(("name", "levels"), [("mulaw", 256), ("mulaw", 16), ("linear-q", 64)])
def test_level_edges_are_where_the_codec_changes_level(name, levels):
    codec = QuantCodec(name, levels).fit([np.array([-0.5, 0.8], np.float32)])
    edges = bits.level_edges(codec)
    assert edges.shape == (levels + 1,) and np.all(np.diff(edges) >= 0)
    inner = edges[1:-1]
    below = codec.encode((inner - 1e-6 * codec.scale).astype(np.float32))
    above = codec.encode((inner + 1e-6 * codec.scale).astype(np.float32))
    assert np.array_equal(above - below, np.ones(levels - 1))
    # every level c holds what lies between its edges (mu-law's level 0 is -1 itself)
    occupied = np.arange(1 if name == "mulaw" else 0, levels)
    mids = np.clip((edges[occupied] + edges[occupied + 1]) / 2, -2.0, 2.0)
    assert np.array_equal(codec.encode(mids.astype(np.float32)), occupied)


def test_laplace_level_bits_sum_to_one_and_survive_the_far_tail():
    codec = QuantCodec("mulaw", 256).fit([np.array([1.0], np.float32)])
    edges = bits.level_edges(codec)
    levels = np.arange(256)
    for mean, scale in [(0.0, 0.01), (0.3, 0.05), (-0.9, 0.2), (0.001, 1e-4)]:
        b = bits.laplace_level_bits(levels, np.full(256, mean), np.full(256, scale), edges)
        assert math.isclose(np.sum(2.0**-b), 1.0, rel_tol=1e-9)
    far = bits.laplace_level_bits(np.array([255]), np.array([-0.9]), np.array([1e-3]), edges)
    assert np.isfinite(far[0]) and far[0] > 500  # many bits, never inf
    # the escape mass caps that cost, and costs the likely levels almost nothing
    kw = {"escape": 1e-4}
    capped = bits.laplace_level_bits(
        np.array([255]), np.array([-0.9]), np.array([1e-3]), edges, **kw
    )
    assert math.isclose(capped[0], math.log2(256 / 1e-4), rel_tol=1e-6)
    b = bits.laplace_level_bits(levels, np.full(256, 0.3), np.full(256, 0.05), edges, **kw)
    assert math.isclose(np.sum(2.0**-b), 1.0, rel_tol=1e-9)


def test_moving_scale_is_the_mean_absolute_value_of_the_previous_window():
    r = np.random.default_rng(0).normal(size=300)
    s = bits.moving_scale(r, window=64, initial=9.0)
    assert s[0] == 9.0
    assert math.isclose(s[10], (np.sum(np.abs(r[:10])) + 54 * 9.0) / 64)
    assert math.isclose(s[200], np.mean(np.abs(r[136:200])))


def _ar2(n: int, seed: int, b: float) -> np.ndarray:
    """A stable AR(2) process (poles at 0.95 e^{+-0.1 i pi}) driven by Laplace(0, b) noise."""
    e = np.random.default_rng(seed).laplace(scale=b, size=n)
    r, w = 0.95, 0.1 * math.pi
    return lfilter([1.0], [1.0, -2 * r * math.cos(w), r * r], e)


def test_lpc_with_a_laplace_residual_reaches_the_entropy_of_an_ar2_process():
    """Fine linear levels: the bits are the Laplace innovation's differential entropy minus
    log2 of the level width, log2(2 e b / width), for the fixed and the adaptive scale."""
    b = 0.004
    train = [_ar2(40_000, 1, b)]
    held = [_ar2(40_000, 2, b)]
    peak = max(np.max(np.abs(y)) for y in train + held)
    train, held = [y / peak * 0.9 for y in train], [y / peak * 0.9 for y in held]
    b *= 0.9 / peak
    codec = QuantCodec("linear-q", 4096).fit(train)
    width = codec.scale / (4096 // 2)
    assert b / width > 4  # levels much finer than the innovation: the entropy formula holds
    expected = math.log2(2 * math.e * b / width)
    a = fit_lpc(train, order=4)
    predict = lambda x: lpc_prediction(x, a)  # noqa: E731
    fixed = bits.predictor_bits(codec, held, predict, train=train, adaptive=False)
    adaptive = bits.predictor_bits(codec, held, predict, train=train)
    assert abs(fixed - expected) < 0.03
    assert 0 < adaptive - expected < 0.08  # a 64-sample estimate of the scale costs a little
    # with no context the same process costs far more
    assert bits.histogram_bits(codec, held, train=train) > expected + 2


def test_white_noise_over_k_levels_costs_log2_k_without_context():
    codec = QuantCodec("mulaw", 256).fit([np.array([1.0], np.float32)])
    rng = np.random.default_rng(3)

    def noise(n: int) -> np.ndarray:  # uniform over the 128 levels 64..191
        return codec.decode(rng.integers(64, 192, size=n).astype(np.float32))

    train, held = [noise(200_000)], [noise(50_000)]
    assert abs(bits.histogram_bits(codec, held, train=train) - 7.0) < 0.01
    # no predictor helps with white noise: a Laplace residual only adds to the cost
    adaptive = bits.predictor_bits(codec, held, lambda x: np.zeros_like(x), train=train)
    assert adaptive > 7.0


def test_digital_silence_costs_almost_nothing():
    codec = QuantCodec("mulaw", 256).fit([np.array([0.5], np.float32)])
    train = [np.random.default_rng(0).normal(0, 0.1, 5000).astype(np.float32)]
    silent = [np.zeros(50_000, np.float32)]  # the first 64 samples cost some bits: see the scale
    assert bits.predictor_bits(codec, silent, lambda x: np.zeros_like(x), train=train) < 0.05
