import numpy as np
import pytest

from noizenet.analysis.metrics import collapse_time, rolling_std

SR = 22050


def test_sustained_sine_never_collapses():
    y = 0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * SR) / SR)
    assert collapse_time(y, sr=SR, reference_rms=0.2) is None


@pytest.mark.parametrize("value", [0.0, 0.37])
def test_a_constant_collapses_at_zero(value):
    assert collapse_time(np.full(SR, value), sr=SR, reference_rms=0.2) == 0.0


def test_decay_to_constant_collapses_when_it_goes_quiet():
    y = np.full(2 * SR, 0.25)
    y[:SR] += 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    t = collapse_time(y, sr=SR, reference_rms=0.2)
    assert t is not None and abs(t - 1.0) <= 0.05


def test_rolling_std_removes_the_mean():
    _, s = rolling_std(np.full(SR, 5.0), sr=SR)
    assert np.allclose(s, 0.0, atol=1e-6)
