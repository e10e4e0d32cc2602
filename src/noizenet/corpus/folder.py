"""A folder of songs: every audio file below it, in a deterministic order."""

from __future__ import annotations

from pathlib import Path

from noizenet.audio import AUDIO_EXTENSIONS
from noizenet.corpus.track import Track
from noizenet.errors import NoizeNetError


def folder_tracks(root: Path) -> list:
    """List audio files below ``root`` recursively, sorted by relative path.

    The genre of a track is the first folder below ``root`` that holds it (``root/jazz/a.mp3`` is
    jazz), or "unknown" for files directly in ``root``. Hidden files and folders are ignored.
    A single file is accepted as a one-track corpus.
    """

    if not root.exists():
        raise NoizeNetError(f"{root}: no such file or folder")
    if root.is_file():
        return [Track(root.stem, root, "unknown")]
    tracks = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        genre = rel.parts[0] if len(rel.parts) > 1 else "unknown"
        tracks.append(Track(rel.with_suffix("").as_posix(), path, genre))
    return tracks
