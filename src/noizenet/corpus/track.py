"""A song a source knows about, before decoding (shared by every source module)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Track:
    """One song a source knows about, before decoding."""

    id: str
    path: Path
    genre: str = "unknown"
    split: str | None = None  # the dataset's own split (FMA: training, validation, test)
    title: str = ""
    artist: str = ""
    album: str = ""
    license: str = ""

    def describe(self) -> dict[str, Any]:
        """Id, genre, path, and whatever the source knows besides (split, title, licence)."""
        info: dict[str, Any] = {"id": self.id, "genre": self.genre, "path": str(self.path)}
        for name in ("split", "title", "artist", "album", "license"):
            value = getattr(self, name)
            if value:
                info[name] = value
        return info
