"""Where songs come from: a folder, the Free Music Archive (``fma:ROOT``) or the embedded corpus.

A source lists :class:`Track` records (id, path, genre, and the dataset's split where it has
one); :func:`list_tracks` applies the genre and split filters; :func:`load_corpus` picks the
training and validation tracks reproducibly from the seed, decodes each once into the decode
cache (:mod:`noizenet.corpus.cache`), and reports broken tracks instead of failing on them. The
chosen tracks come back as memory-mapped views, never as whole arrays in memory.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.config import DataConfig
from noizenet.corpus.cache import CacheReport, DecodeCache
from noizenet.corpus.fma import fma_tracks
from noizenet.corpus.folder import folder_tracks
from noizenet.corpus.stats import Moments, moments
from noizenet.corpus.track import Track
from noizenet.errors import AudioError, ConfigError, NoizeNetError

MIN_SECONDS = 0.1  # shorter tracks teach nothing and are skipped
SILENCE_PEAK = 1e-4  # a track whose amplitude (half its peak-to-peak range) stays below is silent
FMA_PREFIX = "fma:"


@dataclass
class LoadedTrack:
    track: Track
    y: Any  # (samples,) float32 mono at the corpus sample rate: a TrackAudio view or an array
    moments: Moments | None = None  # of y, measured while checking the track

    @property
    def id(self) -> str:
        return self.track.id


@dataclass
class Corpus:
    """Decoded training and validation tracks, and what was skipped and why."""

    train: list[LoadedTrack]
    val: list[LoadedTrack]
    sr: int
    skipped: list[tuple[Track, str]] = field(default_factory=list)
    cache: CacheReport = field(default_factory=CacheReport)

    def summary(self) -> str:
        secs = sum(t.y.size for t in self.train) / self.sr
        text = (
            f"{len(self.train)} training tracks ({secs:.1f} s), {len(self.val)} validation tracks"
        )
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text

    def skipped_summary(self) -> str:
        """One line naming every skipped track and why, or "" when none was."""
        if not self.skipped:
            return ""
        items = "; ".join(f"{t.id} ({reason})" for t, reason in self.skipped)
        return f"skipped {len(self.skipped)} unusable track(s): {items}"


def cache_root(cfg: DataConfig | None = None) -> Path:
    """Folder for the embedded corpus and decoded audio."""
    if cfg is not None and cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    env = os.environ.get("NOIZENET_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "noizenet"


def list_tracks(cfg: DataConfig, *, seed: int = 0) -> list[Track]:
    """Every track the configured source offers after the genre and split filters, in a
    deterministic order."""
    source = cfg.source
    if source == "embedded":
        from noizenet.corpus.embedded import build_embedded_corpus

        seconds = max(15.0, cfg.offset + cfg.seconds)
        folder = cache_root(cfg) / f"embedded-s{seed}-n{cfg.embedded_songs}-{seconds:g}s"
        songs = build_embedded_corpus(
            folder, n_songs=cfg.embedded_songs, seconds=seconds, seed=seed, sr=cfg.sample_rate
        )
        tracks = [Track(s.id, s.path, s.genre) for s in songs]
    elif source.startswith(FMA_PREFIX):
        tracks = fma_tracks(Path(source[len(FMA_PREFIX) :]).expanduser(), subset=cfg.subset)
    else:
        tracks = folder_tracks(Path(source).expanduser())
    return filter_tracks(tracks, cfg)


def no_audio_message(source: str) -> str:
    """The one line for a folder holding no file of a known audio format."""
    from noizenet.audio import AUDIO_EXTENSIONS

    return f"{source}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})"


def filter_tracks(tracks: list[Track], cfg: DataConfig) -> list[Track]:
    """Keep the tracks of ``cfg.genre`` (any case) and ``cfg.split``; unknown names are errors."""
    if cfg.genre:
        known = {t.genre.casefold(): t.genre for t in tracks}
        unknown = [g for g in cfg.genre if g.casefold() not in known]
        if unknown:
            names = ", ".join(sorted(known.values())) or "none"
            raise ConfigError(
                f"data.genre: no track of genre {unknown[0]!r} in {cfg.source} "
                f"(its genres: {names})"
            )
        wanted = {g.casefold() for g in cfg.genre}
        tracks = [t for t in tracks if t.genre.casefold() in wanted]
    if cfg.split:
        if not any(t.split for t in tracks):
            raise ConfigError(
                f"data.split: {cfg.source} has no dataset split (only fma:ROOT sources have one)"
            )
        tracks = [t for t in tracks if t.split in cfg.split]
    return tracks


def candidate_pools(
    tracks: list[Track], cfg: DataConfig, *, seed: int = 0
) -> tuple[list[Track], list[Track] | None]:
    """The shuffled tracks to draw training songs from, and validation songs from.

    Where the dataset has its own split (FMA), training songs come from every split but
    "validation" and validation songs from "validation"; without ``--split`` the "test" split is
    left out, unseen. Otherwise (a folder, the embedded corpus, or a split filter that leaves no
    validation tracks) there is one pool, shuffled with the seed, split by track: the second
    element is then None.
    """
    if any(t.split for t in tracks):
        pool = tracks if cfg.split else [t for t in tracks if t.split != "test"]
        val = [t for t in pool if t.split == "validation"]
        rest = [t for t in pool if t.split != "validation"]
        if val and rest:
            return _shuffled(rest, [seed, 1]), _shuffled(val, [seed, 2])
        tracks = pool
    return _shuffled(tracks, seed), None


def validation_tracks(pattern: str) -> list[Track]:
    """The tracks ``--val-data`` names: a folder's or a file's audio (as a ``--data`` folder
    lists them), or the audio files a glob pattern matches, sorted by path."""
    from noizenet.audio import AUDIO_EXTENSIONS

    path = Path(pattern).expanduser()
    if path.exists() or not glob.has_magic(pattern):
        return folder_tracks(path)
    matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
    tracks = [
        Track(p.stem, p, "unknown")
        for p in matches
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    ]
    if not tracks:
        raise NoizeNetError(f"data.val_source: {pattern!r} matches no audio file")
    return tracks


def _shuffled(tracks: list[Track], seed: Any) -> list[Track]:
    return [tracks[int(i)] for i in np.random.default_rng(seed).permutation(len(tracks))]


def load_track(
    track: Track, *, sr: int, offset: float = 0.0, seconds: float | None = None
) -> np.ndarray:
    """Decode one track directly (no cache) and check it is usable; raises :class:`AudioError`."""
    from noizenet import audio

    y = audio.load(track.path, sr=sr, offset=offset, duration=seconds)
    reason = segment_problem(Moments.of_array(y), sr=sr)
    if reason:
        raise AudioError(f"{track.path}: {reason}")
    return y


def segment_problem(m: Moments, *, sr: int, offset: float = 0.0) -> str | None:
    """Why the chosen part of a track cannot train a model (too short, silent), or None."""
    if m.n < MIN_SECONDS * sr:
        after = f" after an offset of {offset:g} s" if offset else ""
        return f"too short ({m.n / sr:.3f} s{after} < {MIN_SECONDS} s)"
    if (m.max - m.min) / 2 < SILENCE_PEAK:  # also a constant DC offset: zero variance
        return f"silent (amplitude below {SILENCE_PEAK:g})"
    return None


class _Picker:
    """Walks a shuffled pool, decoding tracks into the cache in batches, until enough are usable."""

    def __init__(
        self, cfg: DataConfig, *, progress: bool, log: Callable[[str], Any] | None
    ) -> None:
        self.cfg = cfg
        self.cache = DecodeCache(cache_root(cfg), sr=cfg.sample_rate)
        self.progress = progress
        self.log = log
        self.skipped: list[tuple[Track, str]] = []
        self.report = CacheReport()

    def take(self, pool: list[Track], n: int) -> list[LoadedTrack]:
        cfg = self.cfg
        got: list[LoadedTrack] = []
        i = 0
        while len(got) < n and i < len(pool):
            batch = pool[i : i + n - len(got)]  # usually enough: broken files are rare
            i += len(batch)
            entries, report = self.cache.ensure(
                [t.path for t in batch],
                workers=cfg.decode_workers,
                progress=self.progress,
                log=self.log,
            )
            self.report = self.report + report
            for track in batch:
                entry = entries[track.path]
                if entry.get("status") != "ok":
                    self.skipped.append((track, entry.get("reason") or "cannot decode"))
                    continue
                y = self.cache.audio(entry, offset=cfg.offset, seconds=cfg.seconds)
                m = moments(y)
                reason = segment_problem(m, sr=cfg.sample_rate, offset=cfg.offset)
                if reason:
                    self.skipped.append((track, reason))
                    continue
                got.append(LoadedTrack(track, y, m))
        return got


def load_corpus(
    cfg: DataConfig,
    *,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], Any] | None = None,
) -> Corpus:
    """Pick, decode (once, into the cache) and split the tracks for one training run.

    Tracks are shuffled with ``seed`` and split by track: the first usable ``cfg.songs`` train,
    the next ``cfg.val_songs`` validate (from the dataset's "validation" split where it has
    one, see :func:`candidate_pools`). A broken track is skipped with its reason and the next
    one takes its place, so a run survives a messy collection; if nothing usable remains, a
    one-line :class:`~noizenet.errors.NoizeNetError` says why.
    """
    tracks = list_tracks(cfg, seed=seed)
    if not tracks:
        filters = f" of genre {','.join(cfg.genre)}" if cfg.genre else ""
        if cfg.source.startswith(FMA_PREFIX) or cfg.genre or cfg.split:
            raise NoizeNetError(f"{cfg.source}: no tracks{filters} match the filters")
        raise NoizeNetError(no_audio_message(cfg.source))
    train_pool, val_pool = candidate_pools(tracks, cfg, seed=seed)
    if cfg.val_source:  # validate on these files, and never train on them
        val_pool = validation_tracks(cfg.val_source)
        held = {t.path.resolve() for t in val_pool}
        train_pool = [t for t in train_pool if t.path.resolve() not in held]
        val_pool = _shuffled(val_pool, [seed, 2])
    picker = _Picker(cfg, progress=progress, log=log)
    if val_pool is None:
        loaded = picker.take(train_pool, cfg.songs + cfg.val_songs)
        n_val = min(cfg.val_songs, max(0, len(loaded) - 1))  # never validate on the only song
        train, val = loaded[: len(loaded) - n_val], loaded[len(loaded) - n_val :]
    else:
        train = picker.take(train_pool, cfg.songs)
        val = picker.take(val_pool, cfg.val_songs) if train else []
    if not train:
        if not train_pool and cfg.val_source:
            raise NoizeNetError(
                f"{cfg.source}: no tracks to train on (every one is in --val-data {cfg.val_source})"
            )
        if not train_pool:
            raise NoizeNetError(
                f"{cfg.source}: no tracks to train on (the 'test' split is held out; "
                "--split test draws from it)"
            )
        reasons = "; ".join(f"{t.id}: {reason}" for t, reason in picker.skipped[:3])
        raise NoizeNetError(
            f"{cfg.source}: no usable audio ({len(picker.skipped)} skipped: {reasons})"
        )
    return Corpus(
        train=train, val=val, sr=cfg.sample_rate, skipped=picker.skipped, cache=picker.report
    )
