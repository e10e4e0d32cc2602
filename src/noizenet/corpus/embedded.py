"""The embedded corpus: songs of the composer (:mod:`noizenet.synth`) cached as WAV files.

The demo and the tests need no download: :func:`build_embedded_corpus` composes each song once
into the cache folder, under a lock shared by every process of a run, and lists the songs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.audio import write as write_audio
from noizenet.errors import ConfigError
from noizenet.io import atomic_write_json, exclusive_lock
from noizenet.synth import COMPOSER_VERSION, GENRES, compose

__all__ = [
    "COMPOSER_VERSION",
    "GENRES",
    "EmbeddedSong",
    "build_embedded_corpus",
    "compose",
]

_MANIFEST = "manifest.json"


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


def _song_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1, dtype=np.uint32)[0])


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
    rewritten. Files are written atomically and durably (:mod:`noizenet.io`), the manifest
    last, so an interrupted build is redone next time.

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
        write_audio(song.path, y, sr=sr)
    if isinstance(old, dict):  # drop files of an older, larger corpus
        keep = {s.path.name for s in songs}
        for entry in old.get("songs", []):
            name = entry.get("file") if isinstance(entry, dict) else None
            if isinstance(name, str) and name not in keep and Path(name).name == name:
                (cache_dir / name).unlink(missing_ok=True)
    atomic_write_json(manifest_path, manifest)
