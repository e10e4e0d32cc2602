"""The embedded corpus composer: deterministic, musical, distinct genres, cached on disk."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from itertools import combinations

import numpy as np
import pytest
import soundfile as sf
from conftest import run_at_once

from noizenet.corpus import embedded
from noizenet.corpus.embedded import GENRES, EmbeddedSong, build_embedded_corpus, compose
from noizenet.synth.score import compose_score

SR = 22050


@cache
def _song(genre: str, seed: int, seconds: float = 4.0) -> np.ndarray:
    y = compose(genre, seed=seed, seconds=seconds, sr=SR)
    y.setflags(write=False)
    return y


def _frames(y: np.ndarray, size: int) -> np.ndarray:
    n = len(y) // size
    return y[: n * size].astype(np.float64).reshape(n, size)


def _features(y: np.ndarray) -> dict[str, float]:
    """Spectral centroid and the share of power above 5 kHz and below 150 Hz."""
    spec = np.abs(np.fft.rfft(_frames(y, 1024) * np.hanning(1024), axis=1)) ** 2
    power = spec.sum(axis=0)
    freqs = np.fft.rfftfreq(1024, 1 / SR)
    total = power.sum()
    return {
        "centroid": float((freqs * power).sum() / total),
        "high": float(power[freqs > 5000].sum() / total),
        "low": float(power[freqs < 150].sum() / total),
    }


def test_genres_are_at_least_three() -> None:
    assert len(GENRES) >= 3
    assert {"classical", "folk", "electronic"} <= set(GENRES)


def test_same_seed_is_bit_identical_and_seeds_differ() -> None:
    for genre in GENRES:
        a = compose(genre, seed=7, seconds=1.5, sr=SR)
        b = compose(genre, seed=7, seconds=1.5, sr=SR)
        c = compose(genre, seed=8, seconds=1.5, sr=SR)
        assert a.tobytes() == b.tobytes()
        assert a.shape == c.shape
        assert np.max(np.abs(a - c)) > 0.1


def test_genres_differ_for_the_same_seed() -> None:
    for g1, g2 in combinations(GENRES, 2):
        assert not np.allclose(_song(g1, 0), _song(g2, 0), atol=1e-2)


@pytest.mark.parametrize("genre", GENRES)
@pytest.mark.parametrize(("seconds", "sr"), [(4.0, SR), (1.2345, SR), (0.7, 16000)])
def test_output_contract(genre: str, seconds: float, sr: int) -> None:
    y = _song(genre, 3, seconds) if sr == SR else compose(genre, seed=3, seconds=seconds, sr=sr)
    assert y.dtype == np.float32
    assert y.ndim == 1
    assert len(y) == round(seconds * sr)
    assert np.all(np.isfinite(y))
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) > 0.05
    assert np.max(np.abs(y)) <= 0.8 + 1e-6
    assert np.max(np.abs(y)) >= 0.79  # normalised, not merely bounded
    assert abs(float(np.mean(y, dtype=np.float64))) < 1e-3


def test_genres_sound_different() -> None:
    """For every pair of genres one feature separates all their songs, over several seeds."""
    seeds = range(4)
    feats = {g: [_features(_song(g, s)) for s in seeds] for g in GENRES}
    for g1, g2 in combinations(GENRES, 2):
        separated = []
        for name in ("centroid", "high", "low"):
            a = np.array([f[name] for f in feats[g1]])
            b = np.array([f[name] for f in feats[g2]])
            # Disjoint ranges with a 10 % margin.
            if a.min() > 1.1 * b.max() or b.min() > 1.1 * a.max():
                separated.append(name)
        assert separated, f"{g1} and {g2} are not told apart by any feature"
    # And the expected characters: drums make folk hissier than the piano, electronic has the
    # most sub-bass (four-on-the-floor kick and bass line).
    high = {g: max(f["high"] for f in feats[g]) for g in GENRES}
    low = {g: min(f["low"] for f in feats[g]) for g in GENRES}
    assert min(f["high"] for f in feats["folk"]) > 2 * high["classical"]
    assert low["electronic"] > max(f["low"] for g in ("classical", "folk") for f in feats[g])


def test_percussion_only_where_the_genre_has_it() -> None:
    """Drum hits give sharp broadband onsets: high-band energy jumps by a large factor."""

    def hf_jumps(y: np.ndarray) -> int:
        spec = np.abs(np.fft.rfft(_frames(y, 256) * np.hanning(256), axis=1)) ** 2
        freqs = np.fft.rfftfreq(256, 1 / SR)
        band = spec[:, freqs > 6000].sum(axis=1) + 1e-9
        return int(np.sum(band[1:] / band[:-1] > 8.0))

    for seed in range(3):
        assert hf_jumps(_song("classical", seed)) < hf_jumps(_song("folk", seed))
        assert hf_jumps(_song("classical", seed)) < hf_jumps(_song("electronic", seed))
        assert hf_jumps(_song("folk", seed)) >= 4  # several beats' worth of hits in 4 s
        assert hf_jumps(_song("electronic", seed)) >= 4


@pytest.mark.parametrize("genre", GENRES)
def test_songs_have_notes(genre: str) -> None:
    for seed in range(3):
        y = _song(genre, seed, 6.0)
        # The loudness moves with the notes (not a drone).
        rms = np.sqrt(np.mean(_frames(y, int(0.05 * SR)) ** 2, axis=1))
        assert rms.std() / rms.mean() > 0.08
        assert np.percentile(rms, 90) > 1.25 * np.percentile(rms, 10)
        # The strongest pitch (80 Hz to 2 kHz, 0.25 s frames) changes over time.
        size = SR // 4
        spec = np.abs(np.fft.rfft(_frames(y, size) * np.hanning(size), axis=1))
        freqs = np.fft.rfftfreq(size, 1 / SR)
        band = (freqs >= 80) & (freqs <= 2000)
        peak = freqs[band][np.argmax(spec[:, band], axis=1)]
        midi = np.round(69 + 12 * np.log2(peak / 440)).astype(int)
        assert len(set(midi.tolist())) >= 3
        assert np.count_nonzero(np.diff(midi)) >= 3


@pytest.mark.parametrize("genre", GENRES)
def test_melody_follows_the_harmony(genre: str) -> None:
    """Strong-beat melody notes are chord tones; the melody moves mostly by small steps."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        score = compose_score(genre, rng, 15.0)
        bpb = score.beats_per_bar
        strong = (0.0, 2.0) if bpb == 4 else (0.0,)
        melody = sorted((n for n in score.notes if n.voice == "melody"), key=lambda n: n.beat)
        assert len(melody) >= 8
        hits = total = 0
        for note in melody:
            grid = round(note.beat * 4) / 4  # undo the onset humanisation
            bar, pos = divmod(grid, bpb)
            if pos in strong and int(bar) < len(score.chords):
                total += 1
                hits += int(note.midi) % 12 in score.chords[int(bar)]
        assert total >= 4
        assert hits / total >= 0.8
        steps = np.abs(np.diff([n.midi for n in melody]))
        assert np.median(steps) <= 3
        assert np.mean(steps <= 5) >= 0.75
        # Some humanisation: onsets are not all on the sixteenth grid.
        assert any(abs(n.beat * 4 - round(n.beat * 4)) > 1e-3 for n in melody)


def test_unknown_genre_raises_value_error() -> None:
    with pytest.raises(ValueError, match="polka") as info:
        compose("polka", seed=0, seconds=1.0)
    for genre in GENRES:
        assert genre in str(info.value)


@pytest.mark.parametrize(
    "kwargs", [{"seed": -1}, {"seed": 0, "seconds": 0.0}, {"seed": 0, "sr": 100}]
)
def test_bad_arguments_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        compose("folk", **kwargs)


def test_build_embedded_corpus(tmp_path) -> None:
    cache_dir = tmp_path / "corpus"
    songs = build_embedded_corpus(cache_dir, n_songs=4, seconds=2.0, seed=0)
    assert [s.id for s in songs] == [f"embedded-{i:02d}" for i in range(4)]
    assert all(isinstance(s, EmbeddedSong) for s in songs)
    assert {s.genre for s in songs[:3]} == set(GENRES[:3])
    assert len({s.seed for s in songs}) == 4
    for i, song in enumerate(songs):
        assert song.path == cache_dir / f"{i:02d}_{song.genre}.wav"
        assert song.path.is_file()
        assert song.seconds == 2.0
        info = sf.info(str(song.path))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        data, sr = sf.read(song.path, dtype="int16")
        assert sr == SR and data.shape == (round(2.0 * SR),)
        # The file holds exactly the composed song (to 16-bit precision).
        y = compose(song.genre, seed=song.seed, seconds=2.0, sr=SR)
        assert np.max(np.abs(data / 32768.0 - y)) < 1e-3
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    assert manifest["composer_version"] == embedded.COMPOSER_VERSION
    assert not [p for p in cache_dir.iterdir() if p.name.endswith(".tmp")]

    # A second call with the same settings rewrites nothing.
    files = sorted(cache_dir.iterdir())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    again = build_embedded_corpus(cache_dir, n_songs=4, seconds=2.0, seed=0)
    assert again == songs
    assert sorted(cache_dir.iterdir()) == files
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes

    # A missing file triggers a rebuild.
    songs[1].path.unlink()
    build_embedded_corpus(cache_dir, n_songs=4, seconds=2.0, seed=0)
    assert songs[1].path.is_file()

    # A different seed gives different songs.
    other_dir = tmp_path / "other"
    other = build_embedded_corpus(other_dir, n_songs=4, seconds=2.0, seed=1)
    for a, b in zip(songs, other, strict=True):
        assert a.path.name == b.path.name
        assert a.seed != b.seed
        assert a.path.read_bytes() != b.path.read_bytes()


def test_build_embedded_corpus_rebuilds_when_settings_change(tmp_path) -> None:
    first = build_embedded_corpus(tmp_path, n_songs=4, seconds=1.0, seed=0)
    before = first[0].path.read_bytes()
    second = build_embedded_corpus(tmp_path, n_songs=2, seconds=1.0, seed=5)
    assert len(second) == 2
    assert second[0].path.read_bytes() != before
    # Files of the larger, older corpus are gone; the manifest describes the new one.
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == [s.path.name for s in second]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["n_songs"], manifest["seed"]) == (2, 5)


_BUILD = """
import sys
from noizenet.corpus import embedded
composed = []
real = embedded.compose
embedded.compose = lambda *a, **k: composed.append(a) or real(*a, **k)
embedded.build_embedded_corpus(sys.argv[1], n_songs=3, seconds=0.5, seed=0)
print(len(composed))
"""


def test_processes_building_at_once_compose_every_song_exactly_once(tmp_path) -> None:
    """The ranks of a distributed run ask for the corpus together: one composes, the others
    wait on the lock and find it done."""
    outs = run_at_once(_BUILD, str(tmp_path / "corpus"))
    assert sum(int(o.strip().splitlines()[-1]) for o in outs) == 3
    assert len(list((tmp_path / "corpus").glob("*.wav"))) == 3


# sha256 (first 16 hex digits) of songs made by main's corpus/embedded.py (c79964d) before the
# composer moved to noizenet.synth: the demo, the tests and old caches depend on these bits
_MAIN_SONGS = {
    ("classical", 0, 2.0, 22050): "9da30cb5ae3e789e",
    ("folk", 3, 2.0, 22050): "36f3c7fc2ab0de63",
    ("electronic", 11, 2.0, 22050): "4f54cf852fdb840e",
    ("folk", 5, 1.0, 16000): "317d8203596f2788",
}
_MAIN_FILES = {
    "00_classical.wav": "0611b0f044cb5864",
    "01_folk.wav": "af42d717c7c80e78",
    "02_electronic.wav": "adcbcc0283dc0444",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize("key", sorted(_MAIN_SONGS))
def test_songs_are_bit_identical_to_mains_composer(key: tuple) -> None:
    genre, seed, seconds, sr = key
    assert _sha(compose(genre, seed=seed, seconds=seconds, sr=sr).tobytes()) == _MAIN_SONGS[key]


def test_corpus_files_are_bit_identical_and_written_durably(tmp_path, monkeypatch) -> None:
    """The WAV files match main's byte for byte; each file and the manifest is fsynced."""
    import os

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    songs = build_embedded_corpus(tmp_path, n_songs=3, seconds=1.0, seed=0)
    assert {s.path.name: _sha(s.path.read_bytes()) for s in songs} == _MAIN_FILES
    assert len(synced) >= 2 * 4  # the file and its folder, for 3 songs and the manifest
