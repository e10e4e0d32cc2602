"""The score: key, tempo, chord progression, melody, accompaniment and drums, as notes in beats."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class Note:
    beat: float  # onset, in beats from the start of the song
    dur: float  # in beats
    midi: float
    vel: float  # 0..1
    voice: str  # "melody", "chords", "bass", "arp"


@dataclass
class Score:
    genre: str
    bpm: float
    beats_per_bar: int
    mode: str
    tonic: int  # MIDI number of the melody's tonic
    progression: tuple[int, ...]
    chords: list[tuple[int, ...]]  # pitch classes of the chord of each bar
    notes: list[Note] = field(default_factory=list)
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


def compose_score(genre: str, rng: np.random.Generator, seconds: float) -> Score:
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
    score = Score(
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
            score.notes.append(Note(k * cycle_beats + beat, dur, midi, vel, "melody"))

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


def _accompany(score: Score, rng: np.random.Generator, harmony: _Harmony, bars: list[int]) -> None:
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
        score.notes.append(Note(beat, dur, midi, vel, voice))

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


def _drum_part(score: Score, rng: np.random.Generator, n_bars: int) -> None:
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
