"""Where songs come from: a folder of audio files or the embedded synthetic corpus.

A source lists :class:`Track` records (id, path, genre); :func:`load_corpus` picks the training
and validation tracks reproducibly from the seed, decodes them, and reports broken tracks instead
of failing on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from noizenet.config import DataConfig
from noizenet.errors import AudioError, NoizeNetError

MIN_SECONDS = 0.1  # shorter tracks teach nothing and are skipped
SILENCE_PEAK = 1e-4  # a track whose peak stays below this is silent


@dataclass(frozen=True)
class Track:
    """One song a source knows about, before decoding."""

    id: str
    path: Path
    genre: str = "unknown"


@dataclass
class LoadedTrack:
    track: Track
    y: np.ndarray  # (samples,) float32 mono at the corpus sample rate

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

    def summary(self) -> str:
        secs = sum(t.y.size for t in self.train) / self.sr
        text = (
            f"{len(self.train)} training tracks ({secs:.1f} s), {len(self.val)} validation tracks"
        )
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text


def cache_root(cfg: DataConfig | None = None) -> Path:
    """Folder for the embedded corpus and decoded audio."""
    if cfg is not None and cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    env = os.environ.get("NOIZENET_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "noizenet"


def list_tracks(cfg: DataConfig, *, seed: int = 0) -> list[Track]:
    """Every track the configured source offers, in a deterministic order."""
    source = cfg.source
    if source == "embedded":
        from noizenet.corpus.embedded import build_embedded_corpus

        seconds = max(15.0, cfg.offset + cfg.seconds)
        folder = cache_root(cfg) / f"embedded-s{seed}-n{cfg.embedded_songs}-{seconds:g}s"
        songs = build_embedded_corpus(
            folder, n_songs=cfg.embedded_songs, seconds=seconds, seed=seed, sr=cfg.sample_rate
        )
        return [Track(s.id, s.path, s.genre) for s in songs]
    from noizenet.corpus.folder import folder_tracks

    return folder_tracks(Path(source).expanduser())


def load_track(
    track: Track, *, sr: int, offset: float = 0.0, seconds: float | None = None
) -> np.ndarray:
    """Decode one track and check it is usable; raises :class:`AudioError` with the reason."""
    from noizenet import audio

    y = audio.load(track.path, sr=sr, offset=offset, duration=seconds)
    if y.size < MIN_SECONDS * sr:
        raise AudioError(f"{track.path}: too short ({y.size / sr:.3f} s < {MIN_SECONDS} s)")
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise AudioError(f"{track.path}: silent (peak below {SILENCE_PEAK:g})")
    return y


def load_corpus(cfg: DataConfig, *, seed: int = 0, progress: bool = True) -> Corpus:
    """Pick, decode and split the tracks for one training run.

    Tracks are shuffled with ``seed`` and split by track: the first usable ``cfg.songs`` train,
    the next ``cfg.val_songs`` validate. A broken track is skipped with its reason and the next
    one takes its place, so a run survives a messy collection.
    """
    tracks = list_tracks(cfg, seed=seed)
    if not tracks:
        raise NoizeNetError(
            f"{cfg.source}: no audio files found (looked for .wav, .flac, .ogg, .mp3, .aiff, .au)"
        )
    order = np.random.default_rng(seed).permutation(len(tracks))
    wanted = cfg.songs + cfg.val_songs
    loaded: list[LoadedTrack] = []
    skipped: list[tuple[Track, str]] = []
    from noizenet.progress import progress_bar

    with progress_bar(
        total=min(wanted, len(tracks)), desc="decode", unit="song", disable=not progress
    ) as bar:
        for i in order:
            if len(loaded) == wanted:
                break
            track = tracks[int(i)]
            try:
                y = load_track(track, sr=cfg.sample_rate, offset=cfg.offset, seconds=cfg.seconds)
            except AudioError as exc:
                skipped.append((track, str(exc)))
                continue
            loaded.append(LoadedTrack(track, y))
            bar.update(1)
    if not loaded:
        reasons = "; ".join(reason for _, reason in skipped[:3])
        raise NoizeNetError(f"{cfg.source}: no usable audio ({len(skipped)} skipped: {reasons})")
    n_val = min(cfg.val_songs, max(0, len(loaded) - 1))  # never validate on the only song
    n_train = len(loaded) - n_val
    return Corpus(train=loaded[:n_train], val=loaded[n_train:], sr=cfg.sample_rate, skipped=skipped)
