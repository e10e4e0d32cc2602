"""Requests are bounded before work starts: estimated memory and disk against what is there.

``noizenet generate RUN --seconds 1e9`` would ask numpy for 160 TiB after priming the model, and
``--variations 100000`` would compute for minutes before a full disk says no. Each verb instead
estimates, from its options alone, the bytes its buffers take (the generation kernel's noise,
uniforms, outputs, recurrent state and gate buffers, the decoded takes) and the bytes it writes
(16-bit PCM WAV: 44-byte header + 2 bytes a sample, plus its figures), and refuses with one line
(:class:`RequestTooLargeError`, exit 2) when either exceeds what the machine has:

- memory: ``MemAvailable`` from ``/proc/meminfo`` (Linux), or ``psutil`` where installed;
  nothing is checked where neither exists;
- disk: ``shutil.disk_usage`` of the output's file system, less a margin of
  :data:`DISK_MARGIN` bytes (a full disk breaks more than our own write).

Both figures can be set for tests or for a machine that knows better, in bytes:
``NOIZENET_AVAILABLE_MEMORY`` and ``NOIZENET_FREE_BYTES``.

The estimates are upper bounds of what the code allocates (measured in ``test_concurrency``),
not of the interpreter and libraries around it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noizenet.errors import NoizeNetError

DISK_MARGIN = 32 * 2**20  # bytes left free on the output's file system
WAV_HEADER = 44  # bytes of a mono PCM WAV header (soundfile writes a plain RIFF header)
PCM_BYTES = 2  # audio.write writes 16-bit PCM
FIGURE_BYTES = 2**20  # allowance for one take's PNG views (a few hundred KB in practice)
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class RequestTooLargeError(NoizeNetError):
    """A request that needs more memory or disk than the machine has (exit 2)."""


@dataclass(frozen=True)
class Need:
    """What a request needs: bytes of memory, bytes of disk, and where it writes."""

    memory: int = 0
    disk: int = 0
    disk_path: Path | None = None


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get now (None where unknown)."""
    env = os.environ.get("NOIZENET_AVAILABLE_MEMORY")
    if env:
        return int(float(env))
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file says kB and means KiB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def free_disk(path: str | Path) -> int:
    """Free bytes on the file system that holds ``path`` (or would: its nearest existing
    parent)."""
    env = os.environ.get("NOIZENET_FREE_BYTES")
    if env:
        return int(float(env))
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def check(need: Need, what: str) -> None:
    """Refuse ``what`` (the request in the user's words, e.g. ``--variations 8 --seconds 60``)
    in one line if it needs more memory or disk than there is."""
    mem = available_memory()
    if mem is not None and need.memory > mem:
        raise RequestTooLargeError(
            f"{what}: needs about {size(need.memory)} of memory, {size(mem)} is available; "
            "ask for less"
        )
    if need.disk and need.disk_path is not None:
        free = free_disk(need.disk_path)
        if need.disk + DISK_MARGIN > free:
            raise RequestTooLargeError(
                f"{what}: writes about {size(need.disk)} to {need.disk_path}, "
                f"{size(max(free, 0))} is free there (and {size(DISK_MARGIN)} stay free); "
                "ask for less or write elsewhere"
            )


def size(n: float) -> str:
    """Bytes for people: ``160 TiB``, ``3.2 GiB``, ``512 B``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def wav_bytes(samples: int) -> int:
    """Bytes of the mono 16-bit PCM WAV :func:`noizenet.audio.write` writes."""
    return WAV_HEADER + PCM_BYTES * int(samples)


@dataclass(frozen=True)
class ModelShape:
    """What the generation buffers depend on, read from a run's ``run.json``."""

    cell: str = "lstm"
    hidden: int = 50
    layers: int = 1
    parameters: int = 0
    dim: int = 1  # model values per step (FFT blocks: more than one)
    hop: int = 1  # audio samples per model step
    levels: int = 0  # categorical heads: classes per step (0: regression)

    @classmethod
    def of(cls, run: Any) -> ModelShape:
        """From an opened :class:`~noizenet.run.Run` (its codec and model spec)."""
        codec = run.codec()
        model = run.info.model or {}
        return cls(
            cell=str(model.get("cell", "lstm")),
            hidden=int(model.get("hidden", 50)),
            layers=int(model.get("layers", 1)),
            parameters=int(run.info.parameters),
            dim=int(getattr(codec, "dim", 1)),
            hop=int(getattr(codec, "hop", 1)),
            levels=int(model.get("levels", 0)),  # the spec's: > 0 is a categorical head
        )


def generation_memory(
    shape: ModelShape,
    *,
    streams: int,
    samples: int,
    seed_samples: int,
    kept: bool = True,
    block_samples: int | None = None,
) -> int:
    """Bytes :func:`noizenet.generate.generate` allocates for ``streams`` takes of ``samples``.

    Takes are generated in blocks of ``block_samples`` (default: one block, the whole take).
    Per free step of a block and stream: regression heads draw float64 noise and keep a
    float32 copy and float32 outputs (16 bytes a value); categorical heads float64 uniforms
    and int64 classes (16 bytes). FFT takes keep every block's vectors (their overlap-add
    decodes the whole take at the end). Per seed step: the seed, its encoding and the kernel's
    one-step predictions. Per stream: the recurrent state and three gate buffers (and the
    class buffers of a categorical head), and the draws' bookmarks (~1 KB a block). Per take
    kept in memory (``kept``: not written): the decoded float32 audio. One at a time: a
    decoding's float64 temporaries, and a perlin seed's float64 octaves (~90 bytes a sample).
    The weights: torch's copy and the kernel's.
    """
    block = samples if block_samples is None else min(block_samples, samples)
    blocks = -(-samples // max(block, 1))
    steps = (samples if shape.hop > 1 else block) // shape.hop + 1
    seed_steps = seed_samples // shape.hop + 1
    gates = _GATES.get(shape.cell, 4) * shape.hidden
    if shape.levels:
        free = 16 * steps
        seeded = seed_steps * (4 + 8 + 8 + 4)
        per_stream = 4 * shape.levels * 5
    else:
        free = 16 * steps * shape.dim
        seeded = seed_steps * (4 + 12 * shape.dim)
        per_stream = 4 * shape.dim * 4
    per_stream += 4 * shape.layers * shape.hidden * 2 + 4 * gates * 3 + 1024 * blocks
    per_stream += 4 * samples if kept else 4 * block
    once = 16 * (samples if kept or shape.hop > 1 else block) + 96 * seed_samples
    return streams * (free + seeded + per_stream) + once + 8 * shape.parameters


def generate_need(
    shape: ModelShape,
    *,
    variations: int,
    seconds: float,
    seed_seconds: float,
    sr: int,
    out_dir: Path | None,
    figures: bool = True,
    block_seconds: float | None = None,
) -> Need:
    """Memory and disk of ``generate`` (``out_dir``: where the takes go; None: not written, so
    kept in memory; ``block_seconds``: the blocks written takes stream to disk in)."""
    samples = round(seconds * sr)
    memory = generation_memory(
        shape,
        streams=variations,
        samples=samples,
        seed_samples=round(seed_seconds * sr),
        kept=out_dir is None,
        block_samples=None if block_seconds is None else round(block_seconds * sr),
    )
    if figures and out_dir is not None:
        # the views of a take draw its whole signal: a few float64 copies of one take at a time
        memory += 8 * samples * 4
    disk = 0 if out_dir is None else variations * (wav_bytes(samples) + figures * FIGURE_BYTES)
    return Need(memory=memory, disk=disk, disk_path=out_dir)


def reproduce_need(
    shape: ModelShape, *, seconds: float, sr: int, out_dir: Path | None, figures: bool = True
) -> Need:
    """Memory and disk of ``reproduce``: the song, its encoding, the kernel's predictions, the
    decoded prediction and the SNR's float64 temporaries (about 40 bytes a sample, more for
    FFT blocks), and one WAV (plus its comparison figure)."""
    samples = round(seconds * sr)
    memory = samples * (40 + 8 * shape.dim) + 8 * shape.parameters
    disk = 0 if out_dir is None else wav_bytes(samples) + figures * FIGURE_BYTES
    return Need(memory=memory, disk=disk, disk_path=out_dir)


def evaluate_need(
    shape: ModelShape,
    *,
    songs: int,
    seconds: float | None,
    gen_seconds: float,
    seed_seconds: float,
    sr: int,
) -> Need:
    """Memory of ``evaluate``: per track its audio, three kept predictions and two kept takes,
    plus one reproduction and one generation at a time. Tracks of unknown length (``seconds``
    None: whole songs) count only their generated part."""
    n = round(seconds * sr) if seconds else 0
    g = round(gen_seconds * sr)
    one_take = generation_memory(shape, streams=1, samples=g, seed_samples=round(seed_seconds * sr))
    kept = songs * (4 * n * 4 + 4 * g * 2)
    return Need(
        memory=kept + reproduce_need(shape, seconds=n / sr, sr=sr, out_dir=None).memory + one_take
    )


# -- one call per verb: the library's entries (generate, reproduce, evaluate) make them --------
# Audio seconds a written take streams to disk in (noizenet.generate.stream.BLOCK_SECONDS).
STREAM_BLOCK_SECONDS = 1.0


def check_generate(
    run: Any,
    *,
    variations: int,
    seconds: float,
    seed_seconds: float,
    out: Path | None,
    figures: bool = True,
    write: bool = True,
) -> None:
    """Refuse a ``generate`` request the machine cannot hold or store, before it computes."""
    out_dir = Path(out).parent if out is not None else Path(run.path) / "audio"
    need = generate_need(
        ModelShape.of(run),
        variations=variations,
        seconds=seconds,
        seed_seconds=seed_seconds,
        sr=run.sr,
        out_dir=out_dir if write else None,
        figures=figures and write,
        block_seconds=STREAM_BLOCK_SECONDS if write else None,
    )
    check(need, f"--variations {variations} x --seconds {seconds:g}")


def check_reproduce(
    run: Any, *, seconds: float | None, out: Path | None, figures: bool = True
) -> None:
    """Refuse a ``reproduce`` request the machine cannot hold or store (``seconds`` None: the
    whole song, whose length is not known yet: not checked)."""
    if seconds is None:
        return
    out_dir = Path(out).parent if out is not None else Path(run.path) / "audio"
    need = reproduce_need(ModelShape.of(run), seconds=seconds, sr=run.sr, out_dir=out_dir)
    check(need, f"--seconds {seconds:g}")


def check_evaluate(
    run: Any, *, songs: int, seconds: float | None, gen_seconds: float, seed_seconds: float
) -> None:
    """Refuse an ``evaluate`` request the machine cannot hold (``seconds`` None: the run's)."""
    if seconds is None:
        seconds = run.config.data.seconds
    need = evaluate_need(
        ModelShape.of(run),
        songs=songs,
        seconds=seconds or None,
        gen_seconds=gen_seconds,
        seed_seconds=seed_seconds,
        sr=run.sr,
    )
    what = f"--songs {songs} x --seconds {seconds:g}" if seconds else f"--songs {songs}"
    check(need, f"{what}, --gen-seconds {gen_seconds:g}")
