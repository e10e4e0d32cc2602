"""Several processes on one run folder, outputs that never collide, requests that are bounded.

Trainers that must be caught mid-run are held at a gate (after epoch 1, once its metrics,
weights and run.json are on disk) until the test lets them go: no test depends on timing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import noizenet
from noizenet.errors import NoizeNetError
from noizenet.io import read_jsonl
from noizenet.locks import LOCK_NAME, lock_holder
from noizenet.run import Run

SRC = str(Path(noizenet.__file__).resolve().parents[1])
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    "NOIZENET_QUIET": "1",
}
SR = 22050

# Train CONFIG into RUN, stopping after epoch 1 until the file GATE exists (GATE.reached says it
# got there); a refusal prints its one line and exits 2, as the command line does.
GATED = """
import sys, time
from pathlib import Path
from noizenet.config import Config
from noizenet.errors import NoizeNetError
from noizenet.train import train

config, out, gate = sys.argv[1], sys.argv[2], Path(sys.argv[3])
resume = "--resume" in sys.argv

def hold(tr, result):
    if result.epoch == 1:
        Path(f"{gate}.reached").touch()
        while not gate.exists():
            time.sleep(0.01)

try:
    train(None if resume else Config.load(config), out, resume=resume, progress=False,
          log=lambda *a: None, attach=lambda tr: tr.on_epoch.append(hold))
except NoizeNetError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


@pytest.fixture(scope="module")
def config(tiny_config, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    tiny_config.with_overrides({"train.threads": 1}).save(path)
    return path


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the shared tiny run, so that its audio folder is this test's."""
    return Path(shutil.copytree(tiny_run.path, tmp_path / "run"))


def gated(config: Path, out: Path, gate: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", GATED, str(config), str(out), str(gate), *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "noizenet", *args],
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli_at_once(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "noizenet", *c],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    return [
        subprocess.CompletedProcess(p.args, p.returncode, o, e)
        for p, (o, e) in zip(procs, outs, strict=True)
    ]


def assert_one_complete_run(trainer: subprocess.Popen, out: Path) -> None:
    """The trainer ends well, and ``out`` holds one run: each of its epochs logged once."""
    assert trainer.wait(timeout=120) == 0, trainer.communicate()[1]
    assert [r["epoch"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2]
    assert Run.open(out).info.status == "complete"


def test_two_trainers_started_at_once_on_a_new_folder(config, tmp_path):
    """Neither folder nor lock exist yet: one trainer gets the folder, the other is refused."""
    out, gate = tmp_path / "new" / "run", tmp_path / "gate"
    a, b = gated(config, out, gate), gated(config, out, gate)
    # the loser leaves at once; the winner waits at its gate, holding the folder
    deadline = time.monotonic() + 120
    while a.poll() is None and b.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    loser, winner = (a, b) if a.poll() is not None else (b, a)
    wait_for(Path(f"{gate}.reached"), winner)
    err = loser.communicate()[1].strip()
    assert loser.returncode == 2, err
    assert err.count("\n") == 0
    assert f"{out}: another process is training this run (pid {winner.pid}" in err
    gate.touch()
    assert_one_complete_run(winner, out)
    assert lock_holder(out) is None


def test_a_second_writer_is_refused_in_one_line_and_touches_nothing(config, tmp_path):
    out, gate = tmp_path / "run", tmp_path / "gate"
    first = gated(config, out, gate)
    try:
        wait_for(Path(f"{gate}.reached"), first)
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
        for p in cli_at_once(
            ["train", "--config", str(config), "--out", str(out)],
            ["train", "--config", str(config), "--out", str(out), "--force"],
            ["train", "--resume", str(out)],
        ):
            assert p.returncode == 2, p.stderr
            line = p.stderr.strip()
            assert "\n" not in line
            assert line.startswith(f"noizenet train: error: {out}: another process is training")
            assert f"(pid {first.pid} on " in line and "train" in line
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing deleted
    finally:
        gate.touch()
    assert_one_complete_run(first, out)


def test_a_sigkilled_trainer_leaves_no_stale_lock(config, tmp_path):
    out, gate = tmp_path / "run", tmp_path / "gate"
    first = gated(config, out, gate)
    wait_for(Path(f"{gate}.reached"), first)
    assert lock_holder(out)["pid"] == first.pid
    first.kill()  # SIGKILL: no clean-up ran
    assert first.wait() == -signal.SIGKILL
    assert (out / LOCK_NAME).exists() and lock_holder(out) is None
    gate.touch()
    resumed = gated(config, out, gate, "--resume")
    assert_one_complete_run(resumed, out)


def test_a_reader_during_training_gets_complete_weights_and_is_told(config, tmp_path):
    out, gate = tmp_path / "run", tmp_path / "gate"
    trainer = gated(config, out, gate)
    try:
        wait_for(Path(f"{gate}.reached"), trainer)
        wav, page = tmp_path / "take.wav", tmp_path / "report.html"
        for p in cli_at_once(
            ["generate", str(out), "--seconds", "1", "--no-plot", "--out", str(wav)],
            ["report", str(out), "--out", str(page)],
        ):
            assert p.returncode == 0, p.stderr
            assert p.stderr.strip() == (
                f"{out} is still training (pid {trainer.pid}); using the weights of epoch 1"
            )
        assert page.stat().st_size > 1000
        y, sr = sf.read(wav, dtype="float32")
        assert sr == SR and y.shape == (SR,) and np.all(np.isfinite(y))
    finally:
        gate.touch()
    assert_one_complete_run(trainer, out)


def test_a_run_with_no_weights_yet_is_a_clear_error(run_copy, tmp_path):
    """Between the lock and the first epoch's weights a reader has nothing to read."""
    from noizenet.locks import hold_run_folder, note_if_training, releasing_run_locks

    (run_copy / "model.safetensors").unlink()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from noizenet.locks import hold_run_folder; "
            "hold_run_folder(sys.argv[1]).announce(); print('held', flush=True); time.sleep(60)",
            str(run_copy),
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(NoizeNetError, match="has no weights yet"):
            note_if_training(run_copy, log=print)
    finally:
        holder.kill()
        holder.wait()
    assert not note_if_training(run_copy)
    with releasing_run_locks():  # free again: this process can take it, and gives it back
        hold_run_folder(run_copy)
    assert lock_holder(run_copy) is None


def test_two_takes_to_one_default_name_at_once_give_two_whole_files(run_copy):
    base = ["generate", str(run_copy), "--seconds", "1", "--no-plot"]
    done = cli_at_once([*base, "--random-seed", "1"], [*base, "--random-seed", "2"])
    for p in done:
        assert p.returncode == 0, p.stderr
    audio = run_copy / "audio"
    # the takes asked for (besides the takes training made at the run's end)
    names = sorted(p.name for p in audio.iterdir() if p.suffix == ".wav" and "_ckpt-" not in p.name)
    assert names == ["gen_perlin_e2_v0.wav", "gen_perlin_e2_v0_1.wav"]
    assert not [p for p in audio.iterdir() if p.name.startswith(".")]  # no temporaries left
    assert all((audio / n).with_suffix(".json").is_file() for n in names)  # each its sidecar
    written = {Path(p.stdout.split()[-1]).name for p in done}
    assert written == set(names)
    takes = [sf.read(run_copy / "audio" / n, dtype="int16") for n in names]
    assert all(sr == SR and y.shape == (SR,) for y, sr in takes)
    # each file is one process's take, whole: the two seeds' audio, not a mix
    from noizenet.audio import write
    from noizenet.generate import generate

    expected = set()
    for seed in (1, 2):
        audio = generate(run_copy, seconds=1, random_seed=seed, write=False)[0].audio
        expected.add(sf.read(write(run_copy / f"ref{seed}.wav", audio), dtype="int16")[0].tobytes())
    assert {y.tobytes() for y, _ in takes} == expected


def test_a_default_name_never_replaces_a_take_but_an_explicit_out_does(run_copy, tmp_path):
    from noizenet.generate import generate

    paths = [generate(run_copy, seconds=0.05)[0].path for _ in range(3)]
    assert [p.name for p in paths] == [
        "gen_perlin_e2_v0.wav",
        "gen_perlin_e2_v0_1.wav",
        "gen_perlin_e2_v0_2.wav",
    ]
    out = tmp_path / "mine.wav"
    out.write_bytes(b"old")
    assert generate(run_copy, seconds=0.05, out=out)[0].path == out
    assert sf.info(out).frames == round(0.05 * SR)


def test_a_request_too_big_for_the_disk_is_refused_before_writing(run_copy):
    audio = run_copy / "audio"
    audio.mkdir(exist_ok=True)
    before = sorted(audio.iterdir())
    # 10 takes of 1 s: 44 KB of WAV and 1 MiB of figures each; 2 MiB free is not enough
    p = cli(
        "generate",
        str(run_copy),
        "--variations",
        "10",
        "--seconds",
        "1",
        env={"NOIZENET_FREE_BYTES": str(2 * 2**20)},
    )
    assert p.returncode == 2
    line = p.stderr.strip()
    assert "\n" not in line and line.startswith("noizenet generate: error: --variations 10")
    assert f"writes about 10.4 MiB to {audio}, 2.0 MiB is free there" in line
    assert sorted(audio.iterdir()) == before  # nothing written, not even a temporary
    p = cli(
        "reproduce",
        str(run_copy),
        "--song",
        str(run_copy / "run.json"),  # never read: the request is refused first
        "--seconds",
        "60",
        env={"NOIZENET_FREE_BYTES": str(2 * 2**20)},
    )
    assert p.returncode == 2 and "is free there" in p.stderr, p.stderr
    assert sorted(audio.iterdir()) == before


def test_a_request_too_big_for_memory_is_refused_before_computing(run_copy):
    # no override: a billion seconds is more memory than any machine has (streamed to disk, the
    # take itself needs little; its figures read it whole: hundreds of TiB)
    p = cli("generate", str(run_copy), "--seconds", "1e9")
    assert p.returncode == 2
    line = p.stderr.strip()
    assert "\n" not in line
    assert line.startswith("noizenet generate: error: --variations 1 x --seconds 1e+09: needs")
    assert re.search(r"needs about [0-9.]+ [TP]iB of memory", line) and "is available" in line
    p = cli(
        "generate",
        str(run_copy),
        "--variations",
        "100",
        "--seconds",
        "1",
        env={"NOIZENET_AVAILABLE_MEMORY": str(64 * 2**20)},
    )
    assert p.returncode == 2 and "of memory, 64.0 MiB is available" in p.stderr, p.stderr
    p = cli(
        "evaluate",
        str(run_copy),
        "--songs",
        "3",
        "--seconds",
        "1e6",
        env={"NOIZENET_AVAILABLE_MEMORY": str(2**30)},
    )
    assert p.returncode == 2 and "of memory, 1.0 GiB is available" in p.stderr, p.stderr
    assert not (run_copy / "evaluation.json").exists()


@pytest.mark.parametrize(
    ("variations", "seconds", "seed_seconds", "seed"),
    [(1, 0.1, 2.0, "perlin"), (16, 1.0, 1.0, "perlin"), (4, 2.0, 0.5, "white")],
)
def test_the_memory_estimate_bounds_what_generation_allocates(
    tiny_run, variations, seconds, seed_seconds, seed
):
    """An upper bound, and not a wild one: within 8x of the measured peak."""
    import tracemalloc

    from noizenet.generate import generate
    from noizenet.limits import ModelShape, generation_memory

    generate(tiny_run, seconds=0.01, write=False)  # compiled before measuring
    tracemalloc.start()
    try:
        generate(
            tiny_run,
            seed=seed,
            seconds=seconds,
            seed_seconds=seed_seconds,
            variations=variations,
            write=False,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = generation_memory(
        ModelShape.of(tiny_run),
        streams=variations,
        samples=round(seconds * SR),
        seed_samples=round(seed_seconds * SR),
    )
    assert peak <= estimate <= 8 * peak


def test_sizes_read_as_people_write_them():
    from noizenet.limits import size

    assert [size(n) for n in (512, 2048, 3.5 * 2**30, 160 * 2**40)] == [
        "512 B",
        "2.0 KiB",
        "3.5 GiB",
        "160 TiB",
    ]


def test_a_training_step_too_big_for_memory_is_refused_before_training(config, tmp_path):
    out = tmp_path / "big"
    p = cli(
        "train", "--config", str(config), "--batch", "512", "--chunk", "65536", "--out", str(out),
        env={"NOIZENET_AVAILABLE_MEMORY": str(2**30)},
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("noizenet train: error: training --batch 512 x --chunk 65536: needs")
    assert "of memory, 1.0 GiB is available" in line
    assert not (out / "metrics.jsonl").exists() and not (out / "model.safetensors").exists()
    # the same run at its own size trains under that memory
    p = cli("train", "--config", str(config), "--epochs", "1", "--out", str(out), "--force",
            env={"NOIZENET_AVAILABLE_MEMORY": str(2**30)})  # fmt: skip
    assert p.returncode == 0, p.stderr


def test_the_training_memory_estimate_is_measured_and_scales(tiny_config):
    import torch

    from noizenet.models import build, spec_from_config
    from noizenet.train.memory import training_memory

    codec = type("C", (), {"kind": "mulaw", "levels": 256, "dim": 1, "hop": 1})
    model = build(spec_from_config(tiny_config.model, codec))
    before = torch.random.get_rng_state()
    one = training_memory(model, dim=1, batch=1, chunk=1000)
    assert torch.equal(torch.random.get_rng_state(), before)  # training's draws are untouched
    weights = 4 * sum(p.numel() * 4 for p in model.parameters())
    assert one > weights
    # activations grow with streams x samples, the weights' share does not
    assert training_memory(model, dim=1, batch=8, chunk=1000) - weights == pytest.approx(
        8 * (one - weights), rel=1e-6
    )
    x = torch.zeros((4, model.lookback + 1000, 1))
    y, _ = model(x, model.init_state(4, "cpu"))
    # at least what the output alone takes, kept for the backward pass
    assert training_memory(model, dim=1, batch=4, chunk=1000) > y.numel() * 4


def test_songs_too_big_for_the_cache_disk_are_refused_before_decoding(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(3):  # 30 s each: 1.3 MB apiece once decoded at 22,050 Hz
        sf.write(songs / f"s{i}.wav", np.full(22050 * 30, 0.01 * (i + 1), np.float32), 22050)
    cache = tmp_path / "cache"
    p = cli(
        "train", "--data", str(songs), "--songs", "2", "--epochs", "1", "--out",
        str(tmp_path / "run"), "--cache-dir", str(cache),
        env={"NOIZENET_FREE_BYTES": str(33 * 2**20)},
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert "decoding 3 songs into the cache (--cache-dir): writes about 3.8 MiB" in line, line
    assert not list(cache.rglob("*.npy"))  # nothing decoded, nothing half-written
