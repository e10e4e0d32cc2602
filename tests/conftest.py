"""Shared fixtures: small generated audio and one tiny trained run, made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("NOIZENET_QUIET", "1")
# one torch thread per test process (set before torch is imported; inherited by subprocesses):
# pytest -n 2 already fills two cores, and tiny models run slower, not faster, on more threads
# (on a busy machine, 100x slower as the threads wait for each other)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

SR = 22050


def quiet(*_):
    """A ``log`` that says nothing."""


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One torch thread: the test models are tiny, and on a few shared cores torch's default
    thread pool oversubscribes them and runs such models ~100x slower."""
    import torch

    torch.set_num_threads(1)


def tone_song(seed: int, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """A few decaying notes: enough structure for a model to learn something quickly."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    note = int(0.25 * sr)
    t = np.arange(note) / sr
    for start in range(0, n - note + 1, note):
        f = rng.choice([220.0, 261.6, 329.6, 392.0])
        y[start : start + note] += 0.4 * np.sin(2 * np.pi * f * t) * np.exp(-6 * t)
    return y.astype(np.float32)


def write_wav(path: Path, y: np.ndarray, sr: int = SR, **kwargs) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr, **kwargs)
    return path


@pytest.fixture(scope="session", autouse=True)
def decode_cache(tmp_path_factory) -> Path:
    """Decoded audio and the embedded corpus go to a per-session folder, never to ~/.cache."""
    root = tmp_path_factory.mktemp("cache")
    os.environ["NOIZENET_CACHE"] = str(root)
    return root


@pytest.fixture(scope="session")
def song_dir(tmp_path_factory) -> Path:
    """Five 1-second tone songs in two genre folders."""
    root = tmp_path_factory.mktemp("songs")
    for i in range(5):
        write_wav(root / ("piano" if i % 2 else "guitar") / f"song {i}.wav", tone_song(i))
    return root


@pytest.fixture(scope="session")
def tiny_config(song_dir):
    from noizenet.config import Config

    return Config().with_overrides(
        {
            "data.source": str(song_dir),
            "data.songs": 3,
            "data.seconds": 1.0,
            "data.val_songs": 1,
            "model.hidden": 8,
            "train.epochs": 2,
            "train.batch": 4,
            "train.chunk": 256,
            "train.lr": 0.01,
        }
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory):
    """A trained run folder shared by generation, reproduction and CLI tests (read-only)."""
    from noizenet.report import finish_run
    from noizenet.train import train

    run = train(
        tiny_config, tmp_path_factory.mktemp("runs") / "tiny", progress=False, log=lambda *a: None
    )
    finish_run(run, log=lambda *a: None)  # as the train verb does: loss curve and report
    return run


def run_at_once(code: str, *args: str, processes: int = 3) -> list[str]:
    """Start ``processes`` Python processes running ``code`` with ``args`` at once (as the ranks
    of a distributed run start); return each one's stdout after checking that all succeeded."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(processes)
    ]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return outs
