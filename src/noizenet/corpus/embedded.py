"""The embedded corpus: songs synthesised on the fly, deterministic from a seed.

A small rule-based composer writes a melody over a chord progression, an accompaniment, a bass line
and (where the genre has one) a drum part, then renders them with a few cheap synthesisers:

* ``"classical"``: a piano made of additive partials with slight inharmonicity, per-partial
  exponential decay and a soft hammer attack; melody, broken-chord accompaniment and bass.
* ``"folk"``: Karplus-Strong plucked strings (a comb filter run by :func:`scipy.signal.lfilter`)
  for melody, finger-picked or strummed chords and an alternating bass, with kick, snare and
  hi-hat made of filtered noise bursts and pitch-swept sines.
* ``"electronic"``: band-limited (PolyBLEP) saw and square oscillators through a slowly sweeping
  resonant low-pass filter, a pulsing bass line, a pad, an arpeggio and a four-on-the-floor beat
  that side-chains the pad and bass.

Everything is vectorised numpy/scipy (one Python iteration per note, never per sample): a
15-second song takes about 0.1-0.2 s on one CPU core. The demo and the tests need no download.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

from noizenet.errors import ConfigError

__all__ = [
    "COMPOSER_VERSION",
    "GENRES",
    "EmbeddedSong",
    "build_embedded_corpus",
    "compose",
]

#: Bumped whenever the composer's output changes, so cached corpora are rebuilt.
COMPOSER_VERSION = 1

#: The genres :func:`compose` knows, in the round-robin order of :func:`build_embedded_corpus`.
GENRES: tuple[str, ...] = ("classical", "folk", "electronic")

_PEAK = 0.8
_MANIFEST = "manifest.json"

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)

# Chord progressions as scale degrees (0 = tonic), one chord per bar.
_PROGRESSIONS = {
    "major": (
        (0, 4, 5, 3),  # I-V-vi-IV
        (0, 5, 3, 4),  # I-vi-IV-V
        (0, 3, 4, 0),  # I-IV-V-I
        (0, 3, 0, 4),  # I-IV-I-V
        (5, 3, 0, 4),  # vi-IV-I-V
        (1, 4, 0, 0),  # ii-V-I-I
        (0, 4, 5, 2, 3, 0, 3, 4),  # Pachelbel-like
    ),
    "minor": (
        (0, 5, 2, 6),  # i-VI-III-VII
        (0, 3, 4, 0),  # i-iv-V-i
        (0, 6, 5, 4),  # i-VII-VI-V (Andalusian)
        (0, 5, 3, 4),  # i-VI-iv-V
        (0, 3, 6, 2),  # i-iv-VII-III
    ),
}

# Melody rhythms (durations in beats that fill one bar), by beats per bar.
_RHYTHMS = {
    4: (
        (1, 1, 1, 1),
        (2, 1, 1),
        (1, 1, 2),
        (1.5, 0.5, 1, 1),
        (0.5, 0.5, 1, 1, 1),
        (1, 0.5, 0.5, 2),
        (2, 2),
        (1, 1, 0.5, 0.5, 1),
        (0.5, 0.5, 0.5, 0.5, 1, 1),
        (3, 1),
    ),
    3: (
        (1, 1, 1),
        (2, 1),
        (1, 0.5, 0.5, 1),
        (1.5, 0.5, 1),
        (0.5, 0.5, 1, 1),
        (3,),
    ),
}
_ELECTRONIC_RHYTHMS = (
    (1.5, 1.5, 1),
    (0.5, 0.5, 1, 0.5, 0.5, 1),
    (1, 0.5, 1, 0.5, 1),
    (0.75, 0.75, 0.5, 1, 1),
    (2, 1, 1),
    (1, 1, 1, 1),
)


@dataclass(frozen=True)
class EmbeddedSong:
    """One song of the embedded corpus, written to disk as a 16-bit PCM WAV file.

    Attributes
    ----------
    id : str
        ``f"embedded-{i:02d}"``.
    genre : str
        One of :data:`GENRES`.
    path : Path
        The WAV file, ``cache_dir / f"{i:02d}_{genre}.wav"``.
    seconds : float
        Duration in seconds.
    seed : int
        The seed passed to :func:`compose` for this song.
    """

    id: str
    genre: str
    path: Path
    seconds: float
    seed: int


# --------------------------------------------------------------------------------------- score


@dataclass
class _Note:
    beat: float  # onset, in beats from the start of the song
    dur: float  # in beats
    midi: float
    vel: float  # 0..1
    voice: str  # "melody", "chords", "bass", "arp"


@dataclass
class _Score:
    genre: str
    bpm: float
    beats_per_bar: int
    mode: str
    tonic: int  # MIDI number of the melody's tonic
    progression: tuple[int, ...]
    chords: list[tuple[int, ...]]  # pitch classes of the chord of each bar
    notes: list[_Note] = field(default_factory=list)
    drums: list[tuple[float, str, float]] = field(default_factory=list)  # (beat, kind, velocity)
    beat_times: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def seconds_at(self, beats: np.ndarray | float) -> np.ndarray:
        """Map beat positions to seconds along the (humanised) tempo curve."""
        grid = np.arange(len(self.beat_times), dtype=np.float64)
        beats = np.asarray(beats, dtype=np.float64)
        last = self.beat_times[-1] - self.beat_times[-2]  # extrapolate past the last beat
        return np.interp(beats, grid, self.beat_times) + np.maximum(beats - grid[-1], 0) * last


class _Harmony:
    """Diatonic arithmetic in one key: index ``d`` counts scale steps from the tonic."""

    def __init__(self, tonic: int, mode: str) -> None:
        self.tonic = tonic
        self.mode = mode
        self.scale = _MAJOR if mode == "major" else _MINOR

    def midi(self, d: int, chord: int) -> int:
        octave, step = divmod(d, 7)
        semis = self.scale[step]
        # Harmonic minor: the dominant chord (and the melody over it) gets the leading tone.
        if self.mode == "minor" and chord == 4 and step == 6:
            semis += 1
        return self.tonic + 12 * octave + semis

    @staticmethod
    def is_chord_tone(d: int, chord: int) -> bool:
        return (d - chord) % 7 in (0, 2, 4)

    def chord_pcs(self, chord: int) -> tuple[int, ...]:
        return tuple(self.midi(chord + k, chord) % 12 for k in (0, 2, 4))


def _melody_phrase(
    rng: np.random.Generator,
    harmony: _Harmony,
    progression: tuple[int, ...],
    beats_per_bar: int,
    rhythms: tuple[tuple[float, ...], ...],
    lo: int,
    hi: int,
    rest_p: float,
) -> list[tuple[float, float, int, int]]:
    """One phrase over the progression: ``(beat, dur, diatonic index, chord)`` per note.

    Strong beats take a chord tone near the previous note, other notes move by step (a leap is
    followed by a step back); the last note lands on the root of the last chord.
    """
    strong = {0.0, 2.0} if beats_per_bar == 4 else {0.0}
    centre = (lo + hi) // 2
    chord0 = progression[0]
    prev = min(
        (d for d in range(lo, hi + 1) if harmony.is_chord_tone(d, chord0)),
        key=lambda d: abs(d - centre),
    )
    last_step = 0
    notes: list[tuple[float, float, int, int]] = []
    for bar, chord in enumerate(progression):
        rhythm = rhythms[int(rng.integers(len(rhythms)))]
        pos = 0.0
        for j, dur in enumerate(rhythm):
            is_last = bar == len(progression) - 1 and j == len(rhythm) - 1
            if is_last:
                roots = [d for d in range(lo, hi + 1) if (d - chord) % 7 == 0]
                d = min(roots, key=lambda r: abs(r - prev))
            elif pos in strong:
                tones = np.array([d for d in range(lo, hi + 1) if harmony.is_chord_tone(d, chord)])
                dist = np.abs(tones - prev)
                weights = np.exp(-dist / 1.5) * np.where(dist == 0, 0.5, 1.0)
                d = int(rng.choice(tones, p=weights / weights.sum()))
            else:
                if rng.random() < rest_p and notes:
                    pos += dur
                    continue
                if abs(last_step) >= 3:  # recover from a leap by a step the other way
                    step = -int(np.sign(last_step))
                else:
                    step = int(rng.choice([-2, -1, 0, 1, 2], p=[0.1, 0.35, 0.1, 0.35, 0.1]))
                if prev + step > hi or prev + step < lo:
                    step = -step
                if step == 0 and prev > centre + 2:
                    step = -1
                d = int(np.clip(prev + step, lo, hi))
            notes.append((bar * beats_per_bar + pos, float(dur), d, chord))
            last_step = d - prev
            prev = d
            pos += dur
    return notes


def _vary(
    rng: np.random.Generator,
    phrase: list[tuple[float, float, int, int]],
    beats_per_bar: int,
    lo: int,
    hi: int,
) -> list[tuple[float, float, int, int]]:
    """A variation of a phrase: some weak-beat notes move by a step."""
    strong = {0.0, 2.0} if beats_per_bar == 4 else {0.0}
    out = []
    for i, (beat, dur, d, chord) in enumerate(phrase):
        if i < len(phrase) - 1 and beat % beats_per_bar not in strong and rng.random() < 0.3:
            d = int(np.clip(d + rng.choice([-1, 1]), lo, hi))
        out.append((beat, dur, d, chord))
    return out


def _compose_score(genre: str, rng: np.random.Generator, seconds: float) -> _Score:
    """Choose key, tempo, progression, melody, accompaniment, bass and drums for one song."""
    if genre == "classical":
        mode = "major" if rng.random() < 0.6 else "minor"
        beats_per_bar = 3 if rng.random() < 0.35 else 4
        bpm = float(rng.uniform(72, 104))
        tonic = 60 + int(rng.integers(-2, 8))
        rubato, jitter = 0.035, 0.008
    elif genre == "folk":
        mode = "major" if rng.random() < 0.7 else "minor"
        beats_per_bar = 3 if rng.random() < 0.25 else 4
        bpm = float(rng.uniform(92, 128))
        tonic = 60 + int(rng.integers(-3, 6))
        rubato, jitter = 0.015, 0.006
    else:
        mode = "minor" if rng.random() < 0.65 else "major"
        beats_per_bar = 4
        bpm = float(rng.uniform(118, 132))
        tonic = 60 + int(rng.integers(-3, 7))
        rubato, jitter = 0.0, 0.0015
    harmony = _Harmony(tonic, mode)
    progs = _PROGRESSIONS[mode]
    progression = progs[int(rng.integers(len(progs)))]

    # Tempo curve: a smooth random walk around the nominal tempo.
    n_beats = math.ceil(seconds * bpm / 60 * (1 + 3 * rubato)) + 2 * beats_per_bar + 2
    wobble = np.convolve(rng.normal(size=n_beats + 16), np.hanning(12), mode="same")[8:-8]
    wobble = wobble / (np.std(wobble) + 1e-9)
    beat_len = 60.0 / bpm * (1.0 + rubato * wobble)
    beat_times = np.concatenate([[0.0], np.cumsum(beat_len)])
    n_bars = int(np.searchsorted(beat_times, seconds) // beats_per_bar + 1)

    bars = [progression[b % len(progression)] for b in range(n_bars)]
    score = _Score(
        genre=genre,
        bpm=bpm,
        beats_per_bar=beats_per_bar,
        mode=mode,
        tonic=tonic,
        progression=progression,
        chords=[harmony.chord_pcs(c) for c in bars],
        beat_times=beat_times,
    )

    # Melody: phrase A, A', B, A' ... (A' is a light variation of A).
    lo, hi = (-3, 10) if genre != "electronic" else (-2, 9)
    rhythms = _ELECTRONIC_RHYTHMS if genre == "electronic" else _RHYTHMS[beats_per_bar]
    rest_p = {"classical": 0.04, "folk": 0.06, "electronic": 0.15}[genre]
    phrase_a = _melody_phrase(rng, harmony, progression, beats_per_bar, rhythms, lo, hi, rest_p)
    phrase_b = _melody_phrase(rng, harmony, progression, beats_per_bar, rhythms, lo, hi, rest_p)
    cycle_beats = len(progression) * beats_per_bar
    n_cycles = -(-n_bars // len(progression))
    lead_octave = 12 if genre == "electronic" and tonic < 64 else 0
    for k in range(n_cycles):
        kind = k % 4
        phrase = phrase_a if kind == 0 else phrase_b if kind == 2 else None
        if phrase is None:
            phrase = _vary(rng, phrase_a, beats_per_bar, lo, hi)
        for beat, dur, d, chord in phrase:
            accent = 1.0 if beat % beats_per_bar == 0 else 0.9
            vel = float(np.clip(rng.uniform(0.62, 0.78) * accent, 0.05, 1.0))
            midi = harmony.midi(d, chord) + lead_octave
            score.notes.append(_Note(k * cycle_beats + beat, dur, midi, vel, "melody"))

    _accompany(score, rng, harmony, bars)
    _drum_part(score, rng, n_bars)

    # Humanise: onset jitter and velocity spread (drums in electronic music stay on the grid).
    for note in score.notes:
        note.beat = max(0.0, note.beat + rng.normal(0.0, jitter) * bpm / 60)
        note.vel = float(np.clip(note.vel * (1 + rng.normal(0.0, 0.07)), 0.05, 1.0))
    drum_jitter = 0.0 if genre == "electronic" else jitter
    score.drums = [
        (
            max(0.0, b + rng.normal(0.0, drum_jitter) * bpm / 60),
            kind,
            float(np.clip(v * (1 + rng.normal(0.0, 0.08)), 0.05, 1.0)),
        )
        for b, kind, v in score.drums
    ]
    return score


def _accompany(score: _Score, rng: np.random.Generator, harmony: _Harmony, bars: list[int]) -> None:
    """Add chords/accompaniment, bass (and the electronic arpeggio) to ``score``."""
    bpb = score.beats_per_bar
    genre = score.genre

    def voicing(chord: int, base: int) -> list[int]:
        """Root position chord tones as MIDI numbers, the root at or above diatonic ``base``."""
        root = chord + 7 * ((base - chord + 6) // 7)
        return [harmony.midi(root + k, chord) for k in (0, 2, 4)]

    def bass_root(chord: int, lo: int) -> int:
        """The chord's root as a MIDI number in ``[lo, lo + 12)``."""
        return lo + (harmony.midi(chord, chord) - lo) % 12

    def add(beat: float, dur: float, midi: float, vel: float, voice: str) -> None:
        score.notes.append(_Note(beat, dur, midi, vel, voice))

    if genre == "classical":
        style = "waltz" if bpb == 3 else ("alberti" if rng.random() < 0.5 else "arpeggio")
        for b, chord in enumerate(bars):
            t0 = b * bpb
            low = voicing(chord, -9)  # an octave below the melody
            add(t0, bpb, bass_root(chord, 38), 0.5, "bass")
            if style == "waltz":
                for beat in (1, 2):
                    for m in low:
                        add(t0 + beat, 0.9, m, 0.32, "chords")
            else:
                order = (0, 2, 1, 2) if style == "alberti" else (0, 1, 2, 1)
                seq = [low[i] for i in order] * 2
                if style == "arpeggio":
                    seq = [low[0], low[1], low[2], low[0] + 12, low[2], low[1], low[2], low[1]]
                for j, m in enumerate(seq):
                    add(t0 + 0.5 * j, 0.75, m, 0.34 if j % 2 else 0.4, "chords")
    elif genre == "folk":
        style = "strum" if rng.random() < 0.4 else "pick"
        for b, chord in enumerate(bars):
            t0 = b * bpb
            root = bass_root(chord, 40)
            # Alternating bass: root on the downbeat, the fifth half-way through the bar.
            add(t0, bpb / 2 if bpb == 4 else bpb, root, 0.65, "bass")
            if bpb == 4:
                add(t0 + 2, 2, root + 7 if root + 7 < 53 else root - 5, 0.55, "bass")
            mid = voicing(chord, -5)
            if style == "strum":
                for beat in range(bpb):
                    down = beat % 2 == 0
                    strings = [*mid, mid[0] + 12]
                    for s, m in enumerate(strings if down else strings[::-1]):
                        vel = (0.42 if down else 0.3) * (1.15 if beat == 0 else 1.0)
                        add(t0 + beat + 0.02 * s * score.bpm / 60, 0.95, m, vel, "chords")
            else:
                pattern = [mid[0], mid[2], mid[1], mid[2] + 0, mid[0] + 12, mid[2], mid[1], mid[2]]
                for j, m in enumerate(pattern[: 2 * bpb]):
                    add(t0 + 0.5 * j, 1.0, m, 0.36 if j % 2 else 0.42, "chords")
    else:
        arp = rng.random() < 0.6
        bass_style = int(rng.integers(3))
        for b, chord in enumerate(bars):
            t0 = b * bpb
            pad = voicing(chord, -6)
            for m in pad:
                add(t0, bpb, m, 0.5, "chords")
            root = bass_root(chord, 36)
            if bass_style == 0:  # off-beat eighths
                for beat in range(bpb):
                    add(t0 + beat + 0.5, 0.45, root, 0.8, "bass")
            elif bass_style == 1:  # rolling eighths, octave jump at the end
                for j in range(2 * bpb):
                    m = root + (12 if j in (3, 7) else 0)
                    add(t0 + 0.5 * j, 0.4, m, 0.85 if j % 2 else 0.7, "bass")
            else:  # syncopated
                for pos, dur in ((0, 0.75), (0.75, 0.75), (1.5, 1.0), (2.5, 0.5), (3, 0.75)):
                    add(t0 + pos, dur * 0.9, root, 0.8, "bass")
            if arp:
                tones = [*pad, pad[0] + 12]
                seq = tones + tones[-2:0:-1]
                for j in range(4 * bpb):
                    add(t0 + 0.25 * j, 0.2, seq[j % len(seq)] + 12, 0.3, "arp")


def _drum_part(score: _Score, rng: np.random.Generator, n_bars: int) -> None:
    """Add a drum part to ``score`` (none for classical)."""
    bpb = score.beats_per_bar
    drums = score.drums
    if score.genre == "folk":
        extra_kick = rng.random() < 0.5
        for b in range(n_bars):
            t0 = b * bpb
            if bpb == 4:
                drums += [(t0, "kick", 0.9), (t0 + 2, "kick", 0.8)]
                if extra_kick:
                    drums.append((t0 + 2.5, "kick", 0.55))
                drums += [(t0 + 1, "snare", 0.75), (t0 + 3, "snare", 0.8)]
            else:
                drums += [(t0, "kick", 0.9), (t0 + 1, "snare", 0.45), (t0 + 2, "snare", 0.45)]
            for j in range(2 * bpb):
                drums.append((t0 + 0.5 * j, "hat", 0.5 if j % 2 == 0 else 0.3))
    elif score.genre == "electronic":
        sixteenths = rng.random() < 0.5
        for b in range(n_bars):
            t0 = b * bpb
            for beat in range(bpb):
                drums.append((t0 + beat, "kick", 1.0))
                drums.append((t0 + beat + 0.5, "hat", 0.6))
                if sixteenths:
                    drums += [(t0 + beat + 0.25, "hat", 0.25), (t0 + beat + 0.75, "hat", 0.25)]
            drums += [(t0 + 1, "clap", 0.8), (t0 + 3, "clap", 0.8)]
            if b % 4 == 3:
                drums.append((t0 + 3.5, "openhat", 0.5))


# ---------------------------------------------------------------------------------- instruments


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _one_pole_lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    a = math.exp(-2.0 * math.pi * min(cutoff, 0.45 * sr) / sr)
    return signal.lfilter([1.0 - a], [1.0, -a], x)


def _piano(
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


def _pluck(
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


def _synth(
    voice: str, midi: float, dur: float, vel: float, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """The electronic instruments: pad, lead, bass and arpeggio."""
    f0 = _hz(midi)
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


def _sweep_lowpass(
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


def _drum_kit(genre: str, sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
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


# -------------------------------------------------------------------------------------- render


def _add(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    if start >= len(buf) or start < 0:
        return
    m = min(len(sig), len(buf) - start)
    buf[start : start + m] += sig[:m]


def _render(score: _Score, rng: np.random.Generator, n: int, sr: int) -> tuple[np.ndarray, float]:
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
            sig = _piano(_hz(note.midi), dur, note.vel, sr, rng, inharm)
        elif genre == "folk":
            f0 = _hz(note.midi)
            v = note.voice
            sig = _pluck(f0, dur, note.vel, sr, rng, pluck_t60[v], pluck_bright[v])
        else:
            sig = _synth(note.voice, note.midi, dur, note.vel, sr, rng)
        _add(tracks[note.voice], start, sig)

    drum_t = score.seconds_at(np.array([b for b, _, _ in score.drums], dtype=np.float64))
    if score.drums:
        kit = {k: v.astype(np.float32) for k, v in _drum_kit(genre, sr, rng).items()}
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
        synths = _sweep_lowpass(synths.astype(np.float64), cutoff, 2.2, sr, block)
        bass_sos = signal.butter(2, min(900.0, 0.4 * sr), fs=sr, output="sos")
        bass = signal.sosfilt(bass_sos, tracks["bass"] * duck)
        mix = synths + 0.7 * bass + 0.6 * tracks["drums"]
        drive = 2.0
    return np.asarray(mix, dtype=np.float64), drive


def _master(mix: np.ndarray, drive: float, sr: int) -> np.ndarray:
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


def compose(genre: str, *, seed: int, seconds: float = 15.0, sr: int = 22050) -> np.ndarray:
    """Compose and synthesise one song.

    Parameters
    ----------
    genre : str
        One of :data:`GENRES`.
    seed : int
        Non-negative seed; everything (key, tempo, progression, melody, humanisation, noise)
        follows from it and from ``genre``, so the same arguments give a bit-identical array.
    seconds : float, optional
        Duration; the song is cut (with a short fade) at exactly this length.
    sr : int, optional
        Sample rate in Hz (at least 8000).

    Returns
    -------
    y : np.ndarray
        Mono float32 audio of ``round(seconds * sr)`` samples, peak 0.8, mean 0.

    Raises
    ------
    ValueError
        (:class:`~noizenet.errors.ConfigError`) for an unknown genre, a negative seed, a
        non-positive duration or a sample rate below 8000.
    """
    if genre not in GENRES:
        raise ConfigError(f"unknown genre {genre!r}: expected one of {', '.join(GENRES)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"seconds must be positive, got {seconds!r}")
    if int(sr) != sr or sr < 8000:
        raise ConfigError(f"sr must be an integer of at least 8000 Hz, got {sr!r}")
    sr = int(sr)
    n = round(seconds * sr)
    if n == 0:
        raise ConfigError(f"seconds={seconds!r} at sr={sr} gives no samples")
    rng = np.random.default_rng([int(seed), GENRES.index(genre)])
    score = _compose_score(genre, rng, seconds)
    mix, drive = _render(score, rng, n, sr)
    return _master(mix, drive, sr)


# -------------------------------------------------------------------------------------- corpus


def _song_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1, dtype=np.uint32)[0])


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_embedded_corpus(
    cache_dir: Path,
    *,
    n_songs: int = 12,
    seconds: float = 15.0,
    seed: int = 0,
    sr: int = 22050,
) -> list[EmbeddedSong]:
    """Compose the embedded corpus into ``cache_dir`` once, and list its songs.

    Song ``i`` has genre ``GENRES[i % len(GENRES)]`` and a seed derived from ``(seed, i)``, and
    is written as 16-bit PCM WAV ``f"{i:02d}_{genre}.wav"``. ``manifest.json`` records the
    settings and :data:`COMPOSER_VERSION`; when it matches and every file exists nothing is
    rewritten. Files are written atomically (temporary name, then :func:`os.replace`), the
    manifest last, so an interrupted build is redone next time.

    Parameters
    ----------
    cache_dir : Path
        Folder for the WAV files and the manifest; created if missing.
    n_songs : int, optional
        Number of songs.
    seconds : float, optional
        Duration of each song.
    seed : int, optional
        Non-negative corpus seed.
    sr : int, optional
        Sample rate in Hz.

    Returns
    -------
    list of EmbeddedSong
        Sorted by id (``f"embedded-{i:02d}"``).
    """
    if isinstance(n_songs, bool) or not isinstance(n_songs, int) or n_songs < 0:
        raise ConfigError(f"n_songs must be a non-negative integer, got {n_songs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    cache_dir = Path(cache_dir)
    seconds = float(seconds)
    songs = []
    for i in range(n_songs):
        genre = GENRES[i % len(GENRES)]
        songs.append(
            EmbeddedSong(
                id=f"embedded-{i:02d}",
                genre=genre,
                path=cache_dir / f"{i:02d}_{genre}.wav",
                seconds=seconds,
                seed=_song_seed(seed, i),
            )
        )
    manifest = {
        "composer_version": COMPOSER_VERSION,
        "n_songs": n_songs,
        "seconds": seconds,
        "seed": seed,
        "sr": sr,
        "songs": [
            {"id": s.id, "genre": s.genre, "file": s.path.name, "seed": s.seed} for s in songs
        ],
    }
    if _complete(cache_dir, manifest, songs):
        return sorted(songs, key=lambda s: s.id)
    from noizenet.io import exclusive_lock

    cache_dir.mkdir(parents=True, exist_ok=True)
    # several processes (the ranks of a distributed run) may ask at once: one composes, the
    # others wait for it and find the corpus complete
    with exclusive_lock(cache_dir / ".lock"):
        if not _complete(cache_dir, manifest, songs):
            _compose_all(cache_dir, manifest, songs, seconds=seconds, sr=sr)
    return sorted(songs, key=lambda s: s.id)


def _read_manifest(cache_dir: Path) -> Any:
    try:
        return json.loads((cache_dir / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _complete(cache_dir: Path, manifest: dict, songs: list[EmbeddedSong]) -> bool:
    return _read_manifest(cache_dir) == manifest and all(s.path.is_file() for s in songs)


def _compose_all(
    cache_dir: Path, manifest: dict, songs: list[EmbeddedSong], *, seconds: float, sr: int
) -> None:
    manifest_path = cache_dir / _MANIFEST
    old = _read_manifest(cache_dir)
    manifest_path.unlink(missing_ok=True)  # an interrupted rebuild must not look complete
    for song in songs:
        y = compose(song.genre, seed=song.seed, seconds=seconds, sr=sr)
        _atomic_write(
            song.path,
            lambda tmp, y=y: sf.write(tmp, y, sr, format="WAV", subtype="PCM_16"),
        )
    if isinstance(old, dict):  # drop files of an older, larger corpus
        keep = {s.path.name for s in songs}
        for entry in old.get("songs", []):
            name = entry.get("file") if isinstance(entry, dict) else None
            if isinstance(name, str) and name not in keep and Path(name).name == name:
                (cache_dir / name).unlink(missing_ok=True)
    text = json.dumps(manifest, indent=2) + "\n"
    _atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
