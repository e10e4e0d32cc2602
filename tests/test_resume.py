"""Killed at any point and resumed, a run ends with the weights of an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import quiet

import noizenet
from noizenet.errors import ConfigError, NoizeNetError, WriteError
from noizenet.io import read_jsonl
from noizenet.run import Run, load_model
from noizenet.train import train
from noizenet.train.checkpoint import load_checkpoint

HERE = Path(__file__).parent
SRC = str(Path(noizenet.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def cfg(tiny_config):
    # dropout 0.5 (the default) draws random numbers every step: resume must restore them
    return tiny_config.with_overrides(
        {"train.epochs": 3, "train.checkpoint_every": 10, "train.threads": 1}
    )


@pytest.fixture(scope="module")
def reference(cfg, tmp_path_factory):
    """The same run, never interrupted."""
    out = tmp_path_factory.mktemp("ref") / "run"
    return train(cfg, out, progress=False, log=quiet)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).state_dict()


def assert_same_run(run_dir: Path, reference: Run) -> None:
    a, b = weights(run_dir / "model.safetensors"), weights(reference.weights)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses = [
        (r["epoch"], r["train_loss"], r["val_loss"]) for r in read_jsonl(run_dir / "metrics.jsonl")
    ]
    expected = [(r["epoch"], r["train_loss"], r["val_loss"]) for r in reference.metrics()]
    assert losses == expected  # the same numbers, each epoch exactly once
    assert Run.open(run_dir).info.status == "complete"


def worker(config: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HERE / "resume_worker.py"), str(config), str(out), *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sigkill_at_several_points_then_resume_gives_identical_weights(cfg, reference, tmp_path):
    config = tmp_path / "c.toml"
    cfg.save(config)
    out = tmp_path / "run"
    # 66 steps per epoch, a checkpoint every 10 steps and at each epoch's end
    kills = [
        [],  # fresh run: killed after step 25, between the checkpoints of steps 20 and 30
        ["--resume"],  # right after the end-of-epoch-1 checkpoint reached the disk
        ["--resume"],  # after epoch 2's metrics line, before its checkpoint
    ]
    points = ["step:25", "checkpoint:1:0", "epoch:2"]
    for args, point in zip(kills, points, strict=True):
        p = worker(config, out, *args, "--kill", point)
        assert p.returncode == -signal.SIGKILL, p.stderr
        assert Run.open(out).info.status != "complete"
    # the epoch-2 line was written before the kill; the resumed run must not log it twice
    assert [r["epoch"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2]
    lines = []
    train(None, out, resume=True, progress=False, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    assert_same_run(out, reference)
    events = [e["event"] for e in read_jsonl(out / "events.jsonl")]
    assert events.count("resumed") == 3
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert "best.safetensors" in ckpts and len(ckpts) == cfg.train.keep_checkpoints + 1
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]


def test_sigkill_from_outside_at_a_random_moment(cfg, reference, tmp_path):
    """Not a chosen step: whatever the process was doing (maybe writing a file) when killed."""
    out = tmp_path / "run"
    flags = ["--quiet", "train", "--config", str(tmp_path / "c.toml"), "--out", str(out)]
    cfg.save(tmp_path / "c.toml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "noizenet", *flags],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        ckpts = out / "checkpoints"
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpts.is_dir() and len(list(ckpts.glob("ckpt-*"))) >= 2:
                break
            time.sleep(0.005)
        proc.kill()  # SIGKILL
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert Run.open(out).info.status == "training"
    from noizenet.cli import main

    rc = main(["--quiet", "train", "--resume", str(out)])
    assert rc == 0
    assert_same_run(out, reference)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_checkpoint_and_exit_cleanly(cfg, reference, tmp_path, sig, code):
    out = tmp_path / "run"
    cfg.save(tmp_path / "c.toml")
    flags = ["train", "--config", str(tmp_path / "c.toml"), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "noizenet", *flags],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "checkpoints").is_dir() and len(list((out / "checkpoints").glob("ckpt-*"))) >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert f"noizenet train --resume {out}" in last and "Traceback" not in err
    assert signal.Signals(sig).name in last
    info = Run.open(out).info
    assert info.status == "interrupted"
    # the checkpoint named in the message is the position it stopped at
    name = last.split("checkpoints/")[1].split(")")[0]
    assert load_checkpoint(out / "checkpoints" / name).position[1] >= 0
    train(None, out, resume=True, progress=False, log=quiet)
    assert_same_run(out, reference)


def test_epochs_can_be_extended_on_resume(cfg, reference, tmp_path):
    short = cfg.with_overrides({"train.epochs": 2})
    train(short, tmp_path / "run", progress=False, log=quiet)
    lines = []
    train(None, tmp_path / "run", resume=True, progress=False, log=lines.append)
    assert any("already complete" in line for line in lines)
    train(cfg, tmp_path / "run", resume=True, progress=False, log=quiet)
    assert_same_run(tmp_path / "run", reference)
    assert Run.open(tmp_path / "run").config.train.epochs == 3
    with pytest.raises(ConfigError, match="already trained 3 epochs"):
        train(short, tmp_path / "run", resume=True, progress=False, log=quiet)


def test_a_failed_checkpoint_write_stops_training_and_resume_recovers(
    cfg, reference, tmp_path, monkeypatch
):
    """A full disk mid-run: no half-written checkpoint, the earlier ones intact, resumable."""
    import errno

    import safetensors.torch

    real = safetensors.torch.save_file
    calls = {"n": 0}

    def full_disk(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 4:
            Path(filename).write_bytes(b"\0" * 100)  # part of the file made it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    out = tmp_path / "run"
    with pytest.raises(WriteError, match="No space left on device") as exc:
        train(cfg, out, progress=False, log=quiet)
    assert "checkpoints" in str(exc.value) and "\n" not in str(exc.value)
    files = list((out / "checkpoints").iterdir())
    assert all(not p.name.startswith(".") for p in files)  # no temp file left behind
    for p in files:
        load_checkpoint(p)  # every file there is whole
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    train(None, out, resume=True, progress=False, log=quiet)
    assert_same_run(out, reference)


def test_resume_refuses_changed_settings_and_data(cfg, tmp_path):
    short = cfg.with_overrides({"train.epochs": 1, "train.checkpoint_every": 0})
    train(short, tmp_path / "run", progress=False, log=quiet)
    with pytest.raises(ConfigError, match=r"model\.hidden is 8 in the run, not 9"):
        train(short.with_overrides({"model.hidden": 9}), tmp_path / "run", resume=True, log=quiet)
    with pytest.raises(NoizeNetError, match="pick one"):
        train(None, tmp_path / "run", resume=True, force=True, log=quiet)
    with pytest.raises(NoizeNetError, match="no run to resume"):
        train(None, tmp_path / "nothing", resume=True, log=quiet)
    # the songs on disk changed under the run
    import shutil

    songs = tmp_path / "songs"
    shutil.copytree(short.data.source, songs)
    moved = short.with_overrides({"data.source": str(songs), "train.epochs": 2})
    train(moved.with_overrides({"train.epochs": 1}), tmp_path / "r2", progress=False, log=quiet)
    for wav in songs.rglob("*.wav"):
        wav.write_bytes(wav.read_bytes()[:-4000])  # every song shorter
    with pytest.raises(NoizeNetError, match="songs changed"):
        train(moved, tmp_path / "r2", resume=True, progress=False, log=quiet)


class CrashError(Exception):
    """Stands in for a crash in-process (the SIGKILL tests above do it for real)."""


def crash_at(epoch: int, step: int):
    def attach(trainer) -> None:
        def boom(tr, batch, loss) -> None:
            if (tr.epoch, tr.step) == (epoch, step):
                raise CrashError

        trainer.on_step.append(boom)

    return attach


@pytest.mark.parametrize(
    "overrides, crashes",
    [
        # categorical head: embedding, cross-entropy, bits per sample in the metrics
        ({"codec.name": "mulaw", "train.checkpoint_every": 7}, [(0, 10), (1, 30)]),
        # FFT blocks: one vector per step, 5 steps per epoch
        ({"codec.name": "fft", "train.chunk": 16, "train.checkpoint_every": 2}, [(0, 3), (1, 2)]),
    ],
    ids=["mulaw", "fft"],
)
def test_every_head_resumes_mid_epoch_to_identical_weights(
    tiny_config, tmp_path, overrides, crashes
):
    cfg = tiny_config.with_overrides({**overrides, "train.threads": 1})
    reference = train(cfg, tmp_path / "ref", progress=False, log=quiet)
    out = tmp_path / "run"
    with pytest.raises(CrashError):
        train(cfg, out, progress=False, log=quiet, attach=crash_at(*crashes[0]))
    with pytest.raises(CrashError):
        train(None, out, resume=True, progress=False, log=quiet, attach=crash_at(*crashes[1]))
    train(None, out, resume=True, progress=False, log=quiet)
    assert_same_run(out, reference)
    assert read_jsonl(out / "metrics.jsonl")[0].keys() == reference.metrics()[0].keys()
