"""The studio's long work: generation in worker threads, training in child processes.

Generation calls :func:`noizenet.generate.generate` (the function ``noizenet generate`` calls)
and draws the takes' views the way the CLI does; one generation at a time per run, a second
request is refused. Training runs ``python -m noizenet train`` as a child process, so that the
page trains exactly what the command line would, and stopping it is Ctrl-C: SIGINT, on which the
trainer checkpoints and exits resumably.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError
from noizenet.studio.runs import RefusedError


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class Generation:
    """One generation request and, once it ran, its takes or the reason it failed."""

    run_dir: Path
    kwargs: dict[str, Any]  # noizenet.generate.generate's keyword arguments
    state: str = "running"  # running | done | error
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    generated: float | None = None  # when generate returned (the views come after)
    phase: str = "generating"
    takes: list[Path] = field(default_factory=list)
    error: str | None = None
    live: Any = None  # the latest GenerationProgress generate reported (a block at a time)

    def view(self) -> dict[str, Any]:
        now = time.monotonic()
        elapsed = (self.finished or now) - self.started
        audio_s = float(self.kwargs["seconds"]) * int(self.kwargs.get("variations", 1))
        generating = (self.generated or self.finished or now) - self.started
        return {
            "state": self.state,
            "phase": self.phase if self.state == "running" else self.state,
            "elapsed_s": round(elapsed, 2),
            "generation_s": round(generating, 2) if self.generated else None,
            "audio_s": audio_s,
            # real-time factor: seconds of audio made per second of generate's wall time
            # (loading the run and model included; drawing the views not)
            "rtf": round(audio_s / generating, 2) if self.generated and generating > 0 else None,
            # while it generates: seconds done per take, and the real-time factor so far
            "done_s": None if self.live is None else round(self.live.seconds, 2),
            "live_rtf": None if self.live is None else round(self.live.realtime, 2),
            "error": self.error,
            "settings": {k: _jsonable(v) for k, v in self.kwargs.items()},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "kind"):  # a SeedSpec: as the CLI's --seed reads
        if value.path is None:
            return value.kind
        return f"song:{value.path.name}" + (f"@{value.offset:g}" if value.offset else "")
    return str(value)


class Generations:
    """At most one generation per run at a time, each in its own worker thread."""

    def __init__(self, log: Any = print) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[Path, Generation] = {}
        self.log = log

    def start(self, run_dir: Path, kwargs: dict[str, Any]) -> Generation:
        """Start generating; :class:`RefusedError` (409) while this run is already generating."""
        run_dir = run_dir.resolve()
        with self._lock:
            current = self._jobs.get(run_dir)
            if current is not None and current.state == "running":
                raise RefusedError(
                    "a generation is already running for this run; wait until it finishes", 409
                )
            job = Generation(run_dir, kwargs)
            self._jobs[run_dir] = job
        threading.Thread(target=self._work, args=(job,), daemon=True, name="generate").start()
        return job

    def get(self, run_dir: Path) -> Generation | None:
        return self._jobs.get(run_dir.resolve())

    def _work(self, job: Generation) -> None:
        try:
            generate_takes(job)
            job.state = "done"
        except NoizeNetError as exc:
            job.error = _one_line(exc)
            job.state = "error"
        except Exception as exc:  # a bug: the page gets one line, the terminal the traceback
            self.log(traceback.format_exc())
            job.error = f"unexpected error: {_one_line(exc)}"
            job.state = "error"
        finally:
            job.finished = time.monotonic()


def generate_takes(job: Generation) -> None:
    """What ``noizenet generate`` does: the takes, written under generate's own names, then
    each take's views beside it; ``job`` says which of the two is under way."""
    from noizenet.analysis.figures import wav_figures
    from noizenet.generate import generate
    from noizenet.run import Run

    def progress(p: Any) -> None:
        job.live = p

    run = Run.open(job.run_dir)
    takes = generate(run, **job.kwargs, progress=progress)
    job.generated = time.monotonic()
    job.phase = "drawing views"
    for take in takes:
        assert take.path is not None
        wav_figures(take.path, out_dir=take.path.parent, stem=take.path.stem,
                    title=take.path.name)  # fmt: skip
        job.takes.append(take.path)


@dataclass
class Training:
    """A ``noizenet train`` child process writing one run folder, and its log."""

    run_dir: Path
    command: list[str]
    log_path: Path
    process: subprocess.Popen
    stopping: bool = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def view(self) -> dict[str, Any]:
        code = self.process.poll()
        if code is None:
            state = "stopping" if self.stopping else "running"
        elif code == 0:
            state = "finished"
        elif code in (130, 143):
            state = "stopped (resumable)"
        else:
            state = f"failed (exit code {code})"
        return {"state": state, "returncode": code, "log": tail(self.log_path)}


def tail(path: Path, limit: int = 16_000) -> str:
    """The end of a log file, as text (undecodable bytes replaced)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class Trainings:
    """Training child processes, at most one per run folder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[Path, Training] = {}

    def running(self) -> set[Path]:
        """Run folders a child of this studio is training right now."""
        return {p for p, job in list(self._jobs.items()) if job.alive}

    def get(self, run_dir: Path) -> Training | None:
        return self._jobs.get(run_dir.resolve())

    def start(self, run_dir: Path, args: list[str]) -> Training:
        """Run ``python -m noizenet --quiet train ARGS``, its output appended to
        ``RUN/train.log``; :class:`RefusedError` (409) while this folder is already training."""
        run_dir = run_dir.resolve()
        with self._lock:
            current = self._jobs.get(run_dir)
            if current is not None and current.alive:
                raise RefusedError("this run is already training", 409)
            run_dir.mkdir(parents=True, exist_ok=True)
            log_path = run_dir / "train.log"
            command = [sys.executable, "-m", "noizenet", "--quiet", "train", *args]
            with open(log_path, "ab") as log:
                log.write(f"$ noizenet train {' '.join(args)}\n".encode())
                log.flush()
                process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C in the studio's terminal is not theirs
                )
            job = Training(run_dir, command, log_path, process)
            self._jobs[run_dir] = job
            return job

    def stop(self, run_dir: Path) -> Training:
        """Ctrl-C for the child: it checkpoints at the next step and exits, resumable."""
        job = self.get(run_dir)
        if job is None or not job.alive:
            raise RefusedError("this run is not training", 409)
        job.stopping = True
        job.process.send_signal(signal.SIGINT)
        return job

    def stop_all(self, timeout: float = 30.0) -> None:
        """On shutdown: stop every child as Ctrl-C would, and wait for their checkpoints."""
        jobs = [j for j in self._jobs.values() if j.alive]
        for job in jobs:
            job.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for job in jobs:
            try:
                job.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.process.kill()
