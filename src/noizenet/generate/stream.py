"""Long takes: generated block by block and written to disk as they grow.

A take is never held whole: the kernels carry their state from one block to the next, each block
is decoded and appended to its WAV file (N takes side by side, one file each), so memory does not
depend on the length. A progress bar shows the real-time factor (generated seconds per wall
second). SIGINT or SIGTERM stops at the next block boundary and closes valid WAVs of what was
generated; :class:`GenerationInterruptedError` then says so in one line.

Block boundaries do not change a take: the random draws of every block come from the same
generator in time-major order (step by step, all streams), so a take generated in blocks is the
one generated in one call on the same draws (tested).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from noizenet.errors import NoizeNetError
from noizenet.progress import progress_bar

# Audio seconds per block: short enough that a signal is answered within a block's wall time
# (about a second at hidden 512) and the block's arrays stay small, long enough that the
# per-call overhead (microseconds) is nothing beside the block's work.
BLOCK_SECONDS = 0.5


class GenerationInterruptedError(NoizeNetError):
    """SIGINT or SIGTERM stopped generation at a block boundary; the takes written so far are
    valid WAV files. ``exit_code`` is 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, *, signum: int, paths: list[Path], samples: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.paths = paths
        self.samples = samples  # per take, written before the stop


def block_lengths(steps: int, block: int, *, multiple: int = 1) -> list[int]:
    """Steps per block covering ``steps``; each block but the last a whole ``multiple`` of steps
    (a periodic injection's period, so that its phase is the same in every block)."""
    if steps <= 0:
        return []
    block = max(multiple, math.ceil(max(block, 1) / multiple) * multiple)
    return [block] * (steps // block) + ([steps % block] if steps % block else [])


def temperature_span(
    temps: tuple[np.ndarray, np.ndarray], start: int, n: int, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (start, end) temperatures of free steps ``start .. start + n - 1`` on a linear
    schedule over ``steps`` steps: what a kernel called on that block alone needs."""
    t0, t1 = (np.asarray(t, dtype=np.float64) for t in temps)
    if steps <= 1:
        return t0.copy(), t0.copy()
    first, last = start, start + n - 1
    # the schedule's own ends exactly: one block is the whole take's schedule, bit for bit
    lo = t0.copy() if first == 0 else t0 + (t1 - t0) * (first / (steps - 1))
    hi = t1.copy() if last == steps - 1 else t0 + (t1 - t0) * (last / (steps - 1))
    return lo, hi


class TakeWriter:
    """N mono 16-bit WAV files written side by side, a block at a time.

    Each file is opened once and grows under a temporary name beside its path; on a normal exit,
    or a stop by signal (KeyboardInterrupt included), every file is closed (libsndfile then writes
    the header's lengths) and renamed to its path; on an error the temporary files are removed
    and nothing is left behind.
    """

    def __init__(self, paths: list[Path], *, sr: int) -> None:
        self.paths = [Path(p) for p in paths]
        self.sr = sr
        self.samples = 0  # per file, written so far
        self._stack = contextlib.ExitStack()
        self._files: list[Any] = []

    def __enter__(self) -> TakeWriter:
        import soundfile as sf

        from noizenet.io import atomic_path

        try:
            for path in self.paths:
                tmp = self._stack.enter_context(atomic_path(path))
                f = sf.SoundFile(tmp, "w", samplerate=self.sr, channels=1, subtype="PCM_16",
                                 format="WAV")  # fmt: skip
                self._files.append(self._stack.enter_context(f))
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, audio: np.ndarray) -> None:
        """Append one block: ``audio`` (files, samples) float, clipped to [-1, 1]."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.shape[0] != len(self._files):
            raise ValueError(f"expected {len(self._files)} rows of audio, got {audio.shape[0]}")
        for f, y in zip(self._files, audio, strict=True):
            f.write(np.clip(y, -1.0, 1.0))
        self.samples += audio.shape[1]

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        # a stop by signal keeps what was written (closed first, so each header is complete)
        keep = kind is None or issubclass(kind, KeyboardInterrupt)
        if keep:
            for f in self._files:
                f.close()
            self._stack.__exit__(None, None, None)
        else:
            self._stack.__exit__(kind, exc, tb)
        return False


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """SIGINT/SIGTERM ask to stop at the next block boundary: the yielded list's one item becomes
    the signal number. A second signal stops at once (KeyboardInterrupt). Only the main thread
    can have handlers; elsewhere the defaults stay."""
    import signal
    import threading

    stop = [0]
    if threading.current_thread() is not threading.main_thread():
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


def stream_takes(
    blocks: Iterable[np.ndarray],
    decode: Callable[[int, np.ndarray], np.ndarray],
    *,
    takes: int,
    samples: int,
    sr: int,
    paths: list[Path] | None = None,
    what: str = "the model",
) -> list[np.ndarray] | None:
    """Decode model values block by block and write them, or keep them.

    Parameters
    ----------
    blocks : model values per block, (takes, steps[, dim]) each; the kernel runs as it is read
    decode : (take index, one take's block of values) -> that block's audio (samples,)
    takes, samples : how many takes, and the audio samples each will have (for the bar)
    sr : sample rate
    paths : one WAV path per take: written as they grow, nothing kept in memory, and SIGINT or
        SIGTERM closes them at a block boundary and raises :class:`GenerationInterruptedError`;
        ``None``: the takes are returned, (samples,) float32 each
    what : names the source in the error about non-finite samples

    Returns
    -------
    the takes' audio when ``paths`` is None, else None
    """
    kept: list[list[np.ndarray]] = [[] for _ in range(takes)]
    seconds = samples / sr
    writer = TakeWriter(paths, sr=sr) if paths is not None else None
    signals = stop_on_signals() if paths is not None else contextlib.nullcontext([0])
    start = time.perf_counter()
    done = 0
    with (
        signals as stop,
        writer if writer is not None else contextlib.nullcontext(),
        progress_bar(total=round(seconds, 2), unit="s", desc="generating") as bar,
    ):
        for values in blocks:
            audio = np.stack([decode(i, values[i]) for i in range(takes)])
            if not np.all(np.isfinite(audio)):
                raise NoizeNetError(f"{what} produced non-finite samples; nothing was written")
            if writer is not None:
                writer.write(audio)
            else:
                for i in range(takes):
                    kept[i].append(audio[i])
            done += audio.shape[1]
            wall = max(time.perf_counter() - start, 1e-9)
            bar.update(round(done / sr - bar.n, 2))
            bar.set_postfix_str(f"{done / sr / wall:.1f}x real time", refresh=False)
            if stop[0]:
                break
    if stop[0]:
        import signal

        assert paths is not None
        name = signal.Signals(stop[0]).name
        files = (
            paths[0] if len(paths) == 1 else f"{len(paths)} takes ({', '.join(map(str, paths))})"
        )
        raise GenerationInterruptedError(
            f"interrupted by {name} after {done / sr:.1f} s of {seconds:.1f} s; "
            f"wrote {files} with what was generated",
            signum=stop[0],
            paths=list(paths),
            samples=done,
        )
    if writer is not None:
        return None
    return [np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32) for parts in kept]
