"""Issue 15: long takes stream to disk in blocks (the same samples whatever the block size),
with progress, a valid WAV after Ctrl-C, and the checkpoint they were made from chosen and
recorded; issue 18: the library entries bound their requests themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import noizenet.generate as gen_module
from noizenet.errors import ConfigError
from noizenet.generate import generate, reproduce
from noizenet.generate.stream import GenerationInterruptedError, StreamDraws
from noizenet.limits import RequestTooLargeError
from noizenet.run import Run, best_epoch, load_model

OLD_RUNS = Path(__file__).parent / "data" / "old_runs"


@pytest.mark.parametrize("kind, dim", [("uniform", 1), ("normal", 1), ("normal", 3)])
@pytest.mark.parametrize("block", [1, 7, 50, 1000])
def test_draws_in_blocks_are_the_one_call_draws(kind, dim, block):
    B, steps = 3, 50
    one = np.random.default_rng(9)
    one.random(5)  # whatever the seeds drew first
    if kind == "uniform":
        expected = one.random((B, steps))
    else:
        expected = one.standard_normal((B, steps, dim)).astype(np.float32)
    rng = np.random.default_rng(9)
    rng.random(5)
    draws = StreamDraws(rng, kind, streams=B, steps=steps, dim=dim, block=block)
    parts = [draws.take(s, min(block, steps - s)) for s in range(0, steps, block)]
    got = np.concatenate(parts, axis=1)
    np.testing.assert_array_equal(got, expected)


@pytest.fixture
def mulaw_run(tmp_path):
    shutil.copytree(OLD_RUNS / "mulaw", tmp_path / "mulaw")
    return tmp_path / "mulaw"


def _takes(run, **kw):
    return [t.audio for t in generate(run, write=False, progress=False, **kw)]


@pytest.mark.parametrize(
    "which, settings",
    [
        ("mulaw", {"seed": "white", "temperature": "1.3:0.5,0.9", "top_p": 0.95, "variations": 2}),
        ("tiny", {"seed": "perlin", "inject": "periodic:7", "variations": 2}),
        ("tiny", {"seed": "white", "inject": "stall:4:0.05:0.4"}),
    ],
)
def test_the_block_size_never_changes_a_take(which, settings, mulaw_run, tiny_run, monkeypatch):
    run = mulaw_run if which == "mulaw" else tiny_run.path
    kw = {"seconds": 0.3, "seed_seconds": 0.05, "random_seed": 3, **settings}
    monkeypatch.setattr(gen_module, "BLOCK_SECONDS", 100.0)  # the whole take in one call
    whole = _takes(run, **kw)
    for block in (0.05, 0.0131):  # 1102 and 289 samples: blocks that end mid-way, uneven last
        monkeypatch.setattr(gen_module, "BLOCK_SECONDS", block)
        for a, b in zip(_takes(run, **kw), whole, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_written_take_is_the_take_in_memory_named_and_recorded(mulaw_run, tmp_path):
    seen, running = [], []
    takes = generate(mulaw_run, seed="white", seconds=2.5, variations=2, progress=seen.append,
                     on_running=lambda: running.append(len(seen)))  # fmt: skip
    mem = generate(mulaw_run, seed="white", seconds=2.5, variations=2, write=False,
                   progress=False)  # fmt: skip
    assert [t.path.name for t in takes] == ["gen_white_e1_t1_v0.wav", "gen_white_e1_t1_v1.wav"]
    for t, m in zip(takes, mem, strict=True):
        assert t.kept is None  # never held whole
        on_disk, sr = sf.read(t.path, dtype="float32")
        assert sr == 22050 and on_disk.size == round(2.5 * 22050)
        np.testing.assert_allclose(on_disk, np.clip(m.audio, -1, 1), atol=1 / 32767)
        meta = json.loads(t.path.with_suffix(".json").read_text())
        assert meta["checkpoint"] == "last" and meta["complete"] and meta["epochs"] == 1
        assert meta["generation"]["variations"] == 2 and meta["seconds"] == 2.5
    assert not list(Path(mulaw_run, "audio").glob(".*"))  # no temporary file left
    # three blocks of 1 s, the last partial; the real-time factor is reported with each
    assert [round(p.seconds, 3) for p in seen] == [1.0, 2.0, 2.5]
    assert all(p.realtime > 0 and p.total == 2.5 and p.takes == 2 for p in seen)
    assert running == [1]  # once, when the first block is out: the kernel is loaded and running
    # a default name is never replaced: the same request again gets _1
    again = generate(mulaw_run, seed="white", seconds=0.1, progress=False)
    assert again[0].path.name == "gen_white_e1_t1_v0_1.wav"


@pytest.fixture
def two_epochs(tiny_run, tmp_path):
    """The tiny run (2 epochs), its metrics saying epoch 1 had the lowest validation loss."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    metrics = run_dir / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    records[0]["val_loss"], records[1]["val_loss"] = 0.5, 0.7
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def test_best_and_epoch_1_load_their_own_weights_not_model_safetensors(two_epochs):
    run = Run.open(two_epochs)
    kept = run.paths.epoch_weights_kept()
    assert sorted(kept) == [1, 2] and best_epoch(run.metrics()) == 1
    # the last epoch's weights are model.safetensors'; epoch 1's differ
    last_sd, sds = (
        load_model(run.weights).state_dict(),
        {n: load_model(kept[n]).state_dict() for n in kept},
    )
    assert all(torch.equal(last_sd[k], sds[2][k]) for k in last_sd)
    assert not all(torch.equal(last_sd[k], sds[1][k]) for k in last_sd)
    kw = {"seed": "white", "seconds": 0.2, "random_seed": 1, "progress": False}
    last = generate(run, **kw)[0]
    best = generate(run, checkpoint="best", **kw)[0]
    first = generate(run, checkpoint="epoch:1", **kw)[0]
    by_path = generate(run, checkpoint=str(kept[1]), **kw)[0]
    assert not np.array_equal(best.audio, last.audio)  # would fail if best loaded the last
    np.testing.assert_array_equal(best.audio, first.audio)
    np.testing.assert_array_equal(by_path.audio, first.audio)
    assert last.path.name == "gen_white_e2_v0.wav"
    assert best.path.name == "gen_white_e1_ckpt-best_v0.wav"
    assert first.path.name == "gen_white_e1_ckpt-epoch1_v0.wav"
    assert by_path.path.name == "gen_white_e1_ckpt-epoch0001_v0.wav"
    meta = json.loads(best.path.with_suffix(".json").read_text())
    assert meta["checkpoint"] == "best" and meta["weights"] == str(kept[1]) and meta["epochs"] == 1
    # a checkpoint file works as a PATH too: the weights it holds
    ckpt = run.paths.checkpoints / "ckpt-e0001-s000000.safetensors"  # the end of epoch 1
    if ckpt.is_file():
        from_ckpt = generate(run, checkpoint=str(ckpt), write=False, **kw)[0]
        first_kept = generate(run, checkpoint="epoch:1", write=False, **kw)[0]
        np.testing.assert_array_equal(from_ckpt.audio, first_kept.audio)
    song = next(Path(run.config.data.source).rglob("*.wav"))
    rep = reproduce(run, song, seconds=0.2, checkpoint="epoch:1")
    assert rep.path.name == f"reproduction_{song.stem}_ckpt-epoch1.wav"


@pytest.mark.parametrize(
    "checkpoint, message",
    [
        ("epoch:3", r"generation\.checkpoint: epoch:3: .* has trained 2 epochs"),
        ("epoch:0", r"generation\.checkpoint: 'epoch:0': expected epoch:N with N >= 1"),
        ("epoch:x", r"generation\.checkpoint: 'epoch:x'"),
        ("nowhere.safetensors", r"generation\.checkpoint: nowhere\.safetensors: no such"),
        ("", r"generation\.checkpoint: empty"),
    ],
)
def test_a_checkpoint_the_run_cannot_give_is_refused_in_one_line(two_epochs, checkpoint, message):
    before = sorted((two_epochs / "audio").iterdir())  # the takes training made
    with pytest.raises(ConfigError, match=message):
        generate(two_epochs, checkpoint=checkpoint, seconds=0.1, progress=False)
    assert sorted((two_epochs / "audio").iterdir()) == before


def test_best_without_validation_loss_and_epochs_not_kept_are_refused(two_epochs):
    (two_epochs / "weights" / "epoch-0001.safetensors").unlink()
    with pytest.raises(ConfigError, match=r"keeps no weights of epoch 1 \(the best epoch\)"):
        generate(two_epochs, checkpoint="best", seconds=0.1, progress=False)
    metrics = two_epochs / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.write_text("".join(json.dumps({**r, "val_loss": None}) + "\n" for r in records))
    with pytest.raises(ConfigError, match=r"best: .* has no epoch with a validation loss"):
        generate(two_epochs, checkpoint="best", seconds=0.1, progress=False)


def test_a_resume_or_rollback_drops_the_weights_and_best_of_the_branch_it_leaves(two_epochs):
    """metrics.jsonl is rewritten to the branch training continues on: epoch weights after
    it go, and so does a best checkpoint from after the position training returns to."""
    from noizenet.run import RunWriter, read_run_info
    from noizenet.train.checkpoint import CheckpointStore, _position

    paths = Run.open(two_epochs).paths
    store = CheckpointStore(paths.checkpoints, keep=3)
    best = paths.best_checkpoint
    assert best.is_file() and _position(best) is not None
    writer = RunWriter(two_epochs, read_run_info(paths.info))
    records = Run.open(two_epochs).metrics()
    store.drop_after((1, 0))  # back to the end of epoch 1 (a rollback's or resume's target)
    writer.rewrite_metrics(records[:1])
    assert sorted(paths.epoch_weights_kept()) == [1]
    assert not best.is_file() or _position(best) <= (1, 0)
    run = Run.open(two_epochs)
    assert run.info.epochs_done == 1 and run.choose("best").path == paths.epoch_weights(1)


def test_request_bounds_are_checked_by_the_python_entries_too(two_epochs, monkeypatch):
    before = sorted((two_epochs / "audio").iterdir())  # the takes training made
    with pytest.raises(RequestTooLargeError, match=r"--variations 1 x --seconds 1e\+09"):
        generate(two_epochs, seconds=1e9, progress=False)
    monkeypatch.setenv("NOIZENET_FREE_BYTES", str(40 * 2**20))
    with pytest.raises(RequestTooLargeError, match="writes about"):
        generate(two_epochs, seconds=600, variations=2, progress=False)
    assert sorted((two_epochs / "audio").iterdir()) == before
    song = next(Path(Run.open(two_epochs).config.data.source).rglob("*.wav"))
    with pytest.raises(RequestTooLargeError):
        reproduce(two_epochs, song, seconds=1e9)
    from noizenet.analysis.evaluate import evaluate

    monkeypatch.setenv("NOIZENET_AVAILABLE_MEMORY", str(2**20))
    with pytest.raises(RequestTooLargeError, match="--songs"):
        evaluate(two_epochs, songs=1, gen_seconds=1.0, write=False)


def test_sigint_mid_take_leaves_a_valid_wav_of_what_was_generated(tiny_config, tmp_path):
    """``noizenet generate RUN --seconds 60`` in a subprocess, SIGINT once the first block is on
    disk: a readable WAV shorter than asked, one line saying so, exit 130."""
    from noizenet.train import train

    cfg = tiny_config.with_overrides({"model.hidden": 64, "codec.name": "mulaw", "train.epochs": 1})
    run = train(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
        "NOIZENET_QUIET": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "noizenet", "generate", str(run.path), "--seconds", "60",
         "--no-plot"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    audio = run.path / "audio"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        grown = [p for p in audio.glob(".gen_*.new.wav") if p.stat().st_size > 44 + 2 * 22050]
        if grown:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the take ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [wav] = [p for p in audio.glob("gen_*.wav") if "_ckpt-" not in p.name]  # not training's
    info = sf.info(wav)
    assert 0 < info.duration < 60 and info.samplerate == 22050
    assert sf.read(wav)[0].size == info.frames
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted by SIGINT" in lines[0] and str(wav) in lines[0]
    assert not list(audio.glob(".*"))  # the temporary name was given up
    meta = json.loads(wav.with_suffix(".json").read_text())
    assert meta["complete"] is False and 0 < meta["seconds"] < 60


def test_the_interruption_error_exits_128_plus_the_signal():
    e = GenerationInterruptedError("x", signum=signal.SIGTERM, paths=[], seconds=1.0)
    assert e.exit_code == 143


def test_report_checkpoint_shows_only_the_takes_those_weights_made(two_epochs):
    from noizenet.report.folder import read_run

    kw = {"seed": "white", "seconds": 0.05, "progress": False}
    generate(two_epochs, **kw)
    generate(two_epochs, checkpoint="best", **kw)
    generate(two_epochs, checkpoint="epoch:1", **kw)

    def names(checkpoint):
        return [w.name for w in read_run(two_epochs, checkpoint=checkpoint).wavs]

    assert names("best") == ["gen_white_e1_ckpt-best_v0.wav"]
    assert names("epoch:1") == ["gen_white_e1_ckpt-epoch1_v0.wav"]
    last = names("last")
    assert "gen_white_e2_v0.wav" in last and not [w for w in last if "_ckpt-" in w]
    assert len(names(None)) >= 3


@pytest.mark.parametrize("which", ["tiny", "mulaw"])
def test_a_take_from_saved_weights_starts_without_torch(which, tiny_run, mulaw_run, tmp_path):
    """Start-up: the family's kernel runs on the weights' arrays, so ``noizenet generate`` and
    ``reproduce``, figures included, never import PyTorch (about a second and 220 MB of a
    take's start-up). Would fail if anything on that path imported torch again."""
    run = tiny_run.path if which == "tiny" else mulaw_run
    song = tmp_path / "song.wav"
    sf.write(song, (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), Run.open(run).sr)
    code = (
        "import sys\n"
        "from noizenet.cli import main\n"
        f"a = main(['--quiet', 'generate', {str(run)!r}, '--seconds', '0.5', '--seed', 'white',\n"
        f"          '--out', {str(tmp_path / 'take.wav')!r}])\n"
        f"b = main(['--quiet', 'reproduce', {str(run)!r}, '--song', {str(song)!r},\n"
        f"          '--seconds', '0.2', '--out', {str(tmp_path / 'rep.wav')!r}])\n"
        "print(a, b, sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NOIZENET_QUIET": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 0 []", done.stdout
    assert sf.info(tmp_path / "take.wav").frames > 0
    assert (tmp_path / "take_views.png").is_file()
