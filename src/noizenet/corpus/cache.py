"""The decode cache: every track is decoded once, and training reads it through memory maps.

Decoding an MP3 costs far more than reading its samples, and a training run reads every song
once per epoch. So each source file is decoded once, in parallel worker processes, to mono at
the corpus sample rate, and stored as an int16 ``.npy`` file (half the size of float32, the
resolution of a CD). ``manifest.json`` records for every source its path, size, modification
time, sample count and status (``ok``, or ``skipped`` with the reason), so an unchanged file is
never decoded again, a changed one always is, and a broken one is not retried.

Reading goes through :class:`TrackAudio`, a float32 view that memory-maps the pages of the
``.npy`` file a read needs and unmaps them afterwards: they leave the process's resident set again
(the operating system's page cache keeps them hot, shared between processes), so a training
process's memory does not grow with the size of the corpus, and a corpus larger than RAM streams.

Several processes may build the same cache at once (distributed ranks on one node): building
holds an exclusive lock (``fcntl.flock`` on ``.lock``), every file is written atomically, and a
process that waited for the lock finds the work done and decodes nothing.

Layout: ``ROOT/decoded/sr22050/{manifest.json, .lock, ab/abcdef....npy}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import operator
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noizenet import audio, limits
from noizenet.audio import SAMPLE_RATE
from noizenet.errors import AudioError, NoizeNetError
from noizenet.io import atomic_path, atomic_write_json, exclusive_lock
from noizenet.progress import progress_bar

CACHE_VERSION = 1  # bump when decoding changes: every entry of an older version is redone
FULL_SCALE = 32767  # int16 value of the largest stored amplitude
_FILES_PER_WORKER = 8  # automatic worker count: no more workers than this many files each
_SAVE_EVERY_S = 20.0  # during a long build the manifest is saved this often (crash-safe progress)
MIN_SOURCE_BYTES_PER_S = 4000  # 32 kbit/s: a length bound for files whose header says none


@dataclass
class CacheReport:
    """What one :meth:`DecodeCache.ensure` call did."""

    decoded: int = 0  # source files decoded now (usable or not)
    reused: int = 0  # entries found fresh in the manifest
    failed: int = 0  # of ``decoded``: files that turned out unusable
    seconds: float = 0.0  # wall-clock seconds spent decoding
    audio_seconds: float = 0.0  # seconds of audio decoded

    def __add__(self, other: CacheReport) -> CacheReport:
        return CacheReport(
            self.decoded + other.decoded,
            self.reused + other.reused,
            self.failed + other.failed,
            self.seconds + other.seconds,
            self.audio_seconds + other.audio_seconds,
        )

    def summary(self) -> str:
        text = f"{self.decoded} decoded, {self.reused} reused"
        if self.decoded:
            text += (
                f" ({self.audio_seconds:,.0f} s of audio in {self.seconds:.1f} s, "
                f"{self.audio_seconds / max(self.seconds, 1e-9):,.0f}x real time)"
            )
        return text


class TrackAudio:
    """Float32 samples ``[start, stop)`` of one cached track, read through a memory map.

    Behaves like a read-only 1-D float32 array for ``len()``, ``.shape``, ``.size``, contiguous
    slicing and ``np.asarray`` (which reads it all). Every read maps the file, copies the samples
    out and drops the map, so nothing stays resident between reads.
    """

    ndim = 1
    dtype = np.dtype(np.float32)

    def __init__(self, path: Path, *, start: int, stop: int, gain: float = 1.0) -> None:
        self.path = Path(path)
        self.start = int(start)
        self.stop = max(int(stop), self.start)
        self.gain = float(gain)  # stored int16 FULL_SCALE means this amplitude
        self._layout: tuple[int, np.dtype] | None = None  # (data offset, dtype) of the .npy

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def size(self) -> int:
        return len(self)

    def __getitem__(self, key: slice | int) -> np.ndarray | np.float32:
        n = len(self)
        if isinstance(key, slice):
            a, b, step = key.indices(n)
            if step != 1:
                raise IndexError("TrackAudio supports contiguous slices only")
            return self._read(self.start + a, self.start + max(a, b))
        i = operator.index(key)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for a track of {n} samples")
        i %= n
        return self._read(self.start + i, self.start + i + 1)[0]

    def _read(self, a: int, b: int) -> np.ndarray:
        """Map just the pages that hold samples [a, b), copy them out as float32, unmap."""
        if b <= a:
            return np.zeros(0, dtype=np.float32)
        if self._layout is None:
            self._layout = npy_layout(self.path)
        offset, dtype = self._layout
        first = offset + a * dtype.itemsize
        page = first - first % mmap.ALLOCATIONGRANULARITY
        with (
            open(self.path, "rb") as fh,
            mmap.mmap(
                fh.fileno(),
                first + (b - a) * dtype.itemsize - page,
                access=mmap.ACCESS_READ,
                offset=page,
            ) as window,
        ):
            y = np.frombuffer(window, dtype=dtype, count=b - a, offset=first - page).astype(
                np.float32
            )
        y *= np.float32(self.gain / FULL_SCALE)
        return y

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        y = self[:]
        return y if dtype is None else y.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"TrackAudio({self.path.name}, [{self.start}:{self.stop}], gain={self.gain:g})"


def npy_layout(path: Path) -> tuple[int, np.dtype]:
    """Byte offset and dtype of the samples in a 1-D int16 ``.npy`` file (numpy's own format)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _fortran, dtype = read_header(fh)
        if len(shape) != 1 or dtype.kind != "i" or dtype.itemsize != 2:
            raise AudioError(f"{path}: not a cached int16 track (shape {shape}, dtype {dtype})")
        return fh.tell(), dtype


class DecodeCache:
    """Decoded tracks at one sample rate under ``root / "decoded" / f"sr{sr}"``.

    Example
    -------
    >>> cache = DecodeCache(Path("~/.cache/noizenet").expanduser())  # doctest: +SKIP
    >>> entries, report = cache.ensure([Path("song.mp3")])  # doctest: +SKIP
    >>> y = cache.audio(entries[Path("song.mp3")], seconds=15.0)  # doctest: +SKIP
    """

    def __init__(self, root: Path, *, sr: int = SAMPLE_RATE) -> None:
        self.sr = int(sr)
        self.dir = Path(root).expanduser() / "decoded" / f"sr{self.sr}"
        self.manifest_path = self.dir / "manifest.json"

    # -- manifest ------------------------------------------------------------------------------
    @staticmethod
    def key(path: Path) -> str:
        """Cache key of a source: a hash of its resolved path (one entry however it is named)."""
        return hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:24]

    def _file_for(self, key: str) -> str:
        return f"{key[:2]}/{key}.npy"  # 256 sub-folders keep folders small for 100k tracks

    def manifest(self) -> dict[str, dict[str, Any]]:
        """Every entry, by key; an unreadable or foreign manifest counts as empty."""
        try:
            raw = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("sample_rate") != self.sr:
            return {}
        tracks = raw.get("tracks")
        return tracks if isinstance(tracks, dict) else {}

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:

        try:
            atomic_write_json(
                self.manifest_path,
                {"version": CACHE_VERSION, "sample_rate": self.sr, "tracks": entries},
            )
        except OSError as exc:
            raise NoizeNetError(
                f"{self.manifest_path}: cannot write ({exc.strerror or exc})"
            ) from None

    def _fresh(self, entry: dict[str, Any] | None, path: Path) -> bool:
        """The entry describes this file as it is now (same size and modification time)."""
        if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION:
            return False
        try:
            st = path.stat()
        except OSError:
            return False
        if entry.get("size") != st.st_size or entry.get("mtime_ns") != st.st_mtime_ns:
            return False
        return entry.get("status") != "ok" or (self.dir / str(entry.get("file"))).is_file()

    def lookup(self, paths: Iterable[Path]) -> dict[Path, dict[str, Any] | None]:
        """The fresh entry of each path, or None where it would have to be decoded."""
        entries = self.manifest()
        return {p: (e if self._fresh(e := entries.get(self.key(p)), p) else None) for p in paths}

    # -- building ------------------------------------------------------------------------------
    def ensure(
        self,
        paths: Iterable[Path],
        *,
        workers: int = 0,
        progress: bool = True,
        log: Callable[[str], Any] | None = None,
    ) -> tuple[dict[Path, dict[str, Any]], CacheReport]:
        """Make sure every path has a fresh entry, decoding the missing ones in parallel.

        Parameters
        ----------
        paths : source audio files
        workers : decoding processes (0: one per CPU core, fewer for a handful of files); 1
            decodes in this process
        progress : show a progress bar while decoding
        log : where to say that another process holds the lock

        Returns
        -------
        entries : the entry of every path (``status`` "ok", or "skipped" with ``reason``)
        report : how many were decoded and reused, and how fast
        """
        paths = list(dict.fromkeys(Path(p) for p in paths))
        found = self.lookup(paths)
        missing = [p for p in paths if found[p] is None]
        report = CacheReport(reused=len(paths) - len(missing))
        if not missing:
            return {p: e for p, e in found.items() if e is not None}, report
        for p in [p for p in missing if not p.is_file()]:  # nothing to decode or remember
            found[p] = {"source": str(p), "status": "skipped", "reason": "no such file"}
        missing = [p for p in missing if found[p] is None]
        if not missing:
            return found, report  # type: ignore[return-value]
        with self._locked(log):
            entries = self.manifest()  # another process may have decoded them while we waited
            todo = []
            for p in missing:
                e = entries.get(self.key(p))
                if self._fresh(e, p):
                    found[p] = e
                    report.reused += 1
                else:
                    todo.append(p)
            if todo:
                report = report + self._build(todo, entries, found, workers, progress)
        return found, report  # type: ignore[return-value]

    def _build(
        self,
        todo: list[Path],
        entries: dict[str, dict[str, Any]],
        found: dict[Path, Any],
        workers: int,
        progress: bool,
    ) -> CacheReport:

        report = CacheReport()
        t0 = last_save = time.perf_counter()
        same_file: dict[str, list[Path]] = {}  # two names (links) of one file: decoded once
        for p in todo:
            same_file.setdefault(self.key(p), []).append(p)
        tasks = []
        for key, names in same_file.items():
            file = self._file_for(key)
            tasks.append((str(names[0].resolve()), str(self.dir / file), file, self.sr))
        self._check_disk([Path(t[0]) for t in tasks])
        if workers <= 0:  # auto: a worker's start-up costs about as much as decoding a few files
            workers = min(os.cpu_count() or 1, -(-len(tasks) // _FILES_PER_WORKER))
        with progress_bar(
            total=len(tasks), desc="decode", unit="song", disable=not progress
        ) as bar:
            for task, entry in _decode_all(tasks, workers=workers):
                if entry["status"] == "error":
                    self._save(entries)  # keep what is done
                    raise NoizeNetError(f"decode cache: {entry['reason']}")
                key = Path(task[2]).stem
                entries[key] = entry
                for path in same_file[key]:
                    found[path] = entry
                report.decoded += 1
                if entry["status"] == "ok":
                    report.audio_seconds += entry["samples"] / self.sr
                else:
                    report.failed += 1
                bar.update(1)
                if time.perf_counter() - last_save > _SAVE_EVERY_S:
                    self._save(entries)
                    last_save = time.perf_counter()
        self._save(entries)
        report.seconds = time.perf_counter() - t0
        return report

    def _check_disk(self, sources: list[Path]) -> None:
        """Refuse, before decoding, songs whose decoded audio cannot fit on the cache's disk.

        Each song costs 2 bytes a sample at the cache's rate, for its whole length (read from
        its header; a file whose header says nothing, as if it were compressed at
        :data:`MIN_SOURCE_BYTES_PER_S`: an upper bound for its length)."""
        need = 0
        for src in sources:
            try:
                seconds = audio.info(src)["seconds"]
            except AudioError:
                seconds = None  # decoding will say what is wrong with it
            if seconds is None:
                need += int(src.stat().st_size / MIN_SOURCE_BYTES_PER_S * self.sr) * 2
            else:
                need += int(seconds * self.sr) * 2 + 128
        limits.check(
            limits.Need(disk=need, disk_path=self.dir),
            f"decoding {len(sources)} songs into the cache (--cache-dir)",
        )

    @contextlib.contextmanager
    def _locked(self, log: Callable[[str], Any] | None) -> Iterator[None]:
        """Hold the cache's build lock; another builder waits here until we are done."""

        def waiting() -> None:
            if log is not None:
                log(f"waiting for another process that is decoding into {self.dir}")

        with contextlib.ExitStack() as stack:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                stack.enter_context(exclusive_lock(self.dir / ".lock", on_wait=waiting))
            except OSError as exc:
                raise NoizeNetError(
                    f"{self.dir}: cannot write the decode cache ({exc.strerror or exc}); "
                    "choose another with --cache-dir"
                ) from None
            yield

    # -- reading -------------------------------------------------------------------------------
    def audio(
        self, entry: dict[str, Any], *, offset: float = 0.0, seconds: float | None = None
    ) -> TrackAudio:
        """The ``seconds`` after ``offset`` of a decoded track (an ``ok`` entry), as a view."""
        if entry.get("status") != "ok":
            raise AudioError(f"{entry.get('source')}: {entry.get('reason') or 'not decoded'}")
        n = int(entry["samples"])
        start = min(round(offset * self.sr), n)
        stop = n if seconds is None else min(n, start + round(seconds * self.sr))
        return TrackAudio(self.dir / entry["file"], start=start, stop=stop, gain=entry["gain"])


# -- decoding (runs in worker processes) ---------------------------------------------------------
Task = tuple[str, str, str, int]  # (source path, output .npy path, relative file, sample rate)


def decode_task(source: str, out: str, file: str, sr: int) -> dict[str, Any]:
    """Decode one source into ``out``; return its manifest entry. Never raises for bad audio."""

    st = os.stat(source)  # taken first: a file that changes while we decode is redone next time
    entry: dict[str, Any] = {
        "source": source,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "version": CACHE_VERSION,
        "decoded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source_sr": None,
        "channels": None,
    }
    try:
        head = audio.info(source)
        entry["source_sr"], entry["channels"] = head["sample_rate"], head["channels"]
    except AudioError:
        pass  # some decoders read what libsndfile's header parser cannot
    try:
        y = audio.load(source, sr=sr)
    except AudioError as exc:
        reason = str(exc)
        if reason.startswith(f"{source}: "):
            reason = reason[len(source) + 2 :]
        return {**entry, "status": "skipped", "reason": reason}
    peak = float(np.max(np.abs(y)))
    gain = max(peak, 1.0)  # float files may exceed full scale: keep their level, do not clip
    stored = np.round(y * (FULL_SCALE / gain)).astype(np.int16)
    try:
        with atomic_path(out) as tmp:
            np.save(tmp, stored)
    except OSError as exc:  # the cache's fault, not the song's: the caller stops
        return {**entry, "status": "error", "reason": f"cannot write {out} ({exc.strerror or exc})"}
    return {
        **entry,
        "status": "ok",
        "reason": None,
        "file": file,
        "samples": int(stored.size),
        "seconds": stored.size / sr,
        "peak": peak,
        "gain": gain,
    }


def _crashed(task: Task, why: str) -> dict[str, Any]:
    try:
        st = os.stat(task[0])
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime = None, None
    return {
        "source": task[0],
        "size": size,
        "mtime_ns": mtime,
        "version": CACHE_VERSION,
        "status": "skipped",
        "reason": why,
    }


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Decoder libraries print notes about damaged MP3 frames to stderr; the reason is kept."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _decode_all(tasks: list[Task], *, workers: int) -> Iterator[tuple[Task, dict[str, Any]]]:
    """Yield ``(task, entry)`` as tracks finish, in worker processes when there is work for two."""
    if min(workers, len(tasks)) <= 1:
        for task in tasks:
            with _quiet_stderr():
                entry = decode_task(*task)
            yield task, entry
        return
    yield from _decode_in_workers(tasks, min(workers, len(tasks)))


WORKER_MODULE = "noizenet.corpus.decode_worker"  # what ``python -m`` runs in each worker
TASK_TIMEOUT_S = 600.0  # a decoder stuck on one file longer than this is stopped


class _WorkerProcess:
    """One decode worker process (see :mod:`noizenet.corpus.decode_worker`), restarted on need."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None

    def run(self, task: Task) -> dict[str, Any]:
        """Decode one task; a worker that dies or hangs costs that file only."""
        if self.proc is None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                env=self.env,
            )
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        hung = threading.Event()

        def stop_hung_decoder() -> None:
            hung.set()
            proc.kill()

        watchdog = threading.Timer(TASK_TIMEOUT_S, stop_hung_decoder)
        watchdog.start()
        try:
            proc.stdin.write(json.dumps(list(task)) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError:
            line = ""
        finally:
            watchdog.cancel()
        try:
            return json.loads(line)
        except ValueError:  # no answer: the worker died (a crash in a decoder) or was stopped
            self.close()
            if hung.is_set():
                return _crashed(task, f"decoding took longer than {TASK_TIMEOUT_S:g} s")
            return _crashed(
                task, f"the decoder process died on this file (exit code {proc.returncode})"
            )

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            proc.stdout.close()  # type: ignore[union-attr]


def _decode_in_workers(tasks: list[Task], workers: int) -> Iterator[tuple[Task, dict[str, Any]]]:
    """Decode in ``workers`` processes, each fed by a thread; yield entries as they finish."""

    # The workers import the same noizenet as this process, wherever it came from.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    todo = deque(tasks)
    lock = threading.Lock()
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def serve() -> None:
        worker = _WorkerProcess(env)
        try:
            while not stop.is_set():
                with lock:
                    if not todo:
                        return
                    task = todo.popleft()
                try:
                    entry = worker.run(task)
                except Exception as exc:  # a bug here must not hang the caller on results.get()
                    entry = _crashed(task, f"decoding failed ({type(exc).__name__}: {exc})")
                results.put((task, entry))
        finally:
            worker.close()

    threads = [threading.Thread(target=serve, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    try:
        for _ in range(len(tasks)):
            yield results.get()
    finally:
        stop.set()  # each thread finishes the file it is on, then its worker exits
        for t in threads:
            t.join()
