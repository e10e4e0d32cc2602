"""The embedded corpus's composer: deterministic synthetic songs, bit-identical from a seed.

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

import math

import numpy as np

from noizenet.errors import ConfigError
from noizenet.synth.render import master, render
from noizenet.synth.score import compose_score

__all__ = ["COMPOSER_VERSION", "GENRES", "compose"]

#: Bumped whenever the composer's output changes, so cached corpora are rebuilt.
COMPOSER_VERSION = 1

#: The genres :func:`compose` knows, in the round-robin order of :func:`build_embedded_corpus`.
GENRES: tuple[str, ...] = ("classical", "folk", "electronic")


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
    score = compose_score(genre, rng, seconds)
    mix, drive = render(score, rng, n, sr)
    return master(mix, drive, sr)
