"""`noizenet evaluate`: a run on held-out tracks, beside persistence, LPC-32 and real audio."""

import json
import math

import numpy as np
import pytest
import torch

from noizenet.analysis.evaluate import evaluate, format_collapse, format_table
from noizenet.analysis.metrics import bits_per_sample
from noizenet.cli import main
from noizenet.codecs import QuantCodec
from noizenet.models import ModelSpec, NoizeNet
from noizenet.run import Run
from noizenet.train import train


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """The shared tiny run is read-only: evaluate writes evaluation.json into a copy."""
    import shutil

    return Run.open(shutil.copytree(tiny_run.path, tmp_path / "run"))


def test_evaluate_writes_json_and_compares_with_the_baselines(run_copy):
    tiny_run = run_copy
    result = evaluate(tiny_run, gen_seconds=0.5, seed_seconds=0.2)
    saved = json.loads((tiny_run.path / "evaluation.json").read_text())
    assert saved["columns"] == json.loads(json.dumps(result["columns"]))
    val = [t["id"] for t in tiny_run.info.corpus["val"]]
    assert [t["id"] for t in result["held_out"]] == val  # default: the run's validation tracks
    assert result["lpc"]["fitted_on"] == "the run's 3 training tracks"
    cols = result["columns"]
    for name in ("NoizeNet", "persistence", "LPC-32"):
        assert math.isfinite(cols[name]["snr_db"])
    # the tone songs are smooth: both baselines predict the next sample far better than chance
    assert cols["persistence"]["snr_db"] > 10 and cols["LPC-32"]["snr_db"] > 10
    assert cols["NoizeNet"]["bits_per_sample"] is None  # a regression head has no distribution
    assert len(cols["NoizeNet"]["collapse_s"]) == 1
    assert cols["LPC-32"]["collapse_s"] == [None]  # noise-driven synthesis keeps playing
    assert cols["real audio"]["log_mel_frechet"] > 0
    table = format_table(result)
    assert table.splitlines()[0] == "| metric | NoizeNet | persistence | LPC-32 | real audio |"
    assert "one-step prediction SNR" in table and "log-mel Frechet distance" in table
    assert "bits per sample" not in table  # no column has it


def test_evaluate_on_another_source_leaves_the_training_tracks_out(run_copy, song_dir, capsys):
    tiny_run = run_copy
    assert main(["evaluate", str(tiny_run.path), "--data", str(song_dir), "--songs", "5",
                 "--gen-seconds", "0.3", "--seed-seconds", "0.2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| one-step prediction SNR" in out and "evaluation.json" in out
    saved = json.loads((tiny_run.path / "evaluation.json").read_text())
    trained = {t["path"] for t in tiny_run.info.corpus["train"]}
    held = {t["path"] for t in saved["held_out"]}
    assert len(held) == 5 - len(trained) and not held & trained


def test_evaluate_bad_input_is_one_line_exit_2(tiny_run, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a NoizeNet run folder" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_run.path), "--data", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_bits_per_sample_of_a_uniform_prediction_is_log2_levels():
    model = NoizeNet(ModelSpec(cell="gru", hidden=4, levels=16, embedding=3))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # zero logits: every class 1/16
    y = np.sin(np.arange(500) * 0.05).astype(np.float32)
    codec = QuantCodec(name="mulaw", levels=16).fit([y])
    assert bits_per_sample(model, codec, [y]) == pytest.approx(4.0, abs=1e-5)


def test_a_categorical_run_reports_bits_per_sample(tiny_config, tmp_path):
    cfg = tiny_config.with_overrides({"codec.name": "mulaw", "codec.levels": 64, "train.epochs": 1})
    run = train(cfg, tmp_path / "mulaw", progress=False, log=lambda *a: None)
    result = evaluate(run, gen_seconds=0.3, seed_seconds=0.2, write=False)
    bits = result["columns"]["NoizeNet"]["bits_per_sample"]
    assert 0 < bits < 8  # 6 bits is a uniform guess over 64 levels; a trained model beats 8
    assert not (tmp_path / "mulaw" / "evaluation.json").exists()
    # beside it, the classical floors on the same 64 levels: tones are predictable, so linear
    # prediction with an adaptive residual beats the fixed one and the histogram
    cols = result["columns"]
    lpc, fixed = cols["LPC-32"]["bits_per_sample"], cols["LPC-32"]["bits_fixed_scale"]
    assert 0 < lpc < fixed < cols["real audio"]["bits_no_context"] <= 6.1
    assert 0 < cols["persistence"]["bits_per_sample"] < 6.1
    table = format_table(result)
    assert "without context" in table and "fixed scale" in table


def test_a_diverging_model_is_reported_not_fatal(tiny_run, monkeypatch):
    import noizenet.generate as gen
    from noizenet.errors import NoizeNetError

    def diverge(*args, **kwargs):
        raise NoizeNetError("run: the model produced non-finite samples (seed song)")

    monkeypatch.setattr(gen, "generate", diverge)
    result = evaluate(tiny_run, gen_seconds=0.3, seed_seconds=0.2, write=False)
    assert result["columns"]["NoizeNet"]["collapse_s"] == ["non-finite"]
    assert result["columns"]["NoizeNet"]["log_mel_frechet"] is None
    assert "non-finite" in format_table(result)


def test_format_collapse():
    assert format_collapse(None) == "never"
    assert format_collapse([None, None]) == "never"
    assert format_collapse(0.0123) == "12 ms"
    assert format_collapse([0.01, None, 0.03]) == "2/3 takes, median 20 ms"
    assert format_collapse([0.01, "non-finite"]) == "1/2 takes, median 10 ms, 1 non-finite"


def test_lpc_falls_back_to_the_held_out_tracks_when_training_tracks_are_gone(run_copy):
    info = json.loads((run_copy.path / "run.json").read_text())
    for t in info["corpus"]["train"]:
        t["path"] = str(run_copy.path / "moved" / "away.wav")
    (run_copy.path / "run.json").write_text(json.dumps(info))
    result = evaluate(run_copy.path, gen_seconds=0.3, seed_seconds=0.2, write=False)
    assert result["lpc"]["fitted_on"].startswith("the held-out tracks")
    assert "log_mel_frechet" not in result["columns"]["real audio"]  # no training audio to compare
