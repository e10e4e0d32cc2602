"""Render a score with the genre's instruments, mix the voices and master the result."""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from noizenet.synth.score import Score
from noizenet.synth.timbres import drum_kit, hz, piano, pluck, sweep_lowpass, synth_voice

_PEAK = 0.8


def _add(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    if start >= len(buf) or start < 0:
        return
    m = min(len(sig), len(buf) - start)
    buf[start : start + m] += sig[:m]


def render(score: Score, rng: np.random.Generator, n: int, sr: int) -> tuple[np.ndarray, float]:
    genre = score.genre
    tracks = {
        v: np.zeros(n, dtype=np.float32) for v in ("melody", "chords", "bass", "arp", "drums")
    }
    beats = np.array([note.beat for note in score.notes])
    ends = np.array([note.beat + note.dur for note in score.notes])
    starts_s = score.seconds_at(beats)
    durs_s = score.seconds_at(ends) - starts_s
    inharm = rng.uniform(0.6e-4, 2.5e-4)
    pluck_t60 = {"melody": 1.6, "chords": 1.3, "bass": 1.1}
    pluck_bright = {"melody": 9.0, "chords": 6.0, "bass": 6.0}
    for note, t0, dur in zip(score.notes, starts_s, durs_s, strict=True):
        start = round(t0 * sr)
        if start >= n:
            continue
        if genre == "classical":
            sig = piano(hz(note.midi), dur, note.vel, sr, rng, inharm)
        elif genre == "folk":
            f0 = hz(note.midi)
            v = note.voice
            sig = pluck(f0, dur, note.vel, sr, rng, pluck_t60[v], pluck_bright[v])
        else:
            sig = synth_voice(note.voice, note.midi, dur, note.vel, sr, rng)
        _add(tracks[note.voice], start, sig)

    drum_t = score.seconds_at(np.array([b for b, _, _ in score.drums], dtype=np.float64))
    if score.drums:
        kit = {k: v.astype(np.float32) for k, v in drum_kit(genre, sr, rng).items()}
        for (_, kind, vel), t0 in zip(score.drums, drum_t, strict=True):
            _add(tracks["drums"], round(t0 * sr), kit[kind] * np.float32(vel))

    if genre == "classical":
        gains = {"melody": 1.2, "chords": 0.7, "bass": 0.7}
        mix = sum(gains[v] * tracks[v] for v in gains)
        drive = 1.2
    elif genre == "folk":
        gains = {"melody": 1.0, "chords": 0.6, "bass": 1.3, "drums": 0.35}
        mix = sum(gains[v] * tracks[v] for v in gains)
        drive = 1.8
    else:
        # Side-chain: pad and bass duck under every kick.
        kick_at = np.zeros(n, dtype=bool)
        for (_, kind, _), t0 in zip(score.drums, drum_t, strict=True):
            if kind == "kick" and round(t0 * sr) < n:
                kick_at[round(t0 * sr)] = True
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(kick_at, idx, -10 * sr))
        duck = (1.0 - 0.55 * np.exp(-(idx - last) / (0.09 * sr))).astype(np.float32)
        # The filter sweep opens and closes over 8 bars, starting half-closed.
        block = 256
        n_blocks = -(-n // block)
        tb = (np.arange(n_blocks) + 0.5) * block / sr
        sweep_period = 8 * score.beats_per_bar * 60.0 / score.bpm
        lfo = 0.5 - 0.5 * np.cos(2 * np.pi * tb / sweep_period + rng.uniform(0.5, 1.5))
        cutoff = np.exp(np.log(450.0) + lfo * (np.log(min(6500.0, 0.4 * sr)) - np.log(450.0)))
        synths = 0.5 * tracks["chords"] * duck + 0.55 * tracks["melody"] + 0.5 * tracks["arp"]
        synths = sweep_lowpass(synths.astype(np.float64), cutoff, 2.2, sr, block)
        bass_sos = signal.butter(2, min(900.0, 0.4 * sr), fs=sr, output="sos")
        bass = signal.sosfilt(bass_sos, tracks["bass"] * duck)
        mix = synths + 0.7 * bass + 0.6 * tracks["drums"]
        drive = 2.0
    return np.asarray(mix, dtype=np.float64), drive


def master(mix: np.ndarray, drive: float, sr: int) -> np.ndarray:
    """High-pass, soft-clip, fade the ends, remove DC and normalise the peak to 0.8."""
    y = signal.sosfilt(signal.butter(2, 25.0, btype="highpass", fs=sr, output="sos"), mix)
    peak = np.max(np.abs(y))
    if peak > 0:
        y = np.tanh(drive * y / peak) / math.tanh(drive)
    n = len(y)
    fade_in = min(n // 4, int(0.005 * sr))
    fade_out = min(n // 4, int(0.05 * sr))
    if fade_in:
        y[:fade_in] *= np.linspace(0.0, 1.0, fade_in)
    if fade_out:
        y[n - fade_out :] *= np.linspace(1.0, 0.0, fade_out)
    y -= np.mean(y)
    peak = np.max(np.abs(y))
    if peak > 0:
        y *= _PEAK / peak
    return y.astype(np.float32)
