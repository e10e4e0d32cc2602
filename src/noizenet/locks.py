"""One writer per run folder, and output files that never collide.

A run folder has one owner: training (new, ``--force`` or ``--resume``) holds an exclusive
``flock`` on ``RUN/.lock`` from before it writes or deletes anything until it ends. The
operating system drops the lock when the process dies, so a SIGKILL, an OOM kill or a pulled
plug never leaves a stale lock. The holder writes its pid, host, command and start time into
the file, so that a second writer is refused with one line naming the process in the way.

Readers (``generate``, ``evaluate``, ``report``) never take the lock: :func:`lock_holder` tells
them whether the run is still training, and the atomic renames every file of a run is written
with mean they read the last complete weights.

:func:`write_new` writes a file under the first free name (``NAME``, ``NAME_1``, ``NAME_2`` ...):
the file is written whole to a temporary name, then hard-linked to the free name, which fails
atomically if another process took that name first. Two takes asked for one name at once give
two complete files, never one file with half of each.

Without ``fcntl`` (not POSIX) there is no run-folder lock; atomic writes still keep every file
whole.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError, WriteError
from noizenet.io import _FILE_MODE, _fsync_dir, ensure_writable_dir

LOCK_NAME = ".lock"
# A reader probes the lock with a shared lock held for microseconds; a writer that finds the
# lock taken looks again for this long before it gives up, so a probe never refuses a trainer.
_RETRY_S = 0.3
_MAX_SUFFIX = 10_000  # NAME_1 ... NAME_9999, then give up: something is wrong with the folder


class RunBusyError(NoizeNetError):
    """Another process holds the run folder's lock (exit 2: the user's to resolve)."""


class RunLock:
    """The exclusive lock on one run folder, held by this process until :meth:`release`."""

    def __init__(self, run_dir: Path, fh: Any) -> None:
        self.run_dir = run_dir
        self._fh = fh
        self._announced = False

    @property
    def held(self) -> bool:
        return self._fh is not None

    def announce(self) -> None:
        """Write who holds the lock (pid, host, command, start time) into the lock file.

        Called once the holder's checks passed: a refused command leaves the folder's files,
        the lock file included, untouched.
        """
        if self._fh is None:
            return
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": _command(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(json.dumps(record).encode("utf-8") + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._announced = True

    def release(self) -> None:
        """Clear the holder record and drop the lock (closing the file drops it too); a lock
        that never announced leaves the file untouched (a refused command changes nothing)."""
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        if self._announced:
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
        fh.close()


# the locks taken inside the innermost :func:`releasing_run_locks` (None: held until exit)
_scope: contextvars.ContextVar[list[RunLock] | None] = contextvars.ContextVar(
    "noizenet_run_locks", default=None
)
_kept: list[RunLock] = []  # locks taken outside any scope: kept open until the process ends


@contextlib.contextmanager
def releasing_run_locks() -> Iterator[None]:
    """Release, on the way out, every run-folder lock :func:`hold_run_folder` took inside.

    ``train()`` runs inside one, so that training a run twice in one process (resume after a
    first run, a notebook) finds the lock free the second time.
    """
    held: list[RunLock] = []
    token = _scope.set(held)
    try:
        yield
    finally:
        _scope.reset(token)
        for lock in reversed(held):
            lock.release()


def hold_run_folder(run_dir: str | Path, *, create: bool = True) -> RunLock:
    """Take the exclusive lock on ``run_dir`` (creating the folder first when ``create``).

    Two processes that start at once on a folder that does not exist yet both create it, then
    one gets the lock; the other is refused here, before it looks for ``run.json``. Raises
    :class:`RunBusyError` naming the folder and the holder when another process has it, and
    :class:`~noizenet.errors.WriteError` when the lock file cannot be made.
    """
    run_dir = Path(run_dir)
    if create:
        ensure_writable_dir(run_dir)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (atomic writes still keep files whole)
        return RunLock(run_dir, None)
    path = run_dir / LOCK_NAME
    try:
        fh = open(path, "a+b")  # noqa: SIM115 (kept open while the lock is held)
    except OSError as exc:
        raise WriteError(f"{path}: cannot create the run folder's lock ({exc.strerror})") from None
    deadline = time.monotonic() + _RETRY_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(path)
                fh.close()
                raise RunBusyError(
                    f"{run_dir}: another process is training this run ({_describe(holder)}); "
                    "wait for it to end, or stop it, before training here"
                ) from None
            time.sleep(0.02)
    lock = RunLock(run_dir, fh)
    held = _scope.get()
    (held if held is not None else _kept).append(lock)
    return lock


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """Who trains ``run_dir`` now: the holder's record (``pid``, ``host``, ``command``,
    ``started``; empty while it is starting), or None when nobody holds the lock.

    Takes no lock a writer would wait for: a shared lock is probed and dropped at once.
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError:
        return None  # never trained here by a version with locks, or not readable: no holder
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path)
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def note_if_training(
    run_dir: str | Path, *, log: Callable[[str], Any] | None = None, weights: bool = True
) -> bool:
    """Say (one line) that ``run_dir`` is still training and which epoch's weights a reader
    gets; True if it is. A reader that needs ``weights`` (not a report) of a run still in its
    first epoch is refused: there are none yet."""
    holder = lock_holder(run_dir)
    if holder is None:
        return False
    run_dir = Path(run_dir)
    epochs = _epochs_done(run_dir)
    pid = holder.get("pid", "unknown")
    if weights and not (run_dir / "model.safetensors").is_file():
        raise NoizeNetError(
            f"{run_dir}: is still training (pid {pid}) and has no weights yet "
            "(its first epoch has not ended); try again later"
        )
    say = log if log is not None else (lambda line: print(line, file=sys.stderr))
    say(f"{run_dir} is still training (pid {pid}); using the weights of epoch {epochs}")
    return True


def write_new(path: str | Path, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Path:
    """Write a new file at ``path``, or at ``STEM_1``, ``STEM_2`` ... if that name is taken;
    return the name it got. Never replaces a file, never leaves a partial one.

    ``write(tmp, *args, **kwargs)`` writes the content to a temporary file beside ``path``;
    the finished file is then hard-linked to the first free name (atomic: the link fails if
    another process took the name meanwhile, and the next name is tried). On file systems
    without hard links an ``O_CREAT | O_EXCL`` placeholder reserves the name and the file is
    renamed over it.
    """
    tmp = new_temporary(path)
    try:
        write(tmp, *args, **kwargs)
        return publish_new(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def new_temporary(path: str | Path) -> Path:
    """An empty temporary file beside ``path`` (its folder made if needed), for a file that is
    written over time and then given its name by :func:`publish_new` (a take streamed to disk)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".new{path.suffix}", dir=path.parent
        )
        os.close(fd)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return Path(tmp_name)


def publish_new(tmp: Path, path: str | Path) -> Path:
    """Give the finished ``tmp`` the first free name of ``path``, ``STEM_1``, ... (see
    :func:`write_new`); return it. ``tmp`` itself is left for the caller to remove."""
    path = Path(path)
    os.chmod(tmp, _FILE_MODE)  # mkstemp's 0600 is too private for a take
    for n in range(_MAX_SUFFIX):
        candidate = path if n == 0 else path.with_name(f"{path.stem}_{n}{path.suffix}")
        if _publish(tmp, candidate):
            return candidate
    raise WriteError(f"{path}: no free name left (tried {path.stem}_1 ... _{_MAX_SUFFIX - 1})")


def _publish(tmp: Path, candidate: Path) -> bool:
    """Give the finished ``tmp`` the name ``candidate`` unless it exists; True if it did."""
    try:
        os.link(tmp, candidate)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
            raise WriteError(f"{candidate}: cannot write ({exc.strerror or exc})") from None
        try:  # no hard links here: reserve the name, then rename the file over the placeholder
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            return False
        os.replace(tmp, candidate)
    _fsync_dir(candidate.parent)
    return True


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "a process that is just starting"
    host = f" on {holder['host']}" if holder.get("host") else ""
    since = f", since {holder['started']}" if holder.get("started") else ""
    command = f": {holder['command']}" if holder.get("command") else ""
    return f"pid {holder['pid']}{host}{since}{command}"


def _command() -> str:
    """This process's command line, as the user typed it (``python -m noizenet`` -> noizenet)."""
    argv = list(sys.argv) or ["python"]
    name = Path(argv[0]).name
    argv[0] = "noizenet" if name in ("__main__.py", "noizenet") else name
    return shlex.join(argv)


def _epochs_done(run_dir: Path) -> int:
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        return int(info.get("metrics", {}).get("epochs", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0
