"""Decode throughput and training memory for corpora of 50 and 400 synthetic 30 s tracks.

    PYTHONPATH=src python benchmarks/bench_corpus.py            # a few minutes on 2 cores
    PYTHONPATH=src python benchmarks/bench_corpus.py --sizes 50 400 --format mp3 --work /tmp/b

1. Writes ``--unique`` synthetic songs once (44.1 kHz stereo MP3 like FMA's clips, or WAV),
   reused on later runs, and copies them into ``corpus-N/`` as N separate files for every size
   N (each a distinct path, decoded and cached on its own).
2. Decodes each corpus into a fresh cache with the decode workers (one per core), and prints
   the decode throughput in seconds of audio per second of wall time.
3. Trains one epoch on every track of each corpus in a subprocess (``python -m noizenet
   train``) with the cache warm, and prints that process's peak resident memory (``wait4``'s
   ``ru_maxrss``). Training reads the cache through memory maps, so the peak should not grow
   with the corpus: the benchmark checks that 400 tracks peak within 20% of 50 tracks.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SOURCE_SR = 44100


def synth_song(i: int, seconds: float, sr: int = SOURCE_SR) -> np.ndarray:
    """Notes with a few harmonics, a decay and a little noise, stereo: cheap but not trivial."""
    rng = np.random.default_rng(i)
    n = int(seconds * sr)
    y = np.zeros(n, dtype=np.float32)
    note = int(sr * rng.uniform(0.15, 0.4))
    t = np.arange(note, dtype=np.float32) / sr
    env = np.exp(-t * rng.uniform(3, 9)).astype(np.float32)
    for start in range(0, n - note, note):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
        y[start : start + note] += (0.25 * tone * env).astype(np.float32)
    y += 0.01 * rng.standard_normal(n).astype(np.float32)
    return np.stack([y, 0.8 * y], axis=1)


def _write_song(args: tuple[int, float, str, str]) -> str:
    import soundfile as sf

    i, seconds, fmt, folder = args
    path = Path(folder) / f"song{i:04d}.{fmt}"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        sf.write(tmp, synth_song(i, seconds), SOURCE_SR, format=fmt.upper())
        tmp.rename(path)
    return str(path)


def make_sources(work: Path, n: int, seconds: float, fmt: str) -> list[Path]:
    """``n`` distinct synthetic songs (encoding MP3 is slow: they are kept for later runs)."""
    folder = work / f"sources-{fmt}-{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(i, seconds, fmt, str(folder)) for i in range(n)]
    with ProcessPoolExecutor() as ex:
        paths = [Path(p) for p in ex.map(_write_song, jobs, chunksize=2)]
    print(f"sources: {n} x {seconds:g} s {fmt} in {folder} ({time.perf_counter() - t0:.0f} s)")
    return paths


def corpus(work: Path, sources: list[Path], n: int) -> Path:
    """``n`` files in ``corpus-N/``: copies of the sources, cycled when there are fewer.

    Copies, not links: every file is a distinct path and inode, decoded and cached on its own.
    """
    folder = work / f"corpus-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        src = sources[i % len(sources)]
        shutil.copyfile(src, folder / f"track{i:04d}{src.suffix}")
    return folder


def decode(folder: Path, cache: Path) -> tuple[float, float, int]:
    """Decode every file of ``folder`` into a fresh cache: (audio seconds, wall seconds, files)."""
    from noizenet.corpus.cache import DecodeCache

    shutil.rmtree(cache, ignore_errors=True)
    paths = sorted(folder.iterdir())
    t0 = time.perf_counter()
    entries, report = DecodeCache(cache).ensure(paths, workers=os.cpu_count() or 1)
    wall = time.perf_counter() - t0
    bad = [p for p, e in entries.items() if e["status"] != "ok"]
    if bad:
        raise SystemExit(f"{len(bad)} files failed to decode, e.g. {bad[0]}")
    return report.audio_seconds, wall, len(paths)


def train_peak(folder: Path, cache: Path, n: int, out: Path, args: argparse.Namespace) -> dict:
    """Train one epoch in a subprocess; its peak RSS in MiB (wait4), wall time, samples/s."""
    cmd = [
        sys.executable,
        "-m",
        "noizenet",
        "train",
        "--data",
        str(folder),
        "--songs",
        str(n - 1),
        "--val-songs",
        "1",
        "--seconds",
        str(args.seconds),
        "--epochs",
        "1",
        "--model",
        args.model,
        "--hidden",
        str(args.hidden),
        "--batch",
        str(args.batch),
        "--chunk",
        str(args.chunk),
        "--cache-dir",
        str(cache),
        "--threads",
        str(args.threads),
        "--out",
        str(out),
        "--force",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    output = proc.stdout.read().decode()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"training failed:\n{output}")
    if "0 decoded" not in output:
        raise SystemExit(f"the cache was not warm:\n{output}")
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss: KiB (Linux), B (mac)
    return {
        "peak_mib": usage.ru_maxrss / scale,
        "wall_s": wall,
        "samples_per_s": metrics["samples_per_s"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/noizenet-bench"))
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 400])
    p.add_argument("--seconds", type=float, default=30.0, help="length of each track")
    p.add_argument("--format", choices=("mp3", "wav"), default="mp3")
    p.add_argument(
        "--unique",
        type=int,
        default=40,
        help="distinct songs to synthesise; larger corpora repeat them as separate files",
    )
    p.add_argument("--model", default="rnn", help="a small model keeps an epoch short")
    p.add_argument("--hidden", type=int, default=8)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for training (on a shared machine more threads only wait)",
    )
    args = p.parse_args()

    os.environ.setdefault("NOIZENET_QUIET", "1")
    sources = make_sources(args.work, min(args.unique, max(args.sizes)), args.seconds, args.format)
    rows = []
    for n in args.sizes:
        folder = corpus(args.work, sources, n)
        cache = args.work / f"cache-{n}"
        audio_s, wall, files = decode(folder, cache)
        print(
            f"decode {files} tracks ({audio_s / 3600:.2f} h of audio): {wall:.1f} s, "
            f"{audio_s / wall:,.0f} s of audio per second ({os.cpu_count()} workers)",
            flush=True,
        )
        peak = train_peak(folder, cache, n, args.work / f"run-{n}", args)
        float32_mib = audio_s * 22050 * 4 / 2**20
        print(
            f"train 1 epoch on {n} tracks: peak RSS {peak['peak_mib']:,.0f} MiB, "
            f"{peak['wall_s']:.0f} s, {peak['samples_per_s']:,.0f} samples/s "
            f"(the corpus as float32 in RAM would be {float32_mib:,.0f} MiB)",
            flush=True,
        )
        rows.append((n, audio_s, wall, peak))

    print("\ntracks  audio h  decode s  audio s/s  train peak MiB  train s")
    for n, audio_s, wall, peak in rows:
        print(
            f"{n:6d}  {audio_s / 3600:7.2f}  {wall:8.1f}  {audio_s / wall:9,.0f}  "
            f"{peak['peak_mib']:14,.0f}  {peak['wall_s']:7.0f}"
        )
    if len(rows) >= 2:
        lo, hi = rows[0][3]["peak_mib"], rows[-1][3]["peak_mib"]
        growth = hi / lo - 1
        verdict = "OK" if abs(growth) < 0.20 else "FAIL"
        print(
            f"peak memory {rows[-1][0]} vs {rows[0][0]} tracks: {growth:+.1%} "
            f"({verdict}: must differ by less than 20%)"
        )


if __name__ == "__main__":
    main()
