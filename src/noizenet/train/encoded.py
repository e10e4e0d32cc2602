"""A track's model values, encoded only when a slice of them is read.

Training used to encode every track into a float32 array up front, so memory grew with the
corpus. :class:`EncodedTrack` wraps a track's audio (an array or a memory-mapped
:class:`~noizenet.corpus.cache.TrackAudio`) and a fitted codec, and encodes a chunk at the moment
:class:`~noizenet.train.streams.Streams` reads it: only the current batch exists as model values.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class EncodedTrack:
    """Model values of ``y`` under ``codec``, one value per sample, encoded on read.

    ``stats`` are the (center, scale) this track is encoded with; by default the codec's choice
    for the whole track (its own under per-file scaling), measured once here, never per chunk.
    """

    def __init__(self, y: Any, codec: Any, stats: tuple[float, float] | None = None) -> None:
        self.y = y
        self.codec = codec
        self.stats = stats if stats is not None else codec.stats_for(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("EncodedTrack is read by slices")
        return self.codec.encode(self.y[key], stats=self.stats)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        v = self[:]
        return v if dtype is None else v.astype(dtype, copy=False)
