import numpy as np
import pytest

from noizenet.analysis.metrics import (
    clipped_fraction,
    collapse_time,
    dc_offset,
    fit_lpc,
    log_mel_frechet_distance,
    loop_onset,
    lpc_prediction,
    lpc_residual_std,
    lpc_synthesis,
    persistence_prediction,
    rolling_std,
    snr_db,
    spectral_flatness,
)

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


def test_exponential_decay_to_silence_collapses_when_its_std_falls_below_one_percent():
    # amplitude A exp(-t / tau): a sine's windowed std is amplitude / sqrt(2), so the output
    # goes quiet when A exp(-t / tau) / sqrt(2) = 0.01 * reference_rms
    A, tau, ref = 0.5, 0.2, 0.2
    t = np.arange(3 * SR) / SR
    y = A * np.exp(-t / tau) * np.sin(2 * np.pi * 440 * t)
    expected = tau * np.log(A / (np.sqrt(2) * 0.01 * ref))  # ~1.24 s
    got = collapse_time(y, sr=SR, reference_rms=ref)
    assert got is not None and abs(got - expected) <= 0.05


def test_a_stuck_loop_collapses_where_it_starts_repeating():
    rng = np.random.default_rng(0)
    music = 0.2 * rng.standard_normal(SR // 2)
    cycle = 0.3 * rng.standard_normal(round(0.004 * SR))  # 4 ms, loud: no quiet collapse
    y = np.concatenate([music, np.tile(cycle, 200)])
    assert collapse_time(y, sr=SR, reference_rms=0.2) == pytest.approx(0.5, abs=1e-3)
    assert loop_onset(y, sr=SR) == pytest.approx(0.5, abs=1e-3)
    # a period of 15 ms is music, not a stuck loop under 10 ms
    slow = np.concatenate([music, np.tile(0.3 * rng.standard_normal(round(0.015 * SR)), 60)])
    assert collapse_time(slow, sr=SR, reference_rms=0.2) is None
    # a few repeated samples at the very end are not a loop
    short = np.concatenate([music, np.tile(cycle, 3)])
    assert loop_onset(short, sr=SR) is None


def test_white_noise_is_flat_and_a_tone_is_not():
    rng = np.random.default_rng(1)
    assert spectral_flatness(rng.standard_normal(2 * SR)) > 0.95
    tone = np.sin(2 * np.pi * 440 * np.arange(2 * SR) / SR)
    assert spectral_flatness(tone) < 0.01
    # a DC offset is measured apart and does not change the spectral shape
    assert spectral_flatness(tone + 0.5) == pytest.approx(spectral_flatness(tone), rel=1e-3)


def _ar2(n, a1=1.6, a2=-0.8, seed=0):
    """x[t] = a1 x[t-1] + a2 x[t-2] + e[t]."""
    from scipy.signal import lfilter

    e = np.random.default_rng(seed).standard_normal(n)
    return lfilter([1.0], [1.0, -a1, -a2], e)


def test_lpc_recovers_the_coefficients_of_an_ar2_process():
    x = _ar2(50_000)
    a = fit_lpc([x[:25_000], x[25_000:]], order=2)
    assert a == pytest.approx([1.0, -1.6, 0.8], abs=0.02)
    a32 = fit_lpc([x], order=32)
    assert a32[:3] == pytest.approx([1.0, -1.6, 0.8], abs=0.03)
    assert np.abs(a32[3:]).max() < 0.03
    # its one-step prediction error is the driving noise (unit variance), and it beats
    # persistence on the same samples
    held_out = _ar2(20_000, seed=1)
    pred = lpc_prediction(held_out, a)
    assert np.std(held_out[2:] - pred[2:]) == pytest.approx(1.0, abs=0.03)
    assert snr_db(held_out, pred) > snr_db(held_out, persistence_prediction(held_out)) + 3


def test_snr_of_known_errors():
    y = np.sin(np.arange(1000) * 0.1)
    assert snr_db(y, y) == pytest.approx(200.0)
    assert snr_db(y, np.zeros_like(y)) == pytest.approx(0.0)
    assert snr_db(y, 0.9 * y) == pytest.approx(20.0)
    assert np.array_equal(persistence_prediction(np.array([1.0, 2.0, 3.0])), [1.0, 1.0, 2.0])


def test_lpc_synthesis_keeps_playing_with_the_training_spectrum():
    x = _ar2(40_000)
    a = fit_lpc([x], order=2)
    sigma = lpc_residual_std([x], a)
    y = lpc_synthesis(a, seed=x[:1000], n=40_000, residual_std=sigma, rng=np.random.default_rng(2))
    assert np.std(y) == pytest.approx(np.std(x), rel=0.1)
    assert collapse_time(y, sr=SR, reference_rms=float(np.std(x))) is None


def test_log_mel_frechet_distance_is_zero_for_the_same_audio_and_orders_distances():
    rng = np.random.default_rng(3)
    t = np.arange(2 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)
    tone2 = 0.3 * np.sin(2 * np.pi * 440 * t + 1.0) + 0.01 * rng.standard_normal(t.size)
    noise = 0.3 * rng.standard_normal(t.size)
    assert log_mel_frechet_distance(tone, tone) == pytest.approx(0.0, abs=1e-3)
    near = log_mel_frechet_distance(tone2, tone)
    far = log_mel_frechet_distance(noise, tone)
    silent = log_mel_frechet_distance(np.full(t.size, 0.1), tone)
    assert near < far < silent and near < 0.05 * far


def test_dc_offset_and_clipped_fraction():
    y = np.array([0.5, 1.0, -1.2, 0.1])
    assert dc_offset(y) == pytest.approx(0.1)
    assert clipped_fraction(y) == 0.5
    assert clipped_fraction(np.zeros(10)) == 0.0


def _naive_loop_onset(y, *, max_p, min_len):
    best = None
    for p in range(1, max_p + 1):
        need = max(min_len, 2 * p)
        if y.size < need:
            break
        eq = y[p:] == y[:-p]
        if not eq[y.size - need :].all():
            continue
        start = 0 if eq.all() else int(np.flatnonzero(~eq)[-1]) + 1
        best = start if best is None else min(best, start)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_loop_onset_matches_the_obvious_search(seed):
    rng = np.random.default_rng(seed)
    levels = rng.integers(2, 5)  # few distinct values: coincidental repeats are common
    parts = [rng.integers(0, levels, rng.integers(0, 300)).astype(float)]
    for _ in range(rng.integers(1, 3)):  # one or two loops, the last one to the end
        cycle = rng.integers(0, levels, rng.integers(1, 12)).astype(float)
        parts.append(np.tile(cycle, rng.integers(3, 60)))
    y = np.concatenate(parts)
    got = loop_onset(y, sr=1000, max_period_s=0.024, min_length_s=0.01)
    want = _naive_loop_onset(y, max_p=24, min_len=10)
    assert got == (None if want is None else want / 1000)
