"""Atomic file writes: a crash or a full disk never leaves a half-written file that looks whole."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noizenet.errors import WriteError


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's 0600 is too private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any error the temporary file is removed and ``path`` keeps its old content (or stays
    absent). The suffix is kept so that libraries choosing a format by extension still work.
    A failed write (no permission, full disk, a file where a folder should be) raises
    :class:`~noizenet.errors.WriteError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
        os.close(fd)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, WriteError):
            raise
        raise _write_error(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: after a power cut the folder lists the new file, not the old."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # platforms without directory file descriptors
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself is atomic
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError, what: str = "cannot write") -> WriteError:
    """One line naming the file and the reason; keeps the errno (ENOSPC, EACCES...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    err = WriteError(f"{path}: {what} ({reason})")
    err.errno = exc.errno
    return err


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before any long work.

    Raises :class:`~noizenet.errors.WriteError` naming the folder otherwise.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WriteError(f"{folder}: cannot write here (it is a file, not a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".noizenet-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _write_error(folder, exc, "cannot write here") from exc
    return folder


@contextlib.contextmanager
def exclusive_lock(path: str | Path, *, on_wait: Any = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) across processes.

    Several processes building one shared thing (the decode cache, the embedded corpus: every
    rank of a distributed run on a node) take turns: the first builds, the next waits here and
    then finds the work done. ``on_wait()`` is called once if another process holds the lock.
    Without ``fcntl`` (not POSIX) there is no lock; atomic writes still keep every file whole.
    Raises ``OSError`` when the lock file cannot be created.
    """
    fh = open(path, "a+b")  # noqa: SIM115 (closed below, after the yield)
    try:
        import fcntl
    except ImportError:
        with fh:
            yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (metrics survive a crash)."""
    line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise _write_error(Path(path), exc) from exc


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace a JSON-lines file atomically (e.g. with what a checkpoint knows was logged)."""
    atomic_write_text(
        path, "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in records)
    )


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, ignoring a torn last line left by a crash."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
