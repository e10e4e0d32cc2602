import numpy as np
import pytest

from noizenet.codecs import RawCodec, codec_from_state, make_codec
from noizenet.config import CodecConfig


@pytest.mark.parametrize("name", ["zscore", "minmax"])
@pytest.mark.parametrize("scaling", ["corpus", "per-file"])
def test_round_trip_is_exact(name, scaling):
    rng = np.random.default_rng(0)
    tracks = [
        rng.standard_normal(1000).astype(np.float32) * s + m for s, m in [(0.1, 0.0), (0.3, 0.05)]
    ]
    codec = make_codec(CodecConfig(name=name, scaling=scaling)).fit(tracks)
    for y in tracks:
        stats = codec.stats_for(y)
        np.testing.assert_allclose(codec.decode(codec.encode(y, stats), stats), y, atol=1e-6)


def test_zscore_fitted_on_all_training_tracks():
    a = np.full(100, 1.0, np.float32)
    b = np.full(100, -1.0, np.float32)
    codec = RawCodec("zscore").fit([a, b])
    assert codec.center == pytest.approx(0.0)
    assert codec.scale == pytest.approx(1.0)
    v = codec.encode(np.concatenate([a, b]))
    assert v.mean() == pytest.approx(0.0, abs=1e-6) and v.std() == pytest.approx(1.0, abs=1e-6)


def test_minmax_maps_training_range_to_unit_interval():
    y = np.linspace(-0.2, 0.6, 101).astype(np.float32)
    v = RawCodec("minmax").fit([y]).encode(y)
    assert v.min() == pytest.approx(-1.0) and v.max() == pytest.approx(1.0)


def test_per_file_uses_each_files_own_statistics():
    quiet = np.sin(np.arange(1000) * 0.1).astype(np.float32) * 0.01
    loud = quiet * 50
    codec = RawCodec("zscore", "per-file").fit([quiet, loud])
    np.testing.assert_allclose(codec.encode(quiet), codec.encode(loud), atol=1e-4)


def test_silence_never_produces_nan():
    silent = np.zeros(500, np.float32)
    for scaling in ("corpus", "per-file"):
        codec = RawCodec("zscore", scaling).fit([silent])
        v = codec.encode(silent)
        assert np.all(np.isfinite(v)) and np.all(v == 0)
        assert np.all(np.isfinite(codec.decode(v)))


def test_state_round_trip():
    codec = RawCodec("minmax", "per-file").fit([np.arange(10, dtype=np.float32)])
    assert codec_from_state(codec.state()) == codec
