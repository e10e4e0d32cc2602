"""Tests for noizenet.analysis.views (numbers behind the paper's views)."""

from __future__ import annotations

import numpy as np
import pytest

from noizenet.analysis import views

SR = 22050


def _sine(freq: float, dur: float, amp: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(dur * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_envelope_of_sine_switching_on() -> None:
    amp = 0.6
    y = _sine(440.0, 1.5, amp)
    y[: int(0.5 * SR)] = 0.0
    times, rms = views.envelope(y, sr=SR)

    assert times.shape == rms.shape
    assert times[0] == 0.0
    # 10 ms hop = 220 samples at 22050 Hz, times in seconds.
    np.testing.assert_allclose(np.diff(times), 220 / SR)
    assert times[-1] == pytest.approx(1.5, abs=0.011)

    before = rms[times < 0.48]
    after = rms[times > 0.52]
    assert before.size > 40 and after.size > 90
    assert np.all(before < 1e-6)
    np.testing.assert_allclose(after[after.size // 10 : -5], amp / np.sqrt(2), rtol=0.03)
    # The switch-on happens around 0.5 s (within one 20 ms frame).
    onset = times[np.argmax(rms > amp / np.sqrt(2) / 2)]
    assert onset == pytest.approx(0.5, abs=0.011)


def test_envelope_frame_and_hop_options() -> None:
    y = _sine(220.0, 1.0, 0.5)
    times, rms = views.envelope(y, sr=SR, frame_ms=40.0, hop_ms=5.0)
    hop = round(SR * 0.005)
    assert len(times) == 1 + len(y) // hop
    np.testing.assert_allclose(np.diff(times), hop / SR)
    np.testing.assert_allclose(np.median(rms), 0.5 / np.sqrt(2), rtol=0.02)

    t8k, _ = views.envelope(y[:8000], sr=8000)
    np.testing.assert_allclose(np.diff(t8k), 80 / 8000)  # hop in samples depends on sr


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"frame_ms": 0.0}, "frame_ms"), ({"hop_ms": -1.0}, "hop_ms"), ({"sr": 0}, "sr")],
)
def test_envelope_rejects_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        views.envelope(_sine(440.0, 0.1), **kwargs)


def test_spectrogram_db_peaks_at_1khz() -> None:
    y = _sine(1000.0, 1.0, 0.5)
    S = views.spectrogram_db(y, sr=SR, n_fft=1024, hop_length=256)
    assert S.shape == (513, 1 + len(y) // 256)
    assert np.all(np.isfinite(S))
    assert S.max() == pytest.approx(0.0)
    assert S.min() >= -80.0 - 1e-4
    peak_bins = np.argmax(S[:, 2:-2], axis=0)  # skip edge frames (zero padding)
    expected = round(1000 * 1024 / SR)
    assert np.all(peak_bins == expected)
    freqs = views.spectrogram_frequencies(sr=SR, n_fft=1024)
    assert freqs.shape == (513,)
    assert freqs[expected] == pytest.approx(1000, abs=SR / 1024 / 2)
    t = views.spectrogram_times(S.shape[1], sr=SR, hop_length=256)
    assert t[1] == pytest.approx(256 / SR)


def test_spectrogram_db_other_fft_size_and_top_db() -> None:
    rng = np.random.default_rng(0)
    y = _sine(3000.0, 0.5) + 0.01 * rng.standard_normal(int(0.5 * SR)).astype(np.float32)
    S = views.spectrogram_db(y, sr=SR, n_fft=2048, hop_length=512, top_db=40.0)
    assert S.shape[0] == 1025
    assert S.min() >= -40.0 - 1e-4
    assert np.argmax(S.mean(axis=1)) == round(3000 * 2048 / SR)


@pytest.mark.parametrize("n", [SR, 100, 1])
def test_spectrogram_db_of_silence_is_finite_floor(n: int) -> None:
    S = views.spectrogram_db(np.zeros(n, dtype=np.float32), sr=SR)
    assert S.shape[0] == 513
    assert np.all(np.isfinite(S))
    assert np.all(S == -80.0)


def test_short_signal_spectrogram_has_no_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S = views.spectrogram_db(_sine(1000.0, 0.01), sr=SR)
    assert np.all(np.isfinite(S))


def test_integer_and_float64_input_accepted() -> None:
    y = (np.sin(np.linspace(0, 200, 4000)) * 1000).astype(np.int16)
    _times, rms = views.envelope(y, sr=SR)
    assert rms.max() > 100  # not rescaled
    assert views.validate_signal(np.zeros(3)).dtype == np.float64
    assert views.validate_signal(np.zeros(3, dtype=np.int32)).dtype == np.float32


@pytest.mark.parametrize("func", [views.envelope, views.spectrogram_db])
def test_nan_and_inf_rejected_with_count(func) -> None:
    y = _sine(440.0, 0.2)
    y[[5, 50, 500]] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match="contains 3 non-finite samples"):
        func(y, sr=SR)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((2, 100), dtype=np.float32), r"1-D \(mono\).*shape \(2, 100\)"),
        (np.float32(0.5), r"1-D.*shape \(\)"),
        (np.zeros(0, dtype=np.float32), "non-empty"),
        (np.zeros(10, dtype=np.complex64), "real"),
        (np.array(["a", "b"]), "real"),
    ],
)
def test_validate_signal_shape_and_dtype(bad, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        views.envelope(bad, sr=SR)


def test_validate_signal_names_the_signal() -> None:
    with pytest.raises(ValueError, match=r"^signal 'LSTM' contains 1 non-finite sample "):
        views.validate_signal(np.array([0.0, np.nan]), name="signal 'LSTM'")
