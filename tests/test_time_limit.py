"""``--max-time``: training stops at the next step after its budget, usable and resumable."""

from __future__ import annotations

import time
import types

import pytest
import torch
from conftest import quiet

from noizenet.cli import main
from noizenet.config import Config, parse_duration
from noizenet.errors import ConfigError
from noizenet.generate import generate
from noizenet.io import read_jsonl
from noizenet.run import Run, load_model
from noizenet.train import train
from noizenet.train import trainer as trainer_module
from noizenet.train.checkpoint import checkpoint_name, load_checkpoint


@pytest.fixture
def cfg(tiny_config):
    return tiny_config.with_overrides(
        {"train.epochs": 2, "train.checkpoint_every": 0, "train.threads": 1}
    )


def _fake_clock(monkeypatch) -> None:
    """The trainer's clock advances one second per reading: the stop is deterministic."""
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    fake = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if k[0] != "_"})
    fake.perf_counter = tick
    monkeypatch.setattr(trainer_module, "time", fake)


def _weights(path) -> dict[str, torch.Tensor]:
    return load_model(path).state_dict()


def test_a_time_limited_run_stops_mid_epoch_generates_and_resumes_to_the_same_weights(
    cfg, tmp_path, monkeypatch
):
    reference = train(cfg, tmp_path / "ref", progress=False, log=quiet)
    out = tmp_path / "run"
    lines: list[str] = []
    with monkeypatch.context() as m:
        _fake_clock(m)
        # fit() reads the clock at 1; each step reads it twice (its own time, then the budget),
        # so step 2 ends at 6 >= 1 + 5: the limit is passed there
        run = train(
            cfg.with_overrides({"train.max_time": 5.0}),
            out,
            progress=False,
            log=lines.append,
        )
    assert run.info.status == "time-limit"
    assert any("time limit" in line and "--resume" in line for line in lines)
    stopped = [e for e in read_jsonl(out / "events.jsonl") if e["event"] == "time-limit"]
    assert [(e["epoch"], e["step"]) for e in stopped] == [(1, 2)]
    assert not (out / "metrics.jsonl").exists()  # no epoch finished
    # the checkpoint and model.safetensors both hold the weights of step 2
    ckpt = load_checkpoint(out / "checkpoints" / checkpoint_name(0, 2))
    assert ckpt.position == (0, 2)
    saved, in_ckpt = _weights(out / "model.safetensors"), ckpt.section("model")
    assert saved.keys() == in_ckpt.keys()
    assert all(torch.equal(saved[k], in_ckpt[k]) for k in saved)
    assert not all(torch.equal(saved[k], _weights(reference.weights)[k]) for k in saved)
    take = generate(run, seconds=0.2, seed_seconds=0.1, write=False)[0]
    assert take.audio.size > 0

    # a resumed run gets a fresh budget; with none it trains to the end, as if never stopped
    done = train(
        Run.open(out).config.with_overrides({"train.max_time": 0}),
        out,
        resume=True,
        progress=False,
        log=quiet,
    )
    assert done.info.status == "complete"
    a, b = _weights(out / "model.safetensors"), _weights(reference.weights)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert Config.load(out / "config.toml").train.max_time == 0


def test_max_time_accepts_seconds_and_clock_times():
    assert parse_duration("90") == 90.0
    assert parse_duration("1.5") == 1.5
    assert parse_duration("10:00") == 600.0
    assert parse_duration("01:30:00") == 5400.0
    for bad in ("", "1:2:3:4", "1:75", "-5", "ten", "1::2", "inf"):
        with pytest.raises(ConfigError, match=r"train\.max_time: expected seconds or"):
            parse_duration(bad)
    # in a config file too, as a number or as text
    assert Config.from_dict({"train": {"max_time": "2:00"}}).train.max_time == 120.0
    with pytest.raises(ConfigError, match=r"train\.max_time: must be >= 0"):
        Config.from_dict({"train": {"max_time": -1.0}})


def test_the_flag_is_one_line_on_bad_input(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--max-time", "1:2:3:4"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-time" in err and "[HH:]MM:SS" in err
