"""Cut an encoded corpus into B parallel streams walked in chunks of L samples.

Stateful truncated back-propagation through time: each stream is a contiguous run of chunks
from the (per-epoch shuffled) songs, and the trainer carries every stream's hidden state from one
chunk to the next, resetting it where a song starts. ``batch=1, chunk=None`` (whole song) is the
paper's "one batch" mode; ``stateless=True`` shuffles independent short windows and resets the
state before each, the mode the paper found to learn only noise (its figure 17).

``stride`` (the paper's "step size") sets where consecutive chunks of a song start: smaller than
the chunk they overlap, larger they skip samples; the state is carried across them all the same,
as the authors' sliding-window code did.

Targets are the next sample: a chunk of inputs ``v[s : s+L]`` predicts ``v[s+1 : s+L+1]``; the
last sample of a song has no target, and padding past a song's end is masked out of the loss.
A model with a ``lookback`` of K (:mod:`noizenet.models.base`) gets ``v[s-K : s+L]``: the K
samples before the chunk in front of it, silence (``pad``) where they precede the song.

Tracks are read one chunk at a time, by slicing: they may be plain arrays or lazy views (a
memory-mapped track encoded as it is read, :class:`~noizenet.train.encoded.EncodedTrack`), so
the corpus never has to fit in memory and only the current batch is ever encoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Batch:
    """One training step for all streams. Shapes are (streams, time[, dim])."""

    x: np.ndarray  # (B, lookback + T, dim) inputs
    y: np.ndarray  # (B, T, dim) targets: the next sample
    mask: np.ndarray  # (B, T) bool, False on padding
    reset: np.ndarray  # (B,) bool: zero this stream's state before the step
    step: int  # index of this step within the epoch
    # samples (unmasked positions) in this step over ALL ranks' streams: the loss is normalised
    # by it, so that summing the ranks' gradients gives the whole batch's mean
    total_samples: int

    @property
    def samples(self) -> int:
        """Samples in this rank's streams."""
        return int(self.mask.sum())


class Streams:
    """Plans, per epoch, which chunk each stream reads at each step.

    The plan is a pure function of ``(seed, epoch)``, so an interrupted epoch can be resumed at
    any step (``start_step``) and distributed ranks can each take their own streams (``rank``,
    ``world``) of one global plan without overlap.
    """

    def __init__(
        self,
        tracks: Sequence[Any],
        *,
        batch: int,
        chunk: int | None,
        stateless: bool = False,
        stride: int | None = None,
        lookback: int = 0,
        pad: float = 0.0,
    ) -> None:
        """``tracks``: arrays (samples,) or (samples, dim), or anything with ``len()`` and
        slicing that returns such arrays (read only a chunk at a time). ``lookback``: samples
        each chunk's input carries before its first target, ``pad`` before a song starts."""
        if not tracks:
            raise ValueError("no tracks to train on")
        self.tracks = list(tracks)
        self.lengths = np.array([len(t) for t in self.tracks], dtype=np.int64)
        if np.any(self.lengths < 2):
            raise ValueError("every track needs at least 2 samples (an input and its target)")
        self.dim = self._read(0, 0, 1).shape[1]
        self.batch = batch
        self.chunk = chunk
        self.stateless = stateless
        if stateless and chunk is None:
            raise ValueError("stateless training needs a finite chunk length")
        # the paper's "step size": chunk k of a song starts at k * stride (None: the chunk length)
        self.stride = stride if stride and chunk is not None else None
        if lookback < 0:
            raise ValueError(f"lookback must be >= 0, got {lookback}")
        self.lookback = int(lookback)
        self.pad = float(pad)

    # -- planning --------------------------------------------------------------------------
    def _read(self, song: int, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of one track as float32 (n, dim)."""
        v = np.asarray(self.tracks[song][start:stop], dtype=np.float32)
        return v.reshape(v.shape[0], -1)

    def _chunks(self, song_order: np.ndarray) -> np.ndarray:
        """Rows (song, start, length, first) for every chunk, songs in ``song_order``.

        Vectorised: a corpus of thousands of songs has millions of chunks, and a Python tuple
        per chunk would make the plan's memory grow with the corpus. Chunk k of a song starts
        at k * stride (default: the chunk length).
        """
        song_order = np.asarray(song_order, dtype=np.int64)
        n_in = self.lengths[song_order] - 1  # inputs that have a target
        size = n_in if self.chunk is None else np.full_like(n_in, self.chunk)
        step = size if not self.stride else np.full_like(n_in, self.stride)
        counts = -(-n_in // step)
        song = np.repeat(song_order, counts)
        k = np.arange(song.size) - np.repeat(np.cumsum(counts) - counts, counts)
        start = k * np.repeat(step, counts)
        length = np.minimum(np.repeat(size, counts), np.repeat(n_in, counts) - start)
        return np.stack([song, start, length, (k == 0).astype(np.int64)], axis=1)

    def _plan(self, epoch: int, seed: int) -> np.ndarray:
        """(steps, B) array of chunk-row indices, -1 for an idle stream; rows from _chunks."""
        rng = np.random.default_rng([seed, epoch, 0x5EED])
        if self.stateless:
            chunks = self._chunks(np.arange(len(self.lengths)))
            order = rng.permutation(len(chunks))
            steps = -(-len(order) // self.batch)
            plan = np.full(steps * self.batch, -1, dtype=np.int64)
            plan[: len(order)] = order
            return chunks, plan.reshape(steps, self.batch)
        chunks = self._chunks(rng.permutation(len(self.lengths)))
        n = len(chunks)
        streams = min(self.batch, n)
        steps = -(-n // streams)
        plan = np.full((steps, self.batch), -1, dtype=np.int64)
        for b in range(streams):  # stream b reads a contiguous run of chunks
            run = np.arange(b * steps, min((b + 1) * steps, n))
            plan[: len(run), b] = run
        return chunks, plan

    def steps_per_epoch(self) -> int:
        return self._plan(0, 0)[1].shape[0]

    def samples_per_epoch(self) -> int:
        if self.stride is None:
            return int((self.lengths - 1).sum())
        return int(self._chunks(np.arange(len(self.lengths)))[:, 2].sum())

    def epoch(
        self, epoch: int, *, seed: int, start_step: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[Batch]:
        """Yield the batches of one epoch, from ``start_step``, for this rank's streams.

        Rank ``rank`` of ``world`` takes streams ``rank, rank + world, ...`` of the global plan:
        the ranks' streams are disjoint and together they are the whole batch.
        """
        if self.batch % world:
            raise ValueError(f"{self.batch} streams cannot be shared evenly by {world} ranks")
        chunks, full = self._plan(epoch, seed)
        plan = full[:, rank::world]
        # samples per step over every rank's streams (the same on every rank)
        active = full >= 0
        totals = np.where(active, chunks[np.where(active, full, 0), 2], 0).sum(axis=1)
        for step in range(start_step, plan.shape[0]):
            yield self._batch(
                chunks, plan[step], step, first_step=(step == 0), total=int(totals[step])
            )

    def _batch(
        self, chunks: np.ndarray, rows: np.ndarray, step: int, first_step: bool, total: int
    ) -> Batch:
        active = rows >= 0
        song = np.where(active, chunks[rows, 0], 0)
        start = np.where(active, chunks[rows, 1], 0)
        length = np.where(active, chunks[rows, 2], 0)
        first = np.where(active, chunks[rows, 3], 1).astype(bool)
        T = max(int(length.max()), 1)
        mask = np.arange(T)[None, :] < length[:, None]  # (B, T)
        K = self.lookback
        # (B, K + T, dim): the lookback, then the chunk; 0 past a song's end (masked)
        x = np.zeros((len(rows), K + T, self.dim), dtype=np.float32)
        y = np.zeros((len(rows), T, self.dim), dtype=np.float32)
        if K:
            x[:, :K] = self.pad
        for b in np.flatnonzero(active):
            n, s = int(length[b]), int(start[b])
            back = min(s, K)  # lookback samples the song has before this chunk
            v = self._read(int(song[b]), s - back, s + n + 1)  # (back + n + 1, dim)
            x[b, K - back : K + n] = v[: back + n]
            y[b, :n] = v[back + 1 :]
        reset = first | first_step | self.stateless | ~active
        return Batch(x=x, y=y, mask=mask, reset=reset, step=step, total_samples=total)
