"""The instruments: additive piano, Karplus-Strong pluck, PolyBLEP synths and a drum kit."""

from __future__ import annotations

import math

import numpy as np
from scipy import signal


def hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _one_pole_lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    a = math.exp(-2.0 * math.pi * min(cutoff, 0.45 * sr) / sr)
    return signal.lfilter([1.0 - a], [1.0, -a], x)


def piano(
    f0: float, dur: float, vel: float, sr: int, rng: np.random.Generator, inharm: float
) -> np.ndarray:
    """A piano-like tone: inharmonic partials, each with its own exponential decay."""
    hold = min(dur, 4.0)
    release = 0.12
    n = int((hold + 5 * release) * sr)
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    k = np.arange(1, 17, dtype=np.float64)
    b = inharm * (f0 / 261.6) ** 0.5
    fk = k * f0 * np.sqrt(1.0 + b * k * k)
    keep = fk < 0.42 * sr
    k, fk = k[keep], fk[keep]
    bright = 1.9 - 1.0 * vel  # harder strikes are brighter
    amp = k**-bright * (0.2 + np.abs(np.sin(np.pi * k / 7.3)))  # hammer at ~1/7 of the string
    tau1 = float(np.clip(2.8 * (130.0 / f0) ** 0.55, 0.35, 5.0))
    tau = tau1 / (1.0 + 0.45 * (k - 1.0) ** 1.2)
    phases = rng.uniform(0, 2 * np.pi, len(k))
    y = np.zeros(n, dtype=np.float32)
    for a_k, f_k, tau_k, ph in zip(amp, fk, tau, phases, strict=True):
        m = min(n, int(7.0 * tau_k * sr) + 1)  # -60 dB
        tt = t[:m]
        y[:m] += (
            np.float32(a_k)
            * np.exp(tt * np.float32(-1.0 / tau_k))
            * np.sin(tt * np.float32(2 * np.pi * f_k) + np.float32(ph))
        )
    # Soft hammer: a few-millisecond rise, plus a quiet felt thump.
    attack = 0.006 - 0.003 * vel
    y *= 1.0 - np.exp(t * np.float32(-1.0 / attack))
    m = min(n, int(0.03 * sr))
    thump = _one_pole_lowpass(rng.standard_normal(m), 300 + 900 * vel, sr)
    y[:m] += (0.25 * vel * thump * np.exp(-np.arange(m) / (0.008 * sr))).astype(np.float32)
    # Damper: the note stops ringing after it is released.
    off = int(hold * sr)
    y[off:] *= np.exp(-np.arange(n - off, dtype=np.float32) / np.float32(release * sr))
    return y * np.float32(vel / np.sqrt(np.sum(amp**2)))


def pluck(
    f0: float,
    dur: float,
    vel: float,
    sr: int,
    rng: np.random.Generator,
    t60: float,
    brightness: float,
) -> np.ndarray:
    """A Karplus-Strong plucked string: a noise burst through a lossy, fractionally tuned comb.

    The loop is ``y[n] = x[n] + g * A(z) * (y[n-L] + y[n-L-1]) / 2`` with a first-order all-pass
    ``A`` for the fractional part of the period, written as one IIR filter for ``lfilter``.
    """
    release = 0.04
    n = int((dur + 5 * release) * sr)
    period = sr / f0
    L = math.floor(period - 0.6)
    frac = period - 0.5 - L  # in [0.1, 1.1)
    c = (1.0 - frac) / (1.0 + frac)
    g = 10.0 ** (-3.0 / (t60 * f0))  # -60 dB after t60 seconds
    a = np.zeros(L + 3)
    a[0] = 1.0
    a[1] += c
    a[L] -= g * c / 2
    a[L + 1] -= g * (1 + c) / 2
    a[L + 2] -= g / 2
    m = max(2, round(period))
    burst = _one_pole_lowpass(rng.uniform(-1.0, 1.0, m), brightness * (0.5 + vel) * f0, sr)
    pos = max(1, int(m * rng.uniform(0.12, 0.25)))  # pluck position: a comb on the burst
    burst[pos:] -= 0.8 * burst[:-pos].copy()
    x = np.zeros(n)
    x[:m] = burst * vel
    y = signal.lfilter([1.0, c], a, x)
    off = int(dur * sr)
    y[off:] *= np.exp(-np.arange(n - off) / (release * sr))
    return y.astype(np.float32)


def _adsr(n: int, n_on: int, sr: int, a: float, d: float, s: float, r: float) -> np.ndarray:
    """Attack (linear), decay (exponential to ``s``), sustain, release (exponential)."""
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    env = np.where(t < a, t / np.float32(a), s + (1 - s) * np.exp(-(t - a) / np.float32(d)))
    t_off = n_on / sr
    level = min(t_off / a, 1.0) if t_off < a else s + (1 - s) * math.exp(-(t_off - a) / d)
    rel = np.float32(level) * np.exp(-(t - np.float32(t_off)) / np.float32(r))
    return np.where(t < t_off, env, rel).astype(np.float32)


def _blep_saw(phase: np.ndarray, inc: float | np.ndarray) -> np.ndarray:
    """A sawtooth from a phase in [0, 1), band-limited with PolyBLEP corrections at the wrap."""
    y = 2.0 * phase - 1.0
    lo = phase < inc
    x = phase[lo] / (inc if np.isscalar(inc) else inc[lo])
    y[lo] -= x + x - x * x - 1.0
    hi = phase > 1.0 - inc
    x = (phase[hi] - 1.0) / (inc if np.isscalar(inc) else inc[hi])
    y[hi] -= x * x + x + x + 1.0
    return y


def _oscillator(
    kind: str, f0: float, n: int, sr: int, phase0: float, vibrato: float = 0.0
) -> np.ndarray:
    """``"saw"`` or ``"square"`` at ``f0`` Hz, ``n`` samples, float32, band-limited."""
    if vibrato:
        t = np.arange(n) / sr
        depth = vibrato * np.clip((t - 0.15) / 0.2, 0.0, 1.0)
        inc = f0 / sr * (1.0 + depth * np.sin(2 * np.pi * 5.5 * t))
        phase = (phase0 + np.cumsum(inc)) % 1.0
    else:
        inc = f0 / sr
        phase = (phase0 + inc * np.arange(n)) % 1.0
    phase = phase.astype(np.float32)
    inc32 = np.float32(inc) if np.isscalar(inc) else inc.astype(np.float32)
    saw = _blep_saw(phase, inc32)
    if kind == "saw":
        return saw
    return saw - _blep_saw((phase + np.float32(0.5)) % np.float32(1.0), inc32)


def synth_voice(
    voice: str, midi: float, dur: float, vel: float, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """The electronic instruments: pad, lead, bass and arpeggio."""
    f0 = hz(midi)
    if voice == "chords":  # pad: two detuned saws, slow attack
        a, d, s, r = 0.12, 0.6, 0.7, 0.35
        n = int((dur + 4 * r) * sr)
        y = sum(
            _oscillator("saw", f0 * 2 ** (cents / 1200), n, sr, rng.random())
            for cents in (-9.0, 7.0)
        )
        y = 0.5 * y
    elif voice == "melody":  # lead: square + saw with delayed vibrato
        a, d, s, r = 0.006, 0.18, 0.65, 0.08
        n = int((dur + 4 * r) * sr)
        y = 0.6 * _oscillator("square", f0, n, sr, 0.0, vibrato=0.004) + 0.4 * _oscillator(
            "saw", f0 * 1.003, n, sr, rng.random()
        )
    elif voice == "bass":  # bass: saw plus a slightly detuned square
        a, d, s, r = 0.003, 0.18, 0.55, 0.04
        n = int((dur + 4 * r) * sr)
        y = 0.7 * _oscillator("saw", f0, n, sr, 0.0) + 0.5 * _oscillator(
            "square", f0 * 1.004, n, sr, 0.25
        )
    else:  # arp: short saw blips
        a, d, s, r = 0.002, 0.07, 0.0, 0.04
        n = int((dur + 4 * r) * sr)
        y = _oscillator("saw", f0, n, sr, rng.random())
    return (y * _adsr(n, int(dur * sr), sr, a, d, s, r) * np.float32(vel)).astype(np.float32)


def sweep_lowpass(
    x: np.ndarray, cutoff: np.ndarray, q: float, sr: int, block: int = 256
) -> np.ndarray:
    """A resonant biquad low-pass whose cutoff (one value per ``block`` samples) moves.

    Coefficients change between blocks; the filter state is carried over.
    """
    w0 = 2.0 * np.pi * np.clip(cutoff, 20.0, 0.45 * sr) / sr
    alpha = np.sin(w0) / (2.0 * q)
    cw = np.cos(w0)
    a0 = 1.0 + alpha
    b = np.stack([(1 - cw) / 2, 1 - cw, (1 - cw) / 2], axis=1) / a0[:, None]
    a = np.stack([np.ones_like(cw), -2 * cw / a0, (1 - alpha) / a0], axis=1)
    y = np.empty_like(x)
    zi = np.zeros(2)
    for i in range(len(cutoff)):
        sl = slice(i * block, (i + 1) * block)
        y[sl], zi = signal.lfilter(b[i], a[i], x[sl], zi=zi)
    return y


def _kick(sr: int, rng: np.random.Generator, f_hi: float, f_lo: float, decay: float) -> np.ndarray:
    n = int(4 * decay * sr)
    t = np.arange(n) / sr
    freq = f_lo + (f_hi - f_lo) * np.exp(-t / 0.035)  # pitch sweep down
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / decay)
    m = int(0.004 * sr)
    click = np.zeros(n)
    click[:m] = np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / (0.001 * sr))
    return np.tanh(1.5 * body) + 0.15 * click


def _noise_burst(
    sr: int, rng: np.random.Generator, seconds: float, decay: float, band: tuple[float, float]
) -> np.ndarray:
    n = int(seconds * sr)
    lo, hi = band
    hi = min(hi, 0.45 * sr)
    lo = min(lo, 0.5 * hi)
    sos = signal.butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    return noise / (np.max(np.abs(noise)) + 1e-12) * np.exp(-np.arange(n) / (decay * sr))


def drum_kit(genre: str, sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One-shot drum samples, slightly different in every song."""
    u = rng.uniform
    if genre == "electronic":
        clap = _noise_burst(sr, rng, 0.3, 0.09, (900, 3500))
        step = int(0.011 * sr)
        shaped = clap.copy()
        for k in (1, 2):  # three quick hand claps
            shaped[k * step :] += 0.7 * clap[: len(clap) - k * step]
        return {
            "kick": _kick(sr, rng, u(140, 170), u(42, 50), u(0.18, 0.26)),
            "clap": 0.6 * shaped,
            "hat": 0.8 * _noise_burst(sr, rng, 0.12, u(0.02, 0.035), (7000, 16000)),
            "openhat": 0.6 * _noise_burst(sr, rng, 0.5, 0.15, (6500, 16000)),
        }
    body_f = u(170, 210)
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    body = np.sin(2 * np.pi * np.cumsum(body_f * (1 + 0.3 * np.exp(-t / 0.01))) / sr)
    snare = 0.7 * _noise_burst(sr, rng, 0.25, u(0.06, 0.1), (1500, 8000))
    snare += 0.5 * body * np.exp(-t / 0.04)
    return {
        "kick": 0.9 * _kick(sr, rng, u(120, 150), u(50, 60), u(0.1, 0.14)),
        "snare": 0.8 * snare,
        "hat": 0.3 * _noise_burst(sr, rng, 0.1, u(0.025, 0.04), (6000, 15000)),
    }
