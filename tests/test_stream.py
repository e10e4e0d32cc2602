"""Long takes: block-wise generation equals one-shot generation, streamed WAVs, stop by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import noizenet.generate as gen
from noizenet.errors import NoizeNetError
from noizenet.generate import generate
from noizenet.generate.stream import (
    GenerationInterruptedError,
    TakeWriter,
    block_lengths,
    stream_takes,
    temperature_span,
)
from noizenet.models import ModelSpec, NoizeNet
from noizenet.models.flat_kernels import kernel_weights, run_categorical

SR = 22050


def test_block_lengths_cover_the_steps_in_whole_periods():
    assert block_lengths(10, 4) == [4, 4, 2]
    assert block_lengths(10, 4, multiple=3) == [6, 4]  # 4 rounded up to two periods
    assert block_lengths(7, 100) == [7]
    assert block_lengths(0, 4) == []
    assert sum(block_lengths(12345, 678, multiple=7)) == 12345


def test_temperature_span_follows_the_whole_schedule():
    temps = (np.array([0.5, 1.0]), np.array([1.5, 1.0]))
    lo, hi = temperature_span(temps, 0, 11, 11)  # one block: the schedule itself
    np.testing.assert_array_equal(lo, temps[0])
    np.testing.assert_array_equal(hi, temps[1])
    lo, hi = temperature_span(temps, 5, 3, 11)  # steps 5..7 of 0..10
    np.testing.assert_allclose(lo, [1.0, 1.0])
    np.testing.assert_allclose(hi, [1.2, 1.0])


@pytest.mark.parametrize("temperature", [0.9, (0.5, 1.5)])
def test_categorical_kernel_in_blocks_equals_one_call(temperature):
    """The state and the last sampled class carry over: blocks give the one-shot draws."""
    torch.manual_seed(0)
    spec = ModelSpec(cell="lstm", hidden=16, layers=2, levels=32)
    w = kernel_weights(NoizeNet(spec).eval())
    rng = np.random.default_rng(0)
    forced = rng.integers(0, 32, (3, 20))
    u = rng.random((3, 300))
    levels = np.linspace(-1, 1, 32)
    t0, t1 = (np.full(3, t) for t in np.broadcast_to(temperature, 2))
    _, whole, end = run_categorical(
        w, forced, 300, level_values=levels, temperature=(t0, t1), uniforms=u
    )
    parts, state, start, feed = [], None, 0, forced
    for n in block_lengths(300, 70):
        temps = temperature_span((t0, t1), start, n, 300)
        _, out, state = run_categorical(
            w, feed, n, level_values=levels, temperature=temps, uniforms=u[:, start : start + n],
            state=state,
        )  # fmt: skip
        parts.append(out)
        feed, start = out[:, -1:], start + n
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    np.testing.assert_allclose(state[0], end[0], atol=1e-6)
    assert len(np.unique(whole)) > 3  # it sampled, not a constant


def _blocked(monkeypatch, block_seconds: float, **kwargs):
    monkeypatch.setattr(gen, "BLOCK_SECONDS", block_seconds)
    return [t.audio for t in generate(write=False, **kwargs)]


@pytest.mark.parametrize("inject", [None, "periodic:7"])
def test_generation_in_blocks_equals_one_block(tiny_run, monkeypatch, inject):
    """Same random seed, same takes, however long the blocks (the draws are time-major)."""
    kw = dict(run=tiny_run, seed="white", seconds=0.2, variations=3, inject=inject, random_seed=4)
    one = _blocked(monkeypatch, 10.0, **kw)
    many = _blocked(monkeypatch, 0.003, **kw)  # 66 steps, rounded up to whole periods
    for a, b in zip(one, many, strict=True):
        assert a.size == round(0.2 * SR)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one[0], one[1])


def test_one_variation_keeps_the_draws_of_one_shot_generation(tiny_run, monkeypatch):
    """With one take, time-major draws are the old (stream-major) draws: same audio as before."""
    from noizenet.generate.seeds import make_seed, parse_seed
    from noizenet.models.flat_kernels import run

    got = _blocked(monkeypatch, 0.01, run=tiny_run, seed="perlin", seconds=0.1, random_seed=3)
    codec, rng = tiny_run.codec(), np.random.default_rng(3)
    seed = make_seed(
        parse_seed("perlin"), seconds=1.0, sr=SR, rms=tiny_run.info["train_rms"], rng=rng
    )
    noise = rng.standard_normal((1, 2205, 1)).astype(np.float32)[:, :, 0]
    w = kernel_weights(tiny_run.model())
    _, out, _ = run(w, codec.encode(seed)[None], 2205, noise=noise)
    np.testing.assert_array_equal(got[0], codec.decode(out[0]))


def test_written_takes_stream_to_files_and_read_back(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "BLOCK_SECONDS", 0.01)
    takes = generate(tiny_run, seed="white", seconds=0.1, variations=2, out=tmp_path / "g.wav")
    memory = generate(tiny_run, seed="white", seconds=0.1, variations=2, write=False)
    for take, kept in zip(takes, memory, strict=True):
        assert take.kept is None and take.path.is_file()
        info = sf.info(take.path)
        assert (info.samplerate, info.frames, info.subtype) == (SR, 2205, "PCM_16")
        # the file holds the in-memory take, clipped and rounded to 16 bits
        np.testing.assert_allclose(take.audio, np.clip(kept.audio, -1, 1), atol=1 / 32767)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_v0.wav", "g_v1.wav"]


def test_take_writer_keeps_blocks_in_order_and_removes_files_on_error(tmp_path):
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    y = np.linspace(-0.5, 0.5, 300, dtype=np.float32)
    with TakeWriter(paths, sr=SR) as w:
        w.write(np.stack([y[:100], -y[:100]]))
        w.write(np.stack([y[100:], -y[100:]]))
    np.testing.assert_allclose(sf.read(paths[0], dtype="float32")[0], y, atol=1 / 32767)
    np.testing.assert_allclose(sf.read(paths[1], dtype="float32")[0], -y, atol=1 / 32767)
    with pytest.raises(RuntimeError), TakeWriter([tmp_path / "c.wav"], sr=SR) as w:
        w.write(y[None])
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]  # no c, no temp


def test_non_finite_samples_leave_no_file(tmp_path):
    def blocks():
        yield np.zeros((1, 100), np.float32)
        yield np.full((1, 100), np.nan, np.float32)

    with pytest.raises(NoizeNetError, match="non-finite"):
        stream_takes(blocks(), lambda i, v: v, takes=1, samples=200, sr=SR,
                     paths=[tmp_path / "x.wav"])  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_at_a_block_boundary_with_valid_files(tmp_path, signum):
    def blocks():
        for k in range(10):
            if k == 3:
                os.kill(os.getpid(), signum)  # arrives while block 3 is being made
            yield np.full((2, 100), 0.1 * (k + 1), np.float32)

    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    with pytest.raises(GenerationInterruptedError) as err:
        stream_takes(blocks(), lambda i, v: v, takes=2, samples=1000, sr=SR, paths=paths)
    assert err.value.exit_code == 128 + signum and err.value.samples == 400
    assert signal.Signals(signum).name in str(err.value) and "\n" not in str(err.value)
    for p in paths:
        y = sf.read(p, dtype="float32")[0]
        np.testing.assert_allclose(y[::100], [0.1, 0.2, 0.3, 0.4], atol=1e-4)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


@pytest.fixture(scope="module")
def slow_run(tiny_config, tmp_path_factory):
    """A run large enough that 60 s take several seconds of wall time to generate."""
    from noizenet.train import train

    cfg = tiny_config.with_overrides(
        {"model.hidden": 128, "train.epochs": 1, "data.songs": 1, "train.chunk": 1024}
    )
    root = tmp_path_factory.mktemp("slow") / "run"
    return train(cfg, root, progress=False, figures=False, log=lambda *a: None)


def test_sigint_in_a_long_take_leaves_a_readable_wav(slow_run, tmp_path):
    out = tmp_path / "takes" / "long.wav"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "noizenet", "generate", str(slow_run.path), "--seconds", "60",
           "--no-plot", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the take grows
        if out.parent.is_dir() and any(p.stat().st_size > 4096 for p in out.parent.iterdir()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in err and str(out) in err
    y, sr = sf.read(out)
    assert sr == SR and 0 < y.size < 60 * SR
    assert [p.name for p in out.parent.iterdir()] == ["long.wav"]  # no temporary file left
