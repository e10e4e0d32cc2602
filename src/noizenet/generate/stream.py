"""Long takes: generated in blocks and written to disk as they grow.

A take is never held whole: the family's path continues from a :class:`~noizenet.models.Carry`
block after block, each block is decoded and appended to its WAV file (N takes side by side,
one file each), so memory does not depend on the length. A progress bar (and an optional
callback) shows the real-time factor. SIGINT or SIGTERM stops at the next block boundary and
closes valid WAVs of what was generated; :class:`GenerationInterruptedError` then says so in
one line (exit 130 or 143).

Blocking never changes a take: :class:`StreamDraws` hands out, block by block, exactly the
numbers one ``rng.random((streams, steps))`` (or ``standard_normal``) call would have made,
stream-major, from per-stream bookmarks of the generator's state (tested: block sizes never
change a sample).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from noizenet.errors import NoizeNetError
from noizenet.io import _FILE_MODE, _fsync_dir
from noizenet.limits import STREAM_BLOCK_SECONDS
from noizenet.locks import new_temporary, publish_new
from noizenet.progress import progress_bar

# Audio seconds per block: long enough that a block's kernel call dwarfs its overhead (draws
# from bookmarks, a decode, a write: ~1 ms), short enough that the arrays stay small (hidden
# 512 x 1 s: a few MB) and a signal is answered within a block's wall time.
BLOCK_SECONDS = STREAM_BLOCK_SECONDS  # 1 s: the memory bound (noizenet.limits) counts it


class GenerationInterruptedError(NoizeNetError):
    """SIGINT or SIGTERM stopped generation at a block boundary; the takes written so far are
    valid WAV files. ``exit_code`` is 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, *, signum: int, paths: list[Path], seconds: float) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.paths = paths
        self.seconds = seconds  # per take, written before the stop


class StreamDraws:
    """The draws ``rng.random((streams, steps))`` (``kind="uniform"``) or
    ``rng.standard_normal((streams, steps, dim)).astype(float32)`` (``"normal"``) would make,
    handed out one block of steps at a time.

    One pass through the generator at construction records its state where each stream's
    block starts (the numbers themselves are dropped); a block is then drawn again from those
    bookmarks. Drawing ``n`` numbers in pieces gives the sequence one call gives (numpy's
    fill loops draw one number after another), so any blocking reproduces the one-call
    arrays exactly, whatever the bit generator and however many raw draws a normal takes.
    """

    def __init__(self, rng: Any, kind: str, *, streams: int, steps: int, dim: int, block: int):
        self.kind, self.dim, self.block = kind, dim, max(int(block), 1)
        self._bits = type(rng.bit_generator)
        self.marks: list[list[dict]] = []
        for _ in range(streams):
            row = []
            for start in range(0, steps, self.block):
                row.append(rng.bit_generator.state)
                self._draw(rng, min(self.block, steps - start))  # skipped over, not kept
            self.marks.append(row)

    def _draw(self, rng: Any, n: int) -> np.ndarray:
        if self.kind == "uniform":
            return rng.random(n)
        return rng.standard_normal(n * self.dim).astype(np.float32).reshape(n, self.dim)

    def take(self, start: int, n: int) -> np.ndarray:
        """Steps ``start .. start + n`` of every stream: (streams, n) or (streams, n, dim);
        ``start`` is a block boundary."""
        k, off = divmod(start, self.block)
        if off or n > self.block:
            raise ValueError(f"draws: block {start}+{n} is not one of the {self.block}-step blocks")
        out = []
        for row in self.marks:
            gen = np.random.Generator(self._bits())
            gen.bit_generator.state = row[k]
            out.append(self._draw(gen, n))
        return np.stack(out)


@dataclass(frozen=True)
class GenerationProgress:
    """Where a take stands, for a progress display: the studio shows ``realtime`` live."""

    seconds: float  # audio generated so far, per take
    total: float  # audio the take will have, per take
    wall: float  # seconds since generation started (priming included)
    takes: int  # takes generated side by side

    @property
    def realtime(self) -> float:
        """Real-time factor: seconds of audio per second of wall time, per take."""
        return self.seconds / self.wall if self.wall > 0 else 0.0

    @property
    def fraction(self) -> float:
        return self.seconds / self.total if self.total > 0 else 1.0


class ProgressDisplay:
    """A tqdm bar over generated seconds with the real-time factor (quiet off a terminal, see
    :func:`noizenet.progress.progress_bar`), or a callback; ``show`` False: neither."""

    def __init__(self, show: bool | Callable[[GenerationProgress], Any], *, total: float,
                 takes: int) -> None:  # fmt: skip
        self.callback = show if callable(show) else None
        self.total, self.takes = total, takes
        self.started = time.perf_counter()
        self.bar = None
        if show is True:
            desc = "generating" if takes == 1 else f"generating {takes} takes"
            self.bar = progress_bar(total=round(total, 2), unit="s", desc=desc)

    def update(self, seconds: float) -> None:
        p = GenerationProgress(seconds, self.total, time.perf_counter() - self.started,
                               self.takes)  # fmt: skip
        if self.bar is not None:
            self.bar.set_postfix_str(f"{p.realtime:.1f}x real time", refresh=False)
            self.bar.update(round(seconds, 2) - self.bar.n)
        if self.callback is not None:
            self.callback(p)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TakeFiles:
    """N mono 16-bit WAV files written side by side, a block at a time.

    Each file grows under a temporary name in its folder (:func:`noizenet.locks.new_temporary`);
    :meth:`finish` closes them (libsndfile then writes the header's lengths) and gives each its
    name: ``replace`` True renames it over the path (an ``--out`` the user named), else it gets
    the first free name (``_1``, ``_2`` ...), as :func:`noizenet.locks.write_new` gives, so two
    takes never collide. :meth:`discard` (on an error) removes the temporary files.
    """

    def __init__(self, paths: list[Path], *, sr: int, replace: bool) -> None:
        import soundfile as sf

        self.paths, self.sr, self.replace = [Path(p) for p in paths], sr, replace
        self.temporaries: list[Path] = []
        self.files: list[Any] = []
        try:
            for path in self.paths:
                tmp = new_temporary(path)
                self.temporaries.append(tmp)
                self.files.append(sf.SoundFile(tmp, "w", samplerate=sr, channels=1,
                                               subtype="PCM_16", format="WAV"))  # fmt: skip
        except BaseException:
            self.discard()
            raise

    def write(self, audio: list[np.ndarray]) -> None:
        """Append one block per file (float audio, clipped to [-1, 1] as :func:`audio.write`)."""
        for f, y in zip(self.files, audio, strict=True):
            f.write(np.clip(np.asarray(y, np.float32), -1.0, 1.0))

    def finish(self) -> list[Path]:
        """Close every file and give it its name; returns the names."""
        for f in self.files:
            f.close()
        named = []
        try:
            for tmp, path in zip(self.temporaries, self.paths, strict=True):
                if self.replace:
                    os.chmod(tmp, _FILE_MODE)
                    os.replace(tmp, path)
                    _fsync_dir(path.parent)
                    named.append(path)
                else:
                    named.append(publish_new(tmp, path))
        finally:
            self.discard()
        return named

    def discard(self) -> None:
        for f in self.files:
            with contextlib.suppress(Exception):
                f.close()
        for tmp in self.temporaries:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[list[int]]:
    """SIGINT and SIGTERM ask to stop at the next block boundary: the yielded list's one item
    becomes the signal's number. A second signal stops at once (KeyboardInterrupt, nothing
    kept). Only the main thread can have handlers: elsewhere (the studio's workers) and when
    not ``enabled`` the handlers stay as they are."""
    stop = [0]
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop[0]:
            raise KeyboardInterrupt
        stop[0] = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def interrupted(signum: int, paths: list[Path], seconds: float, total: float) -> NoReturn:
    """Raise the one-line :class:`GenerationInterruptedError` for takes closed early."""
    name = signal.Signals(signum).name
    files = (
        str(paths[0]) if len(paths) == 1 else f"{len(paths)} takes ({', '.join(map(str, paths))})"
    )
    raise GenerationInterruptedError(
        f"interrupted by {name}: wrote {files} with the {seconds:.2f} s generated of {total:g} s",
        signum=signum,
        paths=paths,
        seconds=seconds,
    )
