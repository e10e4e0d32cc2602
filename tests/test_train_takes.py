"""Takes during training (``train --sample-every N``, and one at every run's end): written by
epoch, measured into metrics.jsonl, harmless to the weights, shown by the report as a timeline
(and played in headless Chromium: every ``<audio>`` has a duration)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import torch
from conftest import quiet
from test_report import AUDIO_METADATA_JS, CHROMIUM_ARGS, _browser_or_skip
from test_time_limit import _fake_clock

from noizenet.audio import info as audio_info
from noizenet.cli import main
from noizenet.config import Config
from noizenet.io import read_jsonl
from noizenet.report import write_report
from noizenet.run import load_model, parse_take_name
from noizenet.train import train

FIGURES = {"seconds", "collapse_s", "flatness", "rms", "dc_offset", "clipped_fraction"}


@pytest.fixture(scope="module")
def sampled_run(tiny_config, tmp_path_factory):
    """2 epochs with --sample-every 1 (takes of 0.5 s: the test is about where they go)."""
    cfg = tiny_config.with_overrides({"train.sample_every": 1, "train.sample_seconds": 0.5})
    return train(cfg, tmp_path_factory.mktemp("takes") / "run", progress=False, log=quiet)


def test_every_epoch_has_its_takes_named_by_epoch_and_measured(sampled_run):
    records = sampled_run.metrics()
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        seeds = [t["seed"] for t in r["takes"]]
        assert seeds[0] == "white" and seeds[1].startswith("song-") and len(seeds) == 2
        assert r["takes_s"] > 0
        for t in r["takes"]:
            assert set(t) >= FIGURES, t
            assert t["seconds"] == pytest.approx(0.5)
            assert t["rms"] >= 0 and 0 <= t["clipped_fraction"] <= 1
            wav = sampled_run.path / t["file"]
            assert audio_info(wav)["seconds"] == pytest.approx(0.5, abs=1e-3)
            name = parse_take_name(wav.stem)
            assert (name.epochs, name.checkpoint, name.seed) == (
                r["epoch"],
                f"epoch{r['epoch']}",
                t["seed"],
            )
    assert len(list((sampled_run.path / "audio").glob("*.wav"))) == 4


def test_takes_leave_the_weights_and_losses_alone_and_default_to_the_run_end(
    sampled_run, tiny_config, tmp_path
):
    default = train(tiny_config, tmp_path / "default", progress=False, log=quiet)
    off = train(
        tiny_config.with_overrides({"train.sample_seconds": 0}),
        tmp_path / "off",
        progress=False,
        log=quiet,
    )
    # by default: one take per seed of 3 s, at the end of the run only
    assert ["takes" in r for r in default.metrics()] == [False, True]
    assert {t["seconds"] for t in default.metrics()[-1]["takes"]} == {3.0}
    assert not any("takes" in r for r in off.metrics()) and not off.paths.audio.exists()
    a, b = load_model(sampled_run.weights).state_dict(), load_model(off.weights).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [
        [(r["train_loss"], r["val_loss"]) for r in run.metrics()]
        for run in (default, off, sampled_run)
    ]
    assert losses[0] == losses[1] == losses[2]


def test_a_resumed_run_keeps_its_earlier_takes_in_the_metrics(tiny_config, tmp_path):
    cfg = tiny_config.with_overrides({"train.sample_every": 1, "train.sample_seconds": 0.2})
    out = tmp_path / "run"
    train(cfg.with_overrides({"train.epochs": 1}), out, progress=False, log=quiet)
    run = train(cfg, out, resume=True, progress=False, log=quiet)  # to 2 epochs
    assert [len(r["takes"]) for r in run.metrics()] == [2, 2]


def test_a_run_stopped_at_its_time_limit_makes_its_end_takes_there(
    tiny_config, tmp_path, monkeypatch
):
    cfg = tiny_config.with_overrides(
        {"train.max_time": 5.0, "train.checkpoint_every": 0, "train.sample_seconds": 0.2}
    )
    with monkeypatch.context() as m:
        _fake_clock(m)
        run = train(cfg, tmp_path / "run", progress=False, log=quiet)
    assert run.info.status == "time-limit"
    (stop,) = [e for e in read_jsonl(run.paths.events) if e["event"] == "time-limit"]
    assert stop["epoch"] == 1 and stop["step"] == 2
    names = [parse_take_name((run.path / t["file"]).stem) for t in stop["takes"]]
    assert [(n.epochs, n.checkpoint) for n in names] == [(0, "epoch0step2")] * 2
    assert all((run.path / t["file"]).is_file() for t in stop["takes"])


def test_the_flags_are_recorded_and_resumable(tiny_config, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config.with_overrides({"train.epochs": 1})
    cfg.save(tmp_path / "c.toml")
    args = ["train", "--config", str(tmp_path / "c.toml"), "--out", str(out), "--quiet"]
    assert main([*args, "--sample-every", "3", "--sample-seconds", "0.2"]) == 0
    assert Config.load(out / "config.toml").train.sample_every == 3
    # changing them on resume changes no weights: allowed
    resume = ["train", "--resume", str(out), "--epochs", "2", "--quiet"]
    assert main([*resume, "--sample-every", "1"]) == 0
    saved = Config.load(out / "config.toml").train
    assert (saved.sample_every, saved.sample_seconds) == (1, 0.2)


def test_the_report_shows_the_takes_as_a_timeline(sampled_run, tmp_path):
    out = write_report([sampled_run.path], tmp_path / "report.html", progress=False)
    page = out.read_text(encoding="utf-8")
    timeline = page[page.index("Takes during training") :]
    assert "Generated takes" not in page  # the training takes are shown once, in the timeline
    for r in sampled_run.metrics():
        for t in r["takes"]:
            stem = quote(t["file"].removeprefix("audio/").removesuffix(".wav"))
            assert stem + "_strip.png" in timeline and stem + ".wav" in timeline
        assert f"{r['val_loss']:.5g}" in timeline
    assert timeline.count("<audio") == 4


def test_every_player_of_the_timeline_plays_in_headless_chromium(sampled_run, tmp_path):
    sync_playwright, exe = _browser_or_skip()
    out = write_report([sampled_run.path], sampled_run.path / "report.html", progress=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(out.as_uri(), wait_until="load")
            players = page.evaluate(AUDIO_METADATA_JS)
        finally:
            browser.close()
    assert len(players) == 4
    for a in players:
        assert a["error"] is None and a["duration"] > 0, f"audio not playable: {a}"


def test_a_take_that_fails_is_said_and_training_goes_on(tiny_config, tmp_path, monkeypatch):
    from noizenet.train.takes import TrainingTakes

    def full_disk(self, model, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TrainingTakes, "make", full_disk)
    lines: list[str] = []
    run = train(tiny_config, tmp_path / "run", progress=False, log=lines.append)
    assert run.info.status == "complete"
    assert "No space left on device" in run.metrics()[-1]["takes_problem"]
    assert any("takes after epoch 2 not made" in line for line in lines)
